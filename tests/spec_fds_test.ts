/**
 * The descriptor channel between vmd and a VM process (`ffi/fd_passing.ts`, `src/vmd/spec_fds.ts`), in one
 * process: descriptors cross a real SOCK_SEQPACKET pair and work on the other side; a message that does not
 * match the spec (missing, extra, wrong kind, another sender) is refused and everything received is closed.
 *
 * @module
 */
import assert from "node:assert/strict";
import { receiveFds, sendFds, seqpacketPair } from "../ffi/fd_passing.ts";
import { fstatFd, openFileOnce } from "../ffi/open_file.ts";
import { closeFd } from "../ffi/fd.ts";
import { openPty } from "../ffi/pty.ts";
import { receiveSpecFds, sendSpecFds, SpecFdError, specFds } from "../src/vmd/spec_fds.ts";
import type { VmSpec } from "../src/vmd/vm_messages.ts";

function openFds(): number[] {
  return Deno.readDirSync("/proc/self/fd").map((e) => Number(e.name)).toArray().sort((a, b) => a - b);
}

function openRaw(path: string): number {
  return openFileOnce(path).fd;
}

function spec(consoleFd: number, kernel: number, disk: number, cdrom: number | null = null): VmSpec {
  return {
    name: "t",
    vmId: 1,
    kernel: { fd: kernel, name: "/k" },
    bootDevice: null,
    cdrom: cdrom === null ? null : { fd: cdrom, name: "/iso" },
    initrd: null,
    cmdline: "",
    cpus: 1,
    memory: 16 << 20,
    consoleFd,
    disks: [{ readOnly: false, files: [{ fd: disk, name: "/d", format: "raw", probed: false }] }],
    nics: [],
  };
}

Deno.test("descriptor channel: a spec's descriptors arrive, renumbered, of the right kinds", () => {
  const dir = Deno.makeTempDirSync();
  Deno.writeTextFileSync(`${dir}/k`, "kernel bytes");
  Deno.writeTextFileSync(`${dir}/d`, "disk");
  const pty = openPty();
  const kernel = openRaw(`${dir}/k`);
  const disk = openRaw(`${dir}/d`);
  Deno.writeTextFileSync(`${dir}/iso`, "CD001");
  const iso = openRaw(`${dir}/iso`);
  const [a, b] = seqpacketPair();
  try {
    const sent = spec(pty.master, kernel, disk, iso);
    sendSpecFds(a, sent);
    const got = receiveSpecFds(b, sent, Deno.pid);
    const mine = specFds(got).map((s) => s.fd);
    assert.equal(new Set(mine).size, 4);
    assert.equal(Deno.readLinkSync(`/proc/self/fd/${got.cdrom!.fd}`), `${dir}/iso`, "the CD-ROM renumbered");
    for (const fd of mine) assert.ok(!specFds(sent).some((s) => s.fd === fd), `fd ${fd} is a new number`);
    assert.equal(fstatFd(got.kernel.fd).kind, "file");
    assert.equal(fstatFd(got.consoleFd).kind, "char");
    assert.equal(Deno.readLinkSync(`/proc/self/fd/${got.kernel.fd}`), `${dir}/k`);
    for (const fd of mine) closeFd(fd);
  } finally {
    for (const fd of [a, b, pty.master, pty.slave, kernel, disk, iso]) closeFd(fd);
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("descriptor channel: a mismatched message is refused and what arrived is closed", () => {
  const dir = Deno.makeTempDirSync();
  Deno.writeTextFileSync(`${dir}/k`, "kernel bytes");
  const pty = openPty();
  const kernel = openRaw(`${dir}/k`);
  const cases: [string, (s: VmSpec) => [Uint8Array, number[]], RegExp][] = [
    [
      "a missing descriptor",
      (s) => [Uint8Array.from(new Uint8Array(Int32Array.from([s.consoleFd]).buffer)), [s.consoleFd]],
      /names 3 descriptors; 1 arrived/,
    ],
    [
      "a kernel that is a pty",
      (s) => {
        const fds = [s.consoleFd, s.consoleFd === pty.master ? pty.slave : s.consoleFd, kernel];
        return [
          new Uint8Array(Int32Array.from([s.consoleFd, s.kernel.fd, s.disks[0].files[0].fd]).buffer),
          fds,
        ];
      },
      /boot file descriptor is a char, not a file/,
    ],
    [
      "a payload naming other numbers",
      (s) => [new Uint8Array(Int32Array.from([s.consoleFd, 900, 901]).buffer), [s.consoleFd, kernel, kernel]],
      /fd \d+ \(boot file\) did not arrive/,
    ],
  ];
  try {
    for (const [what, build, why] of cases) {
      const [a, b] = seqpacketPair();
      const s = spec(pty.master, kernel, kernel + 1000);
      const [payload, fds] = build(s);
      sendFds(a, payload, fds);
      const before = openFds().length;
      assert.throws(
        () => receiveSpecFds(b, s, Deno.pid),
        (e: Error) => e instanceof SpecFdError && why.test(e.message),
        what,
      );
      assert.equal(openFds().length, before, `${what}: everything received was closed`);
      closeFd(a);
      closeFd(b);
    }
    // another sender than the one expected: refused before anything is read
    const [a, b] = seqpacketPair();
    sendFds(a, new Uint8Array(4), [kernel]);
    assert.throws(() => receiveSpecFds(b, spec(pty.master, kernel, kernel), Deno.pid + 1), /not the daemon/);
    const left = receiveFds(b, 16, 4);
    assert.equal(left.fds.length, 1, "the message was never taken by the refused receive");
    for (const fd of [...left.fds, a, b]) closeFd(fd);
  } finally {
    for (const fd of [pty.master, pty.slave, kernel]) closeFd(fd);
    Deno.removeSync(dir, { recursive: true });
  }
});
