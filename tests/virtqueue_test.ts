import assert from "node:assert/strict";
import { GuestMemory } from "../src/memory/guest_memory.ts";
import {
  Chain,
  checkQueueConfig,
  SplitQueue,
  VIRTQ_DESC_F_INDIRECT as IND,
  VIRTQ_DESC_F_NEXT as NEXT,
  VIRTQ_DESC_F_WRITE as WRITE,
} from "../src/virtio/virtqueue.ts";

const RAM = 1 << 20;
const DESC = 0x1000;
const AVAIL = 0x2000;
const USED = 0x3000;
const SIZE = 8;

function setup(o: { eventIdx?: boolean; indirect?: boolean; size?: number } = {}) {
  const mem = new GuestMemory({
    sab: new SharedArrayBuffer(RAM),
    offset: 0,
    regions: [{ gpa: 0, size: RAM }],
  });
  const size = o.size ?? SIZE;
  const q = new SplitQueue(mem, {
    size,
    desc: DESC,
    avail: AVAIL,
    used: USED,
    eventIdx: o.eventIdx ?? false,
    indirect: o.indirect ?? true,
  });
  let availIdx = 0;
  const desc = (i: number, addr: number, len: number, flags: number, next = 0, table = DESC) => {
    mem.writeU64(table + 16 * i, BigInt(addr));
    mem.writeU32(table + 16 * i + 8, len);
    mem.writeU16(table + 16 * i + 12, flags);
    mem.writeU16(table + 16 * i + 14, next);
  };
  const offer = (head: number) => {
    mem.writeU16(AVAIL + 4 + 2 * (availIdx % size), head);
    availIdx = (availIdx + 1) & 0xffff;
    mem.writeU16(AVAIL + 2, availIdx);
  };
  return { mem, q, desc, offer, chain: new Chain(size) };
}

Deno.test("virtqueue: a readable+writable chain resolves to guest-memory indices, in order", () => {
  const { q, desc, offer, chain } = setup();
  desc(0, 0x10000, 16, NEXT, 5);
  desc(5, 0x20000, 512, NEXT | WRITE, 2);
  desc(2, 0x30000, 1, WRITE);
  offer(0);
  assert.equal(q.pending(), 1);
  assert.equal(q.pop(chain), "chain");
  assert.equal(chain.head, 0);
  assert.equal(chain.count, 3);
  assert.equal(chain.readable, 1);
  assert.deepEqual([...chain.at.subarray(0, 3)], [0x10000, 0x20000, 0x30000]);
  assert.equal(chain.readBytes, 16);
  assert.equal(chain.writeBytes, 513);
  assert.equal(q.pop(chain), "empty");
});

Deno.test("virtqueue: the used element is written before the index is published", () => {
  const { mem, q, desc, offer, chain } = setup();
  desc(3, 0x10000, 4, WRITE);
  offer(3);
  assert.equal(q.pop(chain), "chain");
  q.push(chain.head, 4);
  assert.equal(mem.readU16(USED + 2), 1);
  assert.equal(mem.readU32(USED + 4), 3);
  assert.equal(mem.readU32(USED + 8), 4);
});

Deno.test("virtqueue: hostile chains fail alone and the queue keeps working", () => {
  const { q, desc, offer, chain } = setup({ indirect: true });
  const cases: [string, () => void][] = [
    ["loop", () => {
      desc(0, 0x10000, 16, NEXT, 1);
      desc(1, 0x10000, 16, NEXT, 0);
    }],
    ["outside-ram", () => desc(0, RAM - 8, 16, 0)],
    ["outside-ram", () => desc(0, 0x10000, 0xffffffff, WRITE)],
    ["outside-ram", () => desc(0, 2 ** 52, 16, 0)],
    ["bad-next", () => desc(0, 0x10000, 16, NEXT, SIZE)],
    ["write-before-read", () => {
      desc(0, 0x10000, 16, NEXT | WRITE, 1);
      desc(1, 0x10000, 16, 0);
    }],
    ["bad-indirect", () => desc(0, 0x40000, 24, IND)], // not whole descriptors
    ["bad-indirect", () => desc(0, 0x40000, 32, IND | NEXT, 1)], // indirect with NEXT
    ["too-long", () => desc(0, 0x40000, 16 * (SIZE + 1), IND)],
    ["bad-indirect", () => {
      desc(0, 0x40000, 16, IND);
      desc(0, 0x50000, 16, IND, 0, 0x40000); // nested indirect
    }],
  ];
  for (const [why, build] of cases) {
    build();
    offer(0);
    assert.equal(q.pop(chain), "failed", why);
    assert.equal(chain.error, why);
    q.push(chain.head, 0);
    // a good one right after
    desc(4, 0x10000, 16, 0);
    offer(4);
    assert.equal(q.pop(chain), "chain", `good after ${why}`);
    q.push(chain.head, 0);
  }
  assert.equal(q.broken, false);
});

