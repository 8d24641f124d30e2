/**
 * The i8042 model on its own (no KVM): the queue and IRQ 1 pulses, the keyboard's answers, when the host may
 * type keys, and set-2 codes with translation off.
 */
import assert from "node:assert/strict";
import { createI8042State, CTRL_ALT_DEL_SET1, I8042, I8042_QUEUE_SIZE } from "../src/devices/i8042.ts";

function setup(): {
  kbc: I8042;
  host: I8042;
  pulses: () => number;
  resets: () => number;
  read: () => number[];
} {
  const state = createI8042State();
  let pulses = 0;
  let resets = 0;
  const kbc = new I8042(state, () => resets++, () => pulses++);
  const host = new I8042(state, () => {}, () => pulses++);
  const read = (): number[] => {
    const out: number[] = [];
    while (kbc.pioRead(4, 1) & 1) out.push(kbc.pioRead(0, 1));
    return out;
  };
  return { kbc, host, pulses: () => pulses, resets: () => resets, read };
}

Deno.test("i8042: controller and keyboard commands answer as a PS/2 keyboard without a mouse", () => {
  const { kbc, read, resets } = setup();
  kbc.pioWrite(4, 1, 0x20);
  assert.deepEqual(read(), [0x45]);
  for (const [cmd, answer] of [[0xaa, 0x55], [0xab, 0x00], [0xa9, 0x02]]) {
    kbc.pioWrite(4, 1, cmd);
    assert.deepEqual(read(), [answer]);
  }
  kbc.pioWrite(0, 1, 0xff);
  assert.deepEqual(read(), [0xfa, 0xaa]);
  kbc.pioWrite(0, 1, 0xf2);
  assert.deepEqual(read(), [0xfa, 0xab, 0x41], "translated id");
  kbc.pioWrite(0, 1, 0xed);
  kbc.pioWrite(0, 1, 0x07);
  kbc.pioWrite(0, 1, 0xf3);
  kbc.pioWrite(0, 1, 0x00);
  kbc.pioWrite(0, 1, 0xf0);
  kbc.pioWrite(0, 1, 0x00);
  kbc.pioWrite(0, 1, 0x42);
  assert.deepEqual(read(), [0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0x02, 0xfa]);
  kbc.pioWrite(4, 1, 0xa7);
  kbc.pioWrite(4, 1, 0x20);
  assert.equal(read()[0] & 0x20, 0x20, "aux disabled");
  assert.equal(resets(), 0);
  kbc.pioWrite(4, 1, 0xd1);
  kbc.pioWrite(0, 1, 0x01);
  assert.equal(resets(), 0, "reset line high");
  kbc.pioWrite(4, 1, 0xfe);
  assert.equal(resets(), 1);
});

Deno.test("i8042: keys reach the guest only once a driver set the keyboard up; IRQ 1 per available byte", () => {
  const { kbc, host, pulses, read } = setup();
  assert.equal(host.typeKeys(CTRL_ALT_DEL_SET1), false, "no driver yet");
  kbc.pioWrite(0, 1, 0xf5); // scanning off
  read();
  assert.equal(host.typeKeys(CTRL_ALT_DEL_SET1), false, "scanning disabled");
  kbc.pioWrite(0, 1, 0xf4);
  assert.deepEqual(read(), [0xfa]);
  const before = pulses();
  assert.equal(host.typeKeys(CTRL_ALT_DEL_SET1), true);
  assert.equal(pulses(), before + 1, "one pulse: the queue was empty");
  const got = read();
  assert.deepEqual(got, [...CTRL_ALT_DEL_SET1]);
  assert.equal(pulses(), before + CTRL_ALT_DEL_SET1.length, "one more per byte left after each read");
  // the queue takes all or nothing
  const many = Array.from({ length: I8042_QUEUE_SIZE / 2 }, () => 0x1c);
  assert.equal(host.typeKeys(many), true);
  assert.equal(host.typeKeys(many), true);
  assert.equal(host.typeKeys([0x1c]), false, "full");
  assert.equal(read().length, I8042_QUEUE_SIZE);
  // translation off: set 2
  kbc.pioWrite(4, 1, 0x60);
  kbc.pioWrite(0, 1, 0x05);
  assert.equal(host.typeKeys(CTRL_ALT_DEL_SET1), true);
  assert.deepEqual(read(), [0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0, 0x14]);
  kbc.pioWrite(0, 1, 0xf2);
  assert.deepEqual(read(), [0xfa, 0xab, 0x83], "untranslated id");
  // keyboard interrupt off: the host cannot type
  kbc.pioWrite(4, 1, 0x60);
  kbc.pioWrite(0, 1, 0x44);
  assert.equal(host.typeKeys(CTRL_ALT_DEL_SET1), false);
});
