/**
 * Attacks on the files a VM uses, each against the real path (real KVM, real files, the real daemon, a real
 * unprivileged user run with setpriv):
 * - a guest writes a qcow2 header naming a root-only host file into its own raw disk, then boots again
 *   (`vmd run` and the daemon; format probed and declared raw): it never reads the file;
 * - a user starts an instance whose disk is her own qcow2 with a root-only backing file, or a symlink to a
 *   root-only file, or a FIFO: each is refused, and the daemon keeps answering.
 */
import assert from "node:assert/strict";
import { buildKitGuest } from "../examples/guests/kit/build.ts";
import { openImageChain } from "../src/disk/image_chain.ts";
import { createQcow2 } from "../src/disk/qcow2_create.ts";
import { kvmTest, runCli } from "./kvm_support.ts";
import { ConsoleSession, kitPaths, TestDaemon } from "./vmd_support.ts";

const SECRET = "TOP-SECRET-a7f3c9";
const MiB = 1 << 20;

/** A folder with a root-only secret file and an empty 1 MiB raw disk per name. */
async function scene(disks: string[]): Promise<{ dir: string; secret: string; disk: (n: string) => string }> {
  const dir = await Deno.makeTempDir({ prefix: "vmd-sec-" });
  await Deno.chmod(dir, 0o755);
  const secret = `${dir}/secret`;
  await Deno.writeTextFile(secret, SECRET.padEnd(512, "!"), { mode: 0o600 });
  for (const n of disks) await Deno.writeFile(`${dir}/${n}`, new Uint8Array(MiB));
  return { dir, secret, disk: (n) => `${dir}/${n}` };
}

async function head(path: string, n = 4): Promise<number[]> {
  const f = await Deno.open(path);
  try {
    const b = new Uint8Array(n);
    await f.read(b);
    return [...b];
  } finally {
    f.close();
  }
}

const QCOW2_HEAD = [0x51, 0x46, 0x49, 0xfb];

