/**
 * `deno task demo:linux`: prepares Debian's kernel and a busybox initramfs (scripts/prepare_guests.ts, cached)
 * and boots them with `vmd run`. The initramfs prints its marker and offers a shell (`exit` reboots and ends
 * the VM) in seconds on hardware KVM. On a PVM host (KVM without hardware virtualisation) vmd adapts the VM
 * to PVM itself, but the kernel runs so slowly there that it had not reached `/init` after 30 minutes
 * (docs/pvm.md).
 *
 * @module
 */
import { prepareGuests } from "../scripts/prepare_guests.ts";
import { runMain } from "../src/cli/run.ts";

const g = await prepareGuests();
Deno.exit(
  await runMain([
    "-m",
    "512M",
    "-b",
    g.bzImage,
    "--initrd",
    g.initrd,
    "--cmdline",
    "console=ttyS0 earlyprintk=serial reboot=k panic=-1 vmd.shell",
  ]),
);
