import assert from "node:assert/strict";
import { buildFlatGuest } from "../examples/guests/build.ts";
import { GuestMemory, GuestMemoryError } from "../src/memory/guest_memory.ts";
import { loadFlatGuest } from "../src/vm/flat_guest.ts";
import { ramLayout, Vm } from "../src/vm/vm.ts";
import { kvmTest } from "./kvm_support.ts";

kvmTest("guest writes are visible in the SharedArrayBuffer and host writes in the guest", async () => {
  const vm = Vm.create({ memory: 16 << 20 });
  try {
    loadFlatGuest(vm, await buildFlatGuest("memory_rw"));
    vm.memory.writeU32(0x200000, 41_999);
    await vm.start();
    let out = "";
    await vm.pumpConsole((b) => {
      out += new TextDecoder().decode(b);
    });
    assert.deepEqual((await vm.wait()).exit, { kind: "exit-port", status: 0x33 });
    assert.deepEqual(out, "memory ok\n");
    assert.deepEqual(vm.memory.readU32(0x200004), 42_000);
    // The same bytes through a second view over the raw SharedArrayBuffer, as a device worker would see them.
    const share = vm.memory.share();
    const raw = new DataView(share.sab, share.offset);
    assert.deepEqual(raw.getUint32(0x200008, true), 0x600dcafe);
  } finally {
    vm.close();
  }
});

Deno.test("host access outside guest RAM throws GuestMemoryError naming the address", () => {
  const sab = new SharedArrayBuffer(3 * 4096);
  const mem = new GuestMemory({
    sab,
    offset: 0,
    regions: [{ gpa: 0, size: 4096 }, { gpa: 0x10000, size: 8192 }],
  });
  mem.writeU64(0x10000 + 8192 - 8, 0x1122334455667788n);
  assert.deepEqual(mem.readU64(0x11ff8), 0x1122334455667788n);
  assert.throws(() => mem.readU32(0x1000), (e) => {
    assert.ok(e instanceof GuestMemoryError);
    assert.equal(e.gpa, 0x1000);
    assert.equal(e.message, "guest memory access of 4 bytes at 0x1000: outside guest RAM");
    return true;
  });
  // an access straddling the end of a region
  assert.throws(() => mem.readU32(0xffe), GuestMemoryError);
  assert.throws(() => mem.write(0x11ffc, new Uint8Array(8)), GuestMemoryError);
  assert.throws(() => mem.slice(-4, 4), GuestMemoryError);
  assert.deepEqual(mem.contains(0x10000, 8192), true);
  assert.deepEqual(mem.contains(0x10000, 8193), false);
  // regions must be sorted and fit the buffer
  assert.throws(
    () => new GuestMemory({ sab, offset: 0, regions: [{ gpa: 0, size: 4 * 4096 }] }),
    GuestMemoryError,
  );
});

Deno.test("RAM above the PCI hole is placed above 4 GiB", () => {
  assert.deepEqual(ramLayout(512 << 20), [{ gpa: 0, size: 512 << 20 }]);
  assert.deepEqual(ramLayout(4 * 2 ** 30), [{ gpa: 0, size: 0xc000_0000 }, { gpa: 2 ** 32, size: 2 ** 30 }]);
});
