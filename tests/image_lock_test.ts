/**
 * Image locks (ffi/image_lock.ts) against themselves and against QEMU: two open file descriptions in one
 * process, a second process, and qemu-io / qemu-img / qemu-system-x86_64 both ways. `/proc/locks` shows that
 * vmd's lock bytes are the bytes QEMU itself takes as a writer and as a reader.
 *
 * @module
 */
import assert from "node:assert/strict";
import { closeFd } from "../ffi/fd.ts";
import {
  fileIdentity,
  findImageLockConflict,
  ImageLockError,
  type ImageLockMode,
  lockImage,
  openImageFd,
  unlockImage,
} from "../ffi/image_lock.ts";
import { run, withTempDir } from "./disk_helpers.ts";

/** A 16 MiB qcow2 image made by qemu-img in `dir`. */
async function image(dir: string, name = "img.qcow2"): Promise<string> {
  const path = `${dir}/${name}`;
  const r = await run("qemu-img", ["create", "-q", "-f", "qcow2", path, "16M"]);
  assert.equal(r.code, 0, r.stderr);
  return path;
}

/** The byte offsets locked on `path`'s file, per /proc/locks (OFD locks only), sorted. */
function lockedBytes(path: string): number[] {
  const ino = Deno.statSync(path).ino;
  const bytes = new Set<number>();
  for (const line of Deno.readTextFileSync("/proc/locks").split("\n")) {
    const f = line.trim().split(/\s+/);
    // "1: OFDLCK ADVISORY READ -1 fe:00:2146777 100 101"
    if (f[1] !== "OFDLCK" || !f[5]?.endsWith(`:${ino}`)) continue;
    for (let b = Number(f[6]); b <= Number(f[7]); b++) bytes.add(b);
  }
  return [...bytes].sort((a, b) => a - b);
}

/** Asserts that locking `fd` for `mode` fails with an {@link ImageLockError} of `kind` on `permission`. */
function assertConflict(
  fd: number,
  mode: ImageLockMode,
  kind: "refuses" | "holds",
  permission: string,
): void {
  assert.throws(() => lockImage(fd, mode, "test image"), (e: unknown) => {
    assert.ok(e instanceof ImageLockError, `expected an ImageLockError, got ${e}`);
    assert.equal(e.mode, mode);
    assert.equal(e.conflict.kind, kind);
    assert.equal(e.conflict.permission, permission);
    assert.match(e.message, /^cannot lock image test image /);
    assert.match(e.message, /stop whatever uses it/);
    return true;
  });
}

const WRITER_BYTES = [100, 101, 103, 201, 203];
const READER_BYTES = [100, 201, 203];

Deno.test("image lock: two open file descriptions in one process: writers exclude, readers share", async () => {
  await withTempDir(async (dir) => {
    const path = await image(dir);
    const a = openImageFd(path, "read-write");
    const b = openImageFd(path, "read-write");
    const c = openImageFd(path, "read-only");
    try {
      lockImage(a, "read-write", path);
      assert.deepEqual(lockedBytes(path), WRITER_BYTES);
      assertConflict(b, "read-write", "refuses", "write");
      assertConflict(c, "read-only", "holds", "write");
      assert.deepEqual(lockedBytes(path), WRITER_BYTES, "a refused lock leaves nothing behind");
      assert.deepEqual(findImageLockConflict(b, "read-only"), {
        kind: "holds",
        permission: "write",
        byte: 101,
        pid: undefined,
      });

      // the writer steps down to a reader: a second reader is welcome, a writer is not
      lockImage(a, "read-only", path);
      assert.deepEqual(lockedBytes(path), READER_BYTES);
      lockImage(c, "read-only", path);
      assertConflict(b, "read-write", "refuses", "write");
      assert.equal(findImageLockConflict(b, "read-only"), undefined);

      // released (explicitly, and by closing), the image takes a writer again
      unlockImage(a);
      closeFd(c);
      assert.deepEqual(lockedBytes(path), []);
      lockImage(b, "read-write", path);
      assertConflict(a, "read-write", "refuses", "write");
    } finally {
      closeFd(a);
      closeFd(b);
      closeFd(c); // closing twice is harmless: close(2) just fails with EBADF
    }
    assert.deepEqual(lockedBytes(path), []);
  });
});

Deno.test("image lock: fileIdentity names the file (dev, ino) whatever the path or fd", async () => {
  await withTempDir(async (dir) => {
    const path = await image(dir);
    await Deno.link(path, `${dir}/alias.qcow2`);
    const other = await image(dir, "other.qcow2");
    const a = openImageFd(path, "read-only");
    const b = openImageFd(`${dir}/alias.qcow2`, "read-write");
    const c = openImageFd(other, "read-only");
    try {
      const st = Deno.statSync(path);
      assert.ok(st.ino !== null, "Linux reports inodes");
      assert.deepEqual(fileIdentity(a), {
        dev: BigInt(st.dev),
        ino: BigInt(st.ino!),
        key: `${st.dev}:${st.ino}`,
      });
      assert.equal(fileIdentity(b).key, fileIdentity(a).key);
      assert.notEqual(fileIdentity(c).key, fileIdentity(a).key);
    } finally {
      closeFd(a);
      closeFd(b);
      closeFd(c);
    }
  });
});

