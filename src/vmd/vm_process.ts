/**
 * The VM process: one per running VM, started by the daemon as `cli.ts vm-process <channel fd>` with only
 * the permissions its permission-table row grants, possibly before its VM exists (the daemon's warm pool).
 * While it waits it starts a vCPU worker's and the virtio-rng worker's isolates and creates the KVM VM with its
 * irqchip and PIT (`pc_platform.ts`). It reads its boot spec from stdin, takes the VM's
 * descriptors from its descriptor channel (`spec_fds.ts`: checked, then the channel is closed), creates the
 * VM (its virtio-net devices on the tap fds the daemon opened), locks down (`lockdown.ts`), reports `ready`,
 * copies between COM1 and the console pty's master (an fd the daemon opened and sent), obeys
 * pause/resume/shutdown (the ACPI power button when the guest armed it, else Ctrl-Alt-Del to the guest, or a
 * stop at once when the guest has neither driver to answer), and reports how the guest ended. If the daemon
 * goes away (stdin closes) the VM stops.
 *
 * @module
 */
import { closeFd } from "../../ffi/fd.ts";
import { readPty, writePty } from "../../ffi/pty.ts";
import { pollFds, POLLIN } from "../../ffi/poll.ts";
import { openLibc, resolveLibcPath } from "../../ffi/libc.ts";
import { fstatFd } from "../../ffi/open_file.ts";
import type { BpfInstruction } from "../../ffi/seccomp.ts";
import { compileVmFilter, describeLockdown, lockDown, vmIdentity } from "../privsep/lockdown.ts";
import { prewarmDeviceWorker } from "../virtio/device_handle.ts";
import { lateWorkerUrl } from "../virtio/late_worker.ts";
import { prewarmVcpuWorkers } from "../vcpu/vcpu_handle.ts";
import { describeVcpuExit, formatRegisterDump } from "../vcpu/vcpu_exit.ts";
import { readBootFile } from "../vm/boot_file.ts";
import { bootKernel } from "../vm/boot_kernel.ts";
import { isKernelImage } from "../firmware/bios_image.ts";
import { Vm } from "../vm/vm.ts";
import { prepareVmPlatform } from "../vm/pc_platform.ts";
import { encodeFrame, FrameDecoder } from "./framing.ts";
import { pauseKeepingClock, resumeKeepingClock } from "./guest_clock.ts";
import { checkSender, receiveSpecFds } from "./spec_fds.ts";
import { type EndKind, type FromVm, type ToVm, validateToVm, type VmSpec } from "./vm_messages.ts";

let writing: Promise<void> = Promise.resolve();

/** Sends one message to the daemon (in order). */
function send(msg: FromVm): Promise<void> {
  const frame = encodeFrame(msg);
  writing = writing.then(async () => {
    let at = 0;
    while (at < frame.length) at += await Deno.stdout.write(frame.subarray(at));
  }).catch(() => {});
  return writing;
}

/** Yields each valid message from the daemon; ends when stdin closes or a message is invalid. */
async function* messages(): AsyncGenerator<ToVm> {
  const decoder = new FrameDecoder();
  for await (const chunk of Deno.stdin.readable) {
    for (const ev of decoder.push(chunk)) {
      if (ev.kind !== "frame") {
        console.error(`vm-process: bad frame from the daemon (${ev.kind}); stopping`);
        return;
      }
      yield validateToVm(ev.value);
    }
  }
}

/** Copies console input from the pty master `fd` to the guest until `done()` says the VM has ended. */
async function pumpPtyInput(vm: Vm, fd: number, done: () => boolean): Promise<void> {
  const buf = new Uint8Array(1024);
  while (!done()) {
    const [ev] = await pollFds([{ fd, events: POLLIN }], 200);
    if ((ev & POLLIN) === 0) continue;
    const n = readPty(fd, buf);
    if (n === null || n === 0) continue;
    let bytes = buf.slice(0, n);
    while (bytes.length > 0 && !done()) {
      bytes = bytes.subarray(vm.consoleInput(bytes));
      if (bytes.length > 0) await new Promise((r) => setTimeout(r, 5));
    }
  }
}

async function boot(spec: VmSpec): Promise<Vm> {
  // vmd opened these files; this process reads the descriptors it inherited, sizes checked first
  const boot = readBootFile(spec.kernel.fd, spec.kernel.name, "kernel or BIOS", spec.memory);
  // as vmd(8): a file that is not a kernel is a BIOS image, which boots the VM's disks
  const kernel = isKernelImage(boot) ? boot : undefined;
  if (kernel !== undefined && spec.bootDevice !== null) {
    throw new Error(
      `boot device ${spec.bootDevice} chooses what the BIOS boots; ${spec.kernel.name} is a kernel, booted ` +
        "without a BIOS",
    );
  }
  const initrd = spec.initrd === null
    ? undefined
    : readBootFile(spec.initrd.fd, spec.initrd.name, "initrd", spec.memory);
  // like vmd(8), every VM gets an entropy device; each disk is a virtio-blk function, the CD-ROM virtio-scsi
  const vm = Vm.create({
    memory: spec.memory,
    vcpus: spec.cpus,
    platform: "pc",
    disks: spec.disks,
    cdrom: spec.cdrom === null ? undefined : { path: spec.cdrom.name, fd: spec.cdrom.fd },
    rng: true,
    nics: spec.nics.map((n) => ({
      tap: n.tap,
      mac: Uint8Array.from(n.mac),
      lockedLladdr: n.lockedLladdr,
      local: n.local ?? undefined,
      opened: { fd: n.fd, hostMac: Uint8Array.from(n.hostMac) },
    })),
    bios: kernel === undefined ? { image: boot, name: spec.kernel.name } : undefined,
    bootDevice: spec.bootDevice ?? undefined,
  });
  try {
    if (kernel === undefined) return vm;
    await bootKernel(vm, kernel, {
      kernelName: spec.kernel.name,
      cmdline: spec.cmdline,
      initrd,
      initrdName: spec.initrd?.name ?? "initrd",
    });
    return vm;
  } catch (e) {
    vm.close();
    throw e;
  }
}