Deno.test("virtqueue: an indirect table holds the chain; loops inside it are caught", () => {
  const { q, desc, offer, chain } = setup({ indirect: true });
  const T = 0x40000;
  desc(0, 0x10000, 16, NEXT, 1, T);
  desc(1, 0x20000, 4096, NEXT | WRITE, 2, T);
  desc(2, 0x30000, 1, WRITE, 0, T);
  desc(6, T, 48, IND);
  offer(6);
  assert.equal(q.pop(chain), "chain");
  assert.equal(chain.head, 6);
  assert.equal(chain.count, 3);
  assert.equal(chain.writeBytes, 4097);
  desc(2, 0x30000, 1, WRITE | NEXT, 1, T);
  offer(6);
  assert.equal(q.pop(chain), "failed");
  assert.equal(chain.error, "loop");
});

Deno.test("virtqueue: indirect descriptors are refused unless negotiated", () => {
  const { q, desc, offer, chain } = setup({ indirect: false });
  desc(0, 0x40000, 16, IND);
  offer(0);
  assert.equal(q.pop(chain), "failed");
  assert.equal(chain.error, "bad-indirect");
});

Deno.test("virtqueue: an avail index more than the queue size ahead, or a head past the table, breaks the ring", () => {
  const a = setup();
  a.mem.writeU16(AVAIL + 2, SIZE + 1);
  assert.equal(a.q.pop(a.chain), "broken");
  assert.equal(a.q.broken, true);
  assert.equal(a.q.pop(a.chain), "broken");
  const b = setup();
  b.mem.writeU16(AVAIL + 4, SIZE + 3);
  b.mem.writeU16(AVAIL + 2, 1);
  assert.equal(b.q.pop(b.chain), "broken");
});

Deno.test("virtqueue: the avail index wraps at 65536", () => {
  const { mem, q, desc, chain } = setup();
  desc(1, 0x10000, 8, 0);
  for (let n = 0; n < 70000; n++) {
    mem.writeU16(AVAIL + 4 + 2 * (n % SIZE), 1);
    mem.writeU16(AVAIL + 2, (n + 1) & 0xffff);
    assert.equal(q.pop(chain), "chain");
    q.push(1, 0);
  }
  assert.equal(mem.readU16(USED + 2), 70000 & 0xffff);
});

Deno.test("virtqueue: EVENT_IDX — notify only when used_event is passed; avail_event tracks what we take", () => {
  const { mem, q, desc, offer, chain } = setup({ eventIdx: true });
  desc(0, 0x10000, 8, 0);
  mem.writeU16(AVAIL + 4 + 2 * SIZE, 2); // used_event: interrupt once entry 2 is used
  for (let i = 0; i < 2; i++) {
    offer(0);
    q.pop(chain);
    q.push(0, 0);
  }
  assert.equal(mem.readU16(USED + 4 + 8 * SIZE), 2); // avail_event
  assert.equal(q.shouldNotify(), false);
  offer(0);
  q.pop(chain);
  q.push(0, 0);
  assert.equal(q.shouldNotify(), true);
  assert.equal(q.shouldNotify(), false); // nothing new
});

Deno.test("virtqueue: without EVENT_IDX the NO_INTERRUPT flag suppresses notifications", () => {
  const { mem, q, desc, offer, chain } = setup();
  desc(0, 0x10000, 8, 0);
  mem.writeU16(AVAIL, 1);
  offer(0);
  q.pop(chain);
  q.push(0, 0);
  assert.equal(q.shouldNotify(), false);
  mem.writeU16(AVAIL, 0);
  offer(0);
  q.pop(chain);
  q.push(0, 0);
  assert.equal(q.shouldNotify(), true);
});

Deno.test("virtqueue: queue configurations outside RAM, misaligned or not a power of two are refused", () => {
  const mem = new GuestMemory({
    sab: new SharedArrayBuffer(RAM),
    offset: 0,
    regions: [{ gpa: 0, size: RAM }],
  });
  const base = { size: 8, desc: DESC, avail: AVAIL, used: USED, eventIdx: false, indirect: false };
  assert.equal(checkQueueConfig(mem, base), undefined);
  assert.match(checkQueueConfig(mem, { ...base, size: 6 })!, /power of two/);
  assert.match(checkQueueConfig(mem, { ...base, desc: DESC + 8 })!, /misaligned/);
  assert.match(checkQueueConfig(mem, { ...base, used: RAM - 4 })!, /used ring is outside/);
  assert.match(checkQueueConfig(mem, { ...base, desc: 2 ** 40 })!, /descriptor table is outside/);
  assert.throws(() => new SplitQueue(mem, { ...base, size: 0 }), RangeError);
});

Deno.test("virtqueue: a new queue starts both rings at index 0, whatever the used ring held", () => {
  const mem = new GuestMemory({
    sab: new SharedArrayBuffer(RAM),
    offset: 0,
    regions: [{ gpa: 0, size: RAM }],
  });
  mem.writeU16(USED + 2, 1234);
  const q = new SplitQueue(mem, {
    size: 8,
    desc: DESC,
    avail: AVAIL,
    used: USED,
    eventIdx: false,
    indirect: false,
  });
  assert.equal(mem.readU16(USED + 2), 0);
  assert.equal(q.pending(), 0);
});