/** Starts a second Deno process that locks `path` for `mode`, says "locked", and holds it until killed. */
async function holdInChild(path: string, mode: ImageLockMode): Promise<Deno.ChildProcess> {
  const mod = new URL("../ffi/image_lock.ts", import.meta.url).href;
  const code = `import { lockImage, openImageFd } from ${JSON.stringify(mod)};
    const fd = openImageFd(${JSON.stringify(path)}, ${JSON.stringify(mode)});
    lockImage(fd, ${JSON.stringify(mode)});
    console.log("locked");
    setInterval(() => {}, 1 << 30); // alive until killed (a bare pending promise would let Deno exit)`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    stdout: "piped",
    stderr: "inherit",
  })
    .spawn();
  const reader = child.stdout.getReader();
  const { value } = await reader.read();
  reader.releaseLock();
  assert.equal(new TextDecoder().decode(value).trim(), "locked");
  return child;
}

Deno.test("image lock: a second process's locks conflict, and go with it", async () => {
  await withTempDir(async (dir) => {
    const path = await image(dir);
    const fd = openImageFd(path, "read-write");
    try {
      const writer = await holdInChild(path, "read-write");
      assertConflict(fd, "read-write", "refuses", "write");
      assertConflict(fd, "read-only", "holds", "write");
      writer.kill("SIGKILL");
      await writer.status;
      await writer.stdout.cancel();
      const reader = await holdInChild(path, "read-only");
      assertConflict(fd, "read-write", "refuses", "write");
      lockImage(fd, "read-only", path);
      reader.kill("SIGKILL");
      await reader.status;
      await reader.stdout.cancel();
      lockImage(fd, "read-write", path);
    } finally {
      closeFd(fd);
    }
  });
});

Deno.test("image lock: QEMU refuses an image we hold, by the same bytes it takes itself", async () => {
  await withTempDir(async (dir) => {
    const path = await image(dir);
    const fd = openImageFd(path, "read-write");
    try {
      lockImage(fd, "read-write", path);
      const w = await run("qemu-io", ["-c", "write 0 512", path]);
      assert.notEqual(w.code, 0);
      assert.match(w.stderr, /Failed to get "write" lock/);
      const info = await run("qemu-img", ["info", path]);
      assert.notEqual(info.code, 0);
      assert.match(info.stderr, /Failed to get shared "write" lock/);
      const forced = await run("qemu-img", ["info", "-U", path]);
      assert.equal(forced.code, 0, "qemu-img info -U (force share) still reads it");
      const vm = await run("qemu-system-x86_64", [
        "-S",
        "-display",
        "none",
        "-nodefaults",
        "-drive",
        `file=${path},if=none,id=d0`,
        "-monitor",
        "none",
      ]);
      assert.notEqual(vm.code, 0);
      assert.match(vm.stderr, /Failed to get "write" lock/);

      lockImage(fd, "read-only", path);
      const w2 = await run("qemu-io", ["-c", "write 0 512", path]);
      assert.match(w2.stderr, /Failed to get "write" lock/);
      const r = await run("qemu-io", ["-r", "-c", "read 0 512", path]);
      assert.equal(r.code, 0, `a QEMU reader shares with our reader: ${r.stderr}`);
      assert.match(r.stdout, /read 512\/512 bytes/);
      assert.equal((await run("qemu-img", ["info", path])).code, 0);

      unlockImage(fd);
      const w3 = await run("qemu-io", ["-c", "write 0 512", path]);
      assert.equal(w3.code, 0, `unlocked, QEMU writes: ${w3.stderr}`);
    } finally {
      closeFd(fd);
    }
  });
});

/** Starts `cmd` on `path` and waits until its lock bytes equal `bytes` (it has opened the image). */
async function startQemu(
  path: string,
  bytes: number[],
  cmd: string,
  args: string[],
): Promise<Deno.ChildProcess> {
  const child = new Deno.Command(cmd, { args, stdin: "null", stdout: "null", stderr: "piped" }).spawn();
  for (let i = 0; i < 200 && lockedBytes(path).join() !== bytes.join(); i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.deepEqual(lockedBytes(path), bytes, `${cmd} did not lock ${path}`);
  return child;
}

async function stop(child: Deno.ChildProcess): Promise<void> {
  child.kill("SIGKILL");
  await child.status;
  await child.stderr.cancel();
}

Deno.test("image lock: we refuse an image QEMU holds, and our bytes are QEMU's", async () => {
  await withTempDir(async (dir) => {
    const path = await image(dir);
    const fd = openImageFd(path, "read-write");
    try {
      // qemu-io as a writer: we can neither write nor read it
      const writer = await startQemu(path, WRITER_BYTES, "qemu-io", ["-c", "sleep 60000", path]);
      assert.deepEqual(findImageLockConflict(fd, "read-write"), {
        kind: "refuses",
        permission: "write",
        byte: 201,
        pid: undefined,
      });
      assertConflict(fd, "read-write", "refuses", "write");
      assertConflict(fd, "read-only", "holds", "write");
      await stop(writer);

      // a QEMU VM with the disk: the same
      const vm = await startQemu(path, WRITER_BYTES, "qemu-system-x86_64", [
        "-S",
        "-display",
        "none",
        "-nodefaults",
        "-monitor",
        "none",
        "-drive",
        `file=${path},if=none,id=d0`,
      ]);
      assertConflict(fd, "read-write", "refuses", "write");
      await stop(vm);

      // qemu-io -r as a reader: we may read alongside it, not write
      const reader = await startQemu(path, READER_BYTES, "qemu-io", ["-r", "-c", "sleep 60000", path]);
      assertConflict(fd, "read-write", "refuses", "write");
      lockImage(fd, "read-only", path);
      assert.deepEqual(lockedBytes(path), READER_BYTES, "vmd's reader takes the bytes QEMU's reader takes");
      unlockImage(fd);
      await stop(reader);

      // alone, our writer takes exactly the bytes QEMU's writer took
      lockImage(fd, "read-write", path);
      assert.deepEqual(lockedBytes(path), WRITER_BYTES);
    } finally {
      closeFd(fd);
    }
  });
});
