/**
 * A hostile local user in the socket's group against the real daemon: the test creates the user (useradd)
 * and runs vmctl as her (setpriv). Through an instance she tries to reach a root-only file by a qcow2
 * backing file, by a symlink, by a symlink swapped in while vmd opens her disk, and to hang the daemon with
 * a FIFO as a disk. Each is refused or harmless, and root's `vmctl status` keeps answering.
 */
import assert from "node:assert/strict";
import { buildKitGuest } from "../examples/guests/kit/build.ts";
import { createQcow2 } from "../src/disk/qcow2_create.ts";
import { kvmTest } from "./kvm_support.ts";
import { type AsUser, stagedForOtherUsers, TestDaemon } from "./vmd_support.ts";

const GROUP = "vmdtsecg";
const USER = "vmdtsecu";
const SECRET = "TOP-SECRET-b81e22";

async function sh(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  const o = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  return { code: o.code, out: new TextDecoder().decode(o.stdout) + new TextDecoder().decode(o.stderr) };
}

kvmTest(
  "hostile user: a backing file, a symlink, a symlink swapped in during the start and a FIFO never " +
    "reach a root-only file or stall the daemon",
  async () => {
    if (Deno.uid() !== 0) throw new Error("this test creates users: run it as root");
    const guest = await buildKitGuest("blk_plant");
    await stagedForOtherUsers();
    await sh("userdel", [USER]);
    await sh("groupdel", [GROUP]);
    const denoDir = await Deno.makeTempDir({ prefix: "vmd-test-deno-" });
    await Deno.chmod(denoDir, 0o1777);
    let d: TestDaemon | undefined;
    try {
      assert.equal((await sh("groupadd", [GROUP])).code, 0);
      const r = await sh("useradd", ["-M", "-N", "-G", GROUP, USER]);
      assert.equal(r.code, 0, r.out);
      const as: AsUser = {
        uid: Number((await sh("id", ["-u", USER])).out.trim()),
        gid: Number((await sh("id", ["-g", USER])).out.trim()),
        denoDir,
      };
      d = await TestDaemon.start(`
socket owner :${GROUP}
vm "tpl" {
  disable
  boot "${guest.path}" { cmdline "plant=/nonexistent" }
  memory 32M
  allow instance { disk, owner ${USER} }
}
`);
      const secret = `${d.dir}/secret.img`;
      await Deno.writeTextFile(secret, SECRET.padEnd(1 << 20, "!"), { mode: 0o600 });
      const home = `${d.dir}/home`;
      await Deno.mkdir(home);
      await Deno.chown(home, as.uid, as.gid);
      const own = async (path: string) => await Deno.chown(path, as.uid, as.gid);
      const start = (name: string, disk: string) =>
        d!.vmctl(["start", "-t", "tpl", "-d", disk, name], { as });

      // 1. her own qcow2, whose backing file is the root-only secret: vmd opens the backing file as her
      const child = `${home}/child.qcow2`;
      await createQcow2(child, { size: 1 << 20, backingFile: secret, backingFormat: "raw" });
      await own(child);
      const viaBacking = await start("i1", child);
      assert.equal(viaBacking.code, 1, viaBacking.stdout);
      assert.match(viaBacking.stderr, /secret\.img: permission denied \(opened as uid \d+\)/);

      // 2. a symlink to the secret: refused as a symlink, whoever could read its target
      const link = `${home}/link.img`;
      await Deno.symlink(secret, link);
      const viaLink = await start("i2", link);
      assert.equal(viaLink.code, 1);
      assert.match(viaLink.stderr, /link\.img: the disk image is a symbolic link; name the file itself/);

      // 3. a FIFO: refused at once, and the daemon never blocks on it
      const fifo = `${home}/fifo.img`;
      assert.equal((await sh("mkfifo", [fifo])).code, 0);
      await own(fifo);
      const t0 = Date.now();
      const viaFifo = await start("i3", fifo);
      assert.equal(viaFifo.code, 1);
      assert.match(viaFifo.stderr, /fifo\.img: the disk image is a FIFO, not a regular file/);
      assert.ok(Date.now() - t0 < 10_000, "refused promptly");
      assert.equal((await d.vmctl(["status"])).code, 0, "root's status still answers");

      // 4. a device node (a loop device over the secret, which root set up): only root's files may be devices
      const lo = await sh("losetup", ["-f", "--show", "-r", secret]);
      assert.equal(lo.code, 0, lo.out);
      const loopDev = lo.out.trim();
      try {
        const viaDevice = await start("i4", loopDev);
        assert.equal(viaDevice.code, 1);
        assert.match(viaDevice.stderr, /(permission denied|is a block, not a regular file)/);
      } finally {
        await sh("losetup", ["-d", loopDev]);
      }

      // 5. the path swaps between her own disk and a symlink to the secret while she starts instances: each
      // start either refuses the symlink or boots her disk, opened once as her (nothing opens the path again)
      const mine = `${home}/mine.img`;
      await Deno.writeFile(mine, new TextEncoder().encode("MINE".padEnd(1 << 20, ".")));
      await own(mine);
      const swapped = `${home}/swap.img`;
      // the swapping runs as her, in her own folder, as an attacker would
      const loop = `while :; do cp -f ${mine} ${swapped}.f; mv -fT ${swapped}.f ${swapped}; ` +
        `ln -sfT ${secret} ${swapped}.l; mv -fT ${swapped}.l ${swapped}; done`;
      const swapper = new Deno.Command("setpriv", {
        args: [`--reuid=${as.uid}`, `--regid=${as.gid}`, "--init-groups", "sh", "-c", loop],
        stdout: "null",
        stderr: "null",
      }).spawn();
      let booted = 0;
      let refused = 0;
      try {
        for (let i = 0; i < 8; i++) {
          const r = await start(`s${i}`, swapped);
          if (r.code === 0) {
            booted++;
          } else {
            // the only ways to fail: the symlink is refused, or the file it names is not hers to open
            assert.match(
              r.stderr,
              /swap\.img: (the disk image is a symbolic link|permission denied)/,
              r.stderr,
            );
            refused++;
          }
          await d.vmctl(["stop", "-f", `s${i}`]);
        }
      } finally {
        swapper.kill("SIGKILL");
        await swapper.status;
      }
      console.log(`swap race: ${booted} booted her disk, ${refused} refused the symlink`);
      assert.equal(booted + refused, 8);
      assert.equal((await d.vmctl(["status"])).code, 0);
      assert.ok(!d.log.includes(SECRET), "the secret is in no log line");
    } finally {
      await d?.cleanup();
      await sh("userdel", [USER]);
      await sh("groupdel", [GROUP]);
      await Deno.remove(denoDir, { recursive: true }).catch(() => {});
    }
  },
);
