/**
 * `vmd demo`: boots the embedded demo guest (examples/guests/demo.S, built with gcc on first use) in a fresh
 * VM and shows its console. Exit status: the guest's exit-port value, or 1 with a one-line reason.
 *
 * @module
 */
import { buildFlatGuest } from "../../examples/guests/build.ts";
import { describeVcpuExit, formatRegisterDump } from "../vcpu/vcpu_exit.ts";
import { loadFlatGuest } from "../vm/flat_guest.ts";
import { Vm } from "../vm/vm.ts";

/** Runs the demo; resolves to the exit status. */
export async function demoMain(args: string[]): Promise<number> {
  if (args.length > 0) {
    console.error("usage: vmd demo");
    return 1;
  }
  const guest = await buildFlatGuest("demo");
  const vm = Vm.create({ memory: 16 << 20 });
  try {
    loadFlatGuest(vm, guest);
    const t0 = performance.now();
    await vm.start();
    await vm.pumpConsole(async (bytes) => {
      await Deno.stdout.write(bytes);
    });
    const { exit } = await vm.wait();
    const ms = (performance.now() - t0).toFixed(0);
    console.error(`vmd: demo: ${describeVcpuExit(exit)} after ${ms} ms, ${vm.vcpus[0].exits} exits`);
    if (exit.kind === "exit-port") return exit.status;
    if ("dump" in exit && exit.dump !== undefined) console.error(formatRegisterDump(exit.dump));
    return 1;
  } finally {
    vm.close();
  }
}
