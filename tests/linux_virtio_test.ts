/**
 * Real Linux on virtio (hardware KVM only: on PVM a stock kernel's boot to the shell takes more than 30
 * minutes, docs/pvm.md): Debian's kernel with the test initramfs loads virtio_pci, virtio_blk, virtio-rng and
 * ext4, mounts an ext4 image made with `mkfs.ext4 -d`, checks a file's sha256, writes a file, syncs, reads
 * the entropy device and reboots; the host then reads the new file with `debugfs`.
 */
import assert from "node:assert/strict";
import { prepareGuests } from "../scripts/prepare_guests.ts";
import { hardwareKvmTest, runKernel } from "./kvm_support.ts";
import { sh } from "./net_support.ts";
import { helloExt4Image } from "./virtio_support.ts";

hardwareKvmTest(
  "Linux mounts an ext4 virtio disk, checks a file's sha256, writes one back and reads virtio-rng " +
    "(hardware KVM)",
  async () => {
    const g = await prepareGuests({ log: () => {} });
    const dir = await Deno.makeTempDir();
    try {
      const { img, sha } = await helloExt4Image(dir);
      const script = [
        "mkdir -p /mnt",
        "mount -t ext4 /dev/vda /mnt",
        "sha256sum /mnt/hello.txt",
        "echo written-by-guest > /mnt/out.txt",
        "sync",
        "umount /mnt",
        "head -c 64 /dev/hwrng | wc -c | sed 's/^/rng-bytes-/'",
        "echo all-$((1+1))-done",
        "reboot -f",
      ].join(" && ") + "\n";
      let typed = false;
      const run = await runKernel(g.bzImage, {
        initrd: g.initrd,
        cmdline: "console=ttyS0 reboot=k panic=-1 vmd.shell",
        memory: 512 << 20,
        disks: [{ path: img }],
        rng: true,
        timeoutMs: 120_000,
        onOutput: (out, vm) => {
          if (!typed && out.includes("VMD-INITRAMFS-READY") && /# $/.test(out)) {
            typed = true;
            vm.consoleInput(new TextEncoder().encode(script));
          }
        },
      });
      assert.match(run.output, new RegExp(`${sha}\\s+/mnt/hello.txt`), run.output);
      assert.match(run.output, /rng-bytes-64/);
      assert.match(run.output, /all-2-done/);
      assert.deepEqual(run.result.exit, { kind: "reboot" });
      assert.equal((await sh("debugfs", "-R", "cat /out.txt", img)).trim(), "written-by-guest");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
