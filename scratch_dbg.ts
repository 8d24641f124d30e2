import { buildKitGuest } from "./examples/guests/kit/build.ts";
import { runKernel } from "./tests/kvm_support.ts";
const guest = await buildKitGuest("virtio_irq");
let vmRef: any;
const r = await runKernel(guest.path, { rng: true, timeoutMs: 3000, beforeRun: async (vm) => { vmRef = vm; } });
console.log(r.output, r.result.exit, vmRef.virtioDevices.map((d: any) => d.failure));