/**
 * Runs the VM-process role with its descriptor channel on fd `args[0]`; resolves to the process's exit
 * status.
 */
export async function vmProcessMain(args: readonly string[]): Promise<number> {
  const channel = Number(args[0]);
  if (args.length !== 1 || !Number.isInteger(channel) || channel < 3) {
    console.error("vm-process: usage: vm-process <descriptor channel fd> (started by vmd, not by hand)");
    return 1;
  }
  // While it waits for a VM (nothing here depends on which): the isolates of a vCPU worker (most VMs have
  // one) and, from sources, of the virtio-rng worker (every VM has one) load their modules; the KVM VM with
  // its irqchip and PIT is created (prepareVmPlatform); the channel's sender is checked, the libc bindings
  // are opened and the seccomp program is compiled.
  const policy = { libcPath: resolveLibcPath() };
  prewarmVcpuWorkers(1, policy);
  // virtio-rng starts at DRIVER_OK from its bundle, read now, when this process runs from bundles
  if (lateWorkerUrl("virtio-rng") === undefined) prewarmDeviceWorker("virtio-rng", policy);
  try {
    prepareVmPlatform();
  } catch {
    // nothing prepared: Vm.create meets the same problem and reports it for the VM
  }
  let filter: readonly BpfInstruction[];
  try {
    checkSender(channel);
    fstatFd(channel);
    filter = compileVmFilter(openLibc(policy.libcPath));
  } catch (e) {
    console.error(`vm-process: ${(e as Error).message}`);
    return 1;
  }
  const incoming = messages();
  const first = await incoming.next();
  if (first.done || first.value.type !== "boot") {
    console.error("vm-process: expected a boot message first");
    closeFd(channel);
    return 1;
  }
  let spec: VmSpec;
  let vm: Vm;
  try {
    try {
      spec = receiveSpecFds(channel, first.value.spec);
    } finally {
      closeFd(channel);
    }
    vm = await boot(spec);
  } catch (e) {
    await send({ type: "failed", message: e instanceof Error ? e.message : String(e) });
    return 1;
  }
  const master = spec.consoleFd;
  let ended = false;
  try {
    await vm.start();
    // Lock-down (issue 12): the VM, its descriptors and all its workers are up; from here on this process
    // can only use what it holds. See src/privsep/lockdown.ts.
    const locked = lockDown({ identity: vmIdentity(spec.vmId), program: filter });
    console.error(`vm-process: ${describeLockdown(locked)}`);
    await send({ type: "ready" });
    const output = vm.pumpConsole((bytes) => {
      // A console nobody reads fills the pty's queue; what does not fit is dropped, as on a serial line.
      let rest = bytes;
      while (rest.length > 0) {
        const n = writePty(master, rest);
        if (n === 0) return;
        rest = rest.subarray(n);
      }
    });
    const input = pumpPtyInput(vm, master, () => ended);
    // obeys the daemon until the VM ends; a closed pipe (the daemon is gone) stops the VM
    let clock: bigint | undefined; // the guest's clock while paused
    void (async () => {
      for await (const msg of incoming) {
        if (msg.type === "pause") {
          clock ??= await pauseKeepingClock(vm);
          await send({ type: "paused" });
        } else if (msg.type === "resume") {
          if (clock !== undefined) await resumeKeepingClock(vm, clock);
          clock = undefined;
          await send({ type: "resumed" });
        } else if (msg.type === "shutdown") {
          // a paused guest cannot answer: it runs again to take the keys
          if (clock !== undefined) await resumeKeepingClock(vm, clock);
          clock = undefined;
          // the ACPI power button when the guest armed it, else Ctrl-Alt-Del on the i8042
          const by = vm.pressPowerButton() ? "power-button" : vm.sendCtrlAltDel() ? "ctrl-alt-del" : "none";
          const asked = by !== "none";
          await send({ type: "shutting-down", asked, by });
          if (!asked) {
            await vm.stop();
            return;
          }
        }
      }
      if (!ended) await vm.stop(); // the daemon went away
    })().catch(async (e) => {
      console.error(`vm-process: ${e instanceof Error ? e.message : String(e)}; stopping the VM`);
      if (!ended) await vm.stop();
    });
    const { exit } = await vm.wait();
    ended = true;
    await output;
    await input;
    const kind: EndKind = exit.kind === "exit-port" || exit.kind === "hlt" || exit.kind === "shutdown" ||
        exit.kind === "reboot" || exit.kind === "stopped"
      ? exit.kind
      : "error";
    const dump = "dump" in exit && exit.dump !== undefined ? formatRegisterDump(exit.dump) : null;
    await send({ type: "ended", kind, reason: describeVcpuExit(exit), dump });
    return 0;
  } catch (e) {
    await send({ type: "failed", message: e instanceof Error ? e.message : String(e) });
    return 1;
  } finally {
    ended = true;
    closeFd(master);
    vm.close();
  }
}