kvmTest(
  "vmd run: a guest that plants a qcow2 header naming a host file in its raw disk never reads the file " +
    "(probed raw: the write fails; declared raw: it stays raw)",
  async () => {
    const guest = await buildKitGuest("blk_plant");
    const s = await scene(["probed.img", "declared.img"]);
    try {
      const run = (disk: string) =>
        runCli(["run", "-m", "32M", "-b", guest.path, "--cmdline", `plant=${s.secret}`, "-d", disk]);
      // probed as raw: the header write is refused with an I/O error, so the image stays raw
      const first = await run(s.disk("probed.img"));
      assert.equal(first.code, 0x27, first.stdout + first.stderr);
      assert.match(first.stdout, /^plant: status 1$/m);
      // vmd run locks itself down as a VM process does (root, no bridge to remove at the end)
      assert.match(
        first.stderr,
        /^vmd run: locked down: uid\/gid 2146500607\/2146500607, .*seccomp profile vm/m,
      );
      assert.deepEqual(await head(s.disk("probed.img")), [0, 0, 0, 0]);
      const second = await run(s.disk("probed.img"));
      assert.match(second.stdout, /^sector0: status 0 '\.{32}'$/m);
      // declared raw: the guest owns its bytes, and the image is raw whatever they say
      const d1 = await run(`raw:${s.disk("declared.img")}`);
      assert.match(d1.stdout, /^plant: status 0$/m, d1.stdout + d1.stderr);
      assert.deepEqual(await head(s.disk("declared.img")), QCOW2_HEAD);
      const d2 = await run(`raw:${s.disk("declared.img")}`);
      assert.match(d2.stdout, /^sector0: status 0 'QFI\./m, d2.stdout + d2.stderr);
      for (const out of [first, second, d1, d2]) assert.ok(!out.stdout.includes("TOP-SECRET"), out.stdout);
    } finally {
      await Deno.remove(s.dir, { recursive: true });
    }
  },
);

kvmTest(
  "vmd: a guest that plants a qcow2 header in its disk never reads the host file at its next start " +
    "(vm.conf format raw, and probed)",
  async () => {
    const guest = await buildKitGuest("blk_plant");
    const s = await scene(["probed.img", "declared.img"]);
    const vm = (name: string, disk: string, format: string) =>
      `vm "${name}" {\n  disable\n  boot "${guest.path}" { cmdline "plant=${s.secret}" }\n  memory 32M\n` +
      `  disk "${s.disk(disk)}"${format}\n}\n`;
    const d = await TestDaemon.start(
      vm("probed", "probed.img", "") + vm("declared", "declared.img", ' format "raw"'),
    );
    try {
      const boot = async (name: string) => {
        const c = new ConsoleSession(d, ["start", "-c", name]);
        await c.expect("plant: status", 20_000);
        await c.ended(20_000);
        await d.waitState(name, "stopped");
        return c.output;
      };
      const p1 = await boot("probed");
      assert.match(p1, /plant: status 1/);
      assert.deepEqual(await head(s.disk("probed.img")), [0, 0, 0, 0]);
      const p2 = await boot("probed");
      assert.match(p2, /sector0: status 0 '\.{32}'/);
      // the restart keeps the probed format as probed: the header write is refused again
      assert.match(p2, /plant: status 1/);
      const q1 = await boot("declared");
      assert.match(q1, /plant: status 0/);
      assert.deepEqual(await head(s.disk("declared.img")), QCOW2_HEAD);
      const q2 = await boot("declared");
      assert.match(q2, /sector0: status 0 'QFI\./);
      for (const out of [p1, p2, q1, q2]) assert.ok(!out.includes("TOP-SECRET"), out);
    } finally {
      await d.cleanup();
      await Deno.remove(s.dir, { recursive: true });
    }
  },
);

kvmTest(
  "vmd: an image one VM writes is locked; a second VM on it is refused and told which VM holds it",
  async () => {
    const { echo } = await kitPaths();
    const s = await scene(["shared.img"]);
    const vm = (name: string, enabled: boolean) =>
      `vm "${name}" {\n  ${
        enabled ? "" : "disable\n  "
      }boot "${echo}" { cmdline "vm=${name}" }\n  memory 16M\n` +
      `  disk "${s.disk("shared.img")}"\n}\n`;
    const d = await TestDaemon.start(vm("first", true) + vm("second", false));
    try {
      await d.waitState("first", "running");
      const r = await d.vmctl(["start", "second"]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /shared\.img is in use by vm first; stop it first/);
      assert.equal((await d.vm("second")).state, "stopped");
      // QEMU's tools see the same lock
      const io = await new Deno.Command("qemu-io", {
        args: ["-f", "raw", "-c", "write 0 512", s.disk("shared.img")],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.notEqual(io.code, 0);
      assert.match(new TextDecoder().decode(io.stderr), /Failed to get "write" lock/);
      assert.equal((await d.vmctl(["stop", "-f", "-w", "first"])).code, 0);
      const again = await d.vmctl(["start", "second"]);
      assert.equal(again.code, 0, again.stderr);
    } finally {
      await d.cleanup();
      await Deno.remove(s.dir, { recursive: true });
    }
  },
);

kvmTest(
  "vmd run: a block device is a disk too (a loop device over an image); its sector 0 is what the file holds",
  async () => {
    const guest = await buildKitGuest("blk_plant");
    const s = await scene(["backing.img"]);
    await Deno.writeFile(s.disk("backing.img"), new TextEncoder().encode("LOOPDEV!".padEnd(1 << 20, "-")));
    const lo = await new Deno.Command("losetup", {
      args: ["-f", "--show", s.disk("backing.img")],
      stdout: "piped",
    })
      .output();
    assert.equal(lo.code, 0, "losetup -f --show (root, a free loop device)");
    const dev = new TextDecoder().decode(lo.stdout).trim();
    try {
      const r = await runCli([
        "run",
        "-m",
        "32M",
        "-b",
        guest.path,
        "--cmdline",
        `plant=${s.secret}`,
        "-d",
        dev,
      ]);
      assert.equal(r.code, 0x27, r.stdout + r.stderr);
      assert.match(r.stdout, /^sector0: status 0 'LOOPDEV!-{24}'$/m);
      assert.match(r.stdout, /^plant: status 1$/m, "probed raw: the header write is refused on a device too");
    } finally {
      await new Deno.Command("losetup", { args: ["-d", dev] }).output();
      await Deno.remove(s.dir, { recursive: true });
    }
  },
);

Deno.test("openImageChain: a backing chain that loops is refused as a loop (not as an image in use)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmd-loop-" });
  try {
    await createQcow2(`${dir}/a.qcow2`, { size: 1 << 20, backingFile: "b.qcow2", backingFormat: "qcow2" });
    await createQcow2(`${dir}/b.qcow2`, { size: 1 << 20, backingFile: "a.qcow2", backingFormat: "qcow2" });
    assert.throws(() => openImageChain(`${dir}/a.qcow2`, { readOnly: false }), /the backing chain loops/);
    // nothing stays open or locked: the image opens read-write again at once
    const disk = await Deno.open(`${dir}/a.qcow2`, { read: true, write: true });
    disk.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
