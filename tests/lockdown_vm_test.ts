/**
 * Confinement probed from inside every row of a real running VM: a process started with the `vm` row's
 * flags creates a VM (virtio-blk on a disk image, virtio-rng, virtio-net on a tap, in a network namespace the
 * test makes), locks down as a VM process does, and then its main thread, its vCPU worker and each device
 * worker try, with the power they hold (libc through the same path string the real workers use), to open
 * /etc/passwd and a root-only file (another VM's disk), execve, start a shell, open AF_INET and AF_UNIX
 * sockets, dlopen another library through libc and through Deno, and import a module. Every attempt fails,
 * and the test prints which wall stopped it. The guest then runs to its end under the filter.
 */
import assert from "node:assert/strict";
import { buildKitGuest } from "../examples/guests/kit/build.ts";
import { resolveLibcPath } from "../ffi/libc.ts";
import type { ProbeOutcome } from "../src/privsep/libc_probe.ts";
import { processFlags } from "../src/privsep/permission_table.ts";
import { kvmTest } from "./kvm_support.ts";
import { patternImage } from "./virtio_support.ts";

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const FIXTURE = `${root}/tests/fixtures/lockdown/real_vm.ts`;
const NS = `vmdlk${Deno.pid % 100000}`;

async function sh(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  const o = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  return { code: o.code, out: new TextDecoder().decode(o.stdout) + new TextDecoder().decode(o.stderr) };
}

kvmTest(
  "a locked-down VM: its main thread, vCPU, virtio-blk, virtio-rng and virtio-net workers each fail every " +
    "probe (libc and Deno), and the guest still runs",
  async () => {
    if (Deno.uid() !== 0) throw new Error("this test starts a VM process that leaves root: run it as root");
    const guest = await buildKitGuest("virtio_blk");
    const dir = await Deno.makeTempDir({ prefix: "vmd-lockvm-" });
    await Deno.chmod(dir, 0o755);
    await sh("ip", ["netns", "del", NS]);
    try {
      assert.equal((await sh("ip", ["netns", "add", NS])).code, 0);
      const disk = `${dir}/disk.img`;
      await patternImage(disk);
      const secret = `${dir}/other-vm-disk.img`;
      await Deno.writeTextFile(secret, "another VM's disk\n", { mode: 0o600 });
      const module = `${dir}/module.js`;
      await Deno.writeTextFile(module, "export const x = 1;\n");
      await Deno.chmod(module, 0o644);
      const libcPath = resolveLibcPath();
      const targets = {
        secret,
        module: `file://${module}`,
        otherLibrary: `${libcPath.replace(/\/[^/]+$/, "")}/libz.so.1`,
      };
      const flags = processFlags("vm", { libcPath, programRoot: root });
      const runVm = async (mode: "lock" | "control") => {
        const out = await new Deno.Command("ip", {
          args: [
            "netns",
            "exec",
            NS,
            Deno.execPath(),
            "run",
            "--no-prompt",
            "--config",
            `${root}/deno.json`,
            ...flags,
            FIXTURE,
            "4343",
            JSON.stringify(targets),
            guest.path,
            disk,
            "vmdlk0",
            mode,
          ],
          stdout: "piped",
          stderr: "piped",
        }).output();
        const stdout = new TextDecoder().decode(out.stdout);
        const stderr = new TextDecoder().decode(out.stderr);
        assert.equal(out.code, 0, stderr);
        return JSON.parse(stdout.trim().split("\n").pop()!) as {
          uid: { uid: number } | null;
          main: Record<string, ProbeOutcome>;
          vcpu: Record<string, ProbeOutcome>;
          devices: Record<string, Record<string, ProbeOutcome>>;
          exit: { kind: string; status?: number };
          output: string;
        };
      };
      // without the process's lock-down the probes get through, but for the Landlock each libc-holding
      // worker puts on its own thread: the assertions below can fail
      const control = await runVm("control");
      assert.equal(control.main["libc open /etc/passwd"].by, "allowed");
      assert.equal(control.main["libc execve"].by, "allowed");
      for (
        const row of [
          control.main,
          control.vcpu,
          control.devices["virtio-blk0"],
          control.devices["virtio-net0"],
        ]
      ) {
        assert.equal(row["libc socket(AF_UNIX)"].by, "allowed");
      }
      for (const row of [control.vcpu, control.devices["virtio-blk0"], control.devices["virtio-net0"]]) {
        assert.equal(row["libc open /etc/passwd"].by, "landlock");
      }
      const r = await runVm("lock");
      const rows: Record<string, Record<string, ProbeOutcome>> = { main: r.main, vcpu: r.vcpu, ...r.devices };
      assert.deepEqual(Object.keys(rows).sort(), [
        "main",
        "vcpu",
        "virtio-blk0",
        "virtio-net0",
        "virtio-rng",
      ]);
      const table: string[] = [];
      for (const [row, probes] of Object.entries(rows)) {
        assert.ok(Object.keys(probes).length >= 6, `${row}: ${JSON.stringify(probes)}`);
        for (const [probe, got] of Object.entries(probes)) {
          table.push(`${row.padEnd(12)} ${probe.padEnd(44)} ${got.by}`);
          assert.ok(
            ["seccomp", "landlock", "identity", "deno"].includes(got.by),
            `${row}: ${probe} was not refused by a wall: ${got.by} (${got.detail})`,
          );
        }
      }
      console.log(table.join("\n"));
      // the threads holding libc meet the kernel's walls, not only Deno's
      for (const row of ["main", "vcpu", "virtio-blk0", "virtio-net0"]) {
        assert.equal(rows[row]["libc open /etc/passwd"].by, "seccomp", row);
        assert.equal(rows[row]["libc socket(AF_UNIX)"].by, "seccomp", row);
        assert.equal(rows[row]["libc execve"].by, "seccomp", row);
      }
      assert.equal(rows["virtio-rng"]["Deno.dlopen libc"].by, "deno");
      assert.ok((r.uid?.uid ?? 0) >= 0x7ff00000, "the VM's own uid");
      // and the VM kept working under the filter: the guest read, wrote and flushed its disk
      assert.deepEqual(r.exit, { kind: "exit-port", status: 0x20 }, r.output);
      assert.match(r.output, /^read: 8 done, 8 ok, 0 bad bytes$/m);
      assert.match(r.output, /^read back: 2 done, status 0, same/m);
    } finally {
      await sh("ip", ["netns", "del", NS]);
      await Deno.remove(dir, { recursive: true });
    }
  },
);
