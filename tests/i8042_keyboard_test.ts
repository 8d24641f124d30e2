/**
 * The i8042's PS/2 keyboard on real KVM: a kit guest sets it up as a driver would, and Ctrl-Alt-Del typed by
 * the host arrives as set-1 scancodes through IRQ 1, after which the guest resets through 0xFE.
 */
import assert from "node:assert/strict";
import { buildKitGuest } from "../examples/guests/kit/build.ts";
import { kvmTest, runKernel } from "./kvm_support.ts";

kvmTest(
  "i8042 keyboard: Ctrl-Alt-Del from the host reaches the guest through IRQ 1; it then resets",
  async () => {
    const guest = await buildKitGuest("kbd");
    let before: boolean | undefined;
    let sent: boolean | undefined;
    const run = await runKernel(guest.path, {
      timeoutMs: 15_000,
      beforeRun: (vm) => {
        before = vm.sendCtrlAltDel(); // no driver yet: nobody would read the keys
        return Promise.resolve();
      },
      onOutput: (out, vm) => {
        if (sent === undefined && out.includes("kbd: ready")) sent = vm.sendCtrlAltDel();
      },
    });
    assert.equal(before, false);
    assert.equal(sent, true);
    assert.deepEqual(run.result.exit, { kind: "reboot" }, run.output);
    const lines = run.output.trimEnd().split("\n");
    assert.deepEqual(lines, [
      "kbd: self-test 0x55, port test 0x0, aux test 0x2",
      "kbd: ready, id 0xab 0x41",
      ...["1d", "38", "e0", "53", "e0", "d3", "b8", "9d"].map((b) => `scancode 0x${b}`),
      "kbd: ctrl-alt-del, resetting",
    ]);
  },
);
