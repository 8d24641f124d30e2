import assert from "node:assert/strict";
import { BusError, MmioBus, PioBus, type PioDevice } from "../src/devices/bus.ts";
import { buildBuses } from "../src/devices/device_spec.ts";
import { createUartShare, Uart16550, UART_LSR, UART_REG } from "../src/devices/uart_16550.ts";
import { ByteRing } from "../src/console/byte_ring.ts";
import { nextVcpuState, VcpuState, VcpuStateError } from "../src/vcpu/vcpu_state.ts";

class Recorder implements PioDevice {
  readonly name = "rec";
  writes: [number, number, number][] = [];
  pioRead(offset: number, size: number): number {
    return offset * 16 + size;
  }
  pioWrite(offset: number, size: number, value: number): void {
    this.writes.push([offset, size, value]);
  }
}

Deno.test("port bus dispatches by range with offsets, refuses overlaps, answers all ones when unclaimed", () => {
  const bus = new PioBus();
  const rec = new Recorder();
  bus.register(0x100, 4, rec);
  assert.equal(bus.read(0x102, 2), 0x22);
  bus.write(0x103, 1, 0xab);
  assert.deepEqual(rec.writes, [[3, 1, 0xab]]);
  assert.equal(bus.read(0x104, 1), 0xff);
  assert.equal(bus.read(0x80, 2), 0xffff);
  assert.equal(bus.read(0x80, 4), 0xffffffff);
  bus.write(0x80, 1, 0);
  assert.equal(bus.unclaimedReads, 3);
  assert.equal(bus.unclaimedWrites, 1);
  assert.throws(() => bus.register(0x103, 2, new Recorder()), {
    name: "BusError",
    message: "rec: port 0x103 is already claimed by rec",
  });
  assert.throws(() => bus.register(0xfffe, 4, new Recorder()), BusError);
});

Deno.test("MMIO bus finds ranges by binary search and refuses overlaps", () => {
  const bus = new MmioBus();
  const seen: string[] = [];
  const dev = (name: string) => ({
    name,
    mmioRead: (off: number, data: Uint8Array, len: number) => data.fill(off & 0xff, 0, len),
    mmioWrite: (off: number, _d: Uint8Array, len: number) => seen.push(`${name}+${off}/${len}`),
  });
  bus.register(0xd000_0000, 0x1000, dev("b"));
  bus.register(0xc000_0000, 0x1000, dev("a"));
  bus.register(0xe000_0000, 0x10, dev("c"));
  const data = new Uint8Array(8);
  bus.read(0xc000_0010, data, 4);
  assert.deepEqual([...data.subarray(0, 4)], [0x10, 0x10, 0x10, 0x10]);
  bus.write(0xe000_000f, data, 1);
  bus.write(0xd000_0fff, data, 1);
  assert.deepEqual(seen, ["c+15/1", "b+4095/1"]);
  bus.read(0xe000_0010, data, 8);
  assert.deepEqual([...data], [255, 255, 255, 255, 255, 255, 255, 255]);
  assert.throws(() => bus.register(0xd000_0800, 0x1000, dev("x")), BusError);
});

Deno.test("UART: THR goes to the console ring, LSR reports THRE/TEMT and DR, RBR returns input", () => {
  const share = createUartShare();
  const uart = new Uart16550(share);
  const out = new ByteRing({ sab: share.tx });
  const input = new ByteRing({ sab: share.rx });
  assert.equal(uart.pioRead(UART_REG.LSR, 1), UART_LSR.THRE | UART_LSR.TEMT);
  for (const c of "ok\n") uart.pioWrite(UART_REG.RBR_THR_DLL, 1, c.charCodeAt(0));
  assert.equal(new TextDecoder().decode(out.drain()), "ok\n");
  input.tryPush(0x41);
  assert.equal(uart.pioRead(UART_REG.LSR, 1) & UART_LSR.DR, UART_LSR.DR);
  assert.equal(uart.pioRead(UART_REG.RBR_THR_DLL, 1), 0x41);
  assert.equal(uart.pioRead(UART_REG.LSR, 1) & UART_LSR.DR, 0);
});

Deno.test("UART: divisor latch, scratch register and loopback behave as Linux's 8250 probe expects", () => {
  const share = createUartShare();
  const uart = new Uart16550(share);
  uart.pioWrite(UART_REG.SCR, 1, 0xa5);
  assert.equal(uart.pioRead(UART_REG.SCR, 1), 0xa5);
  uart.pioWrite(UART_REG.LCR, 1, 0x83); // DLAB on
  uart.pioWrite(UART_REG.RBR_THR_DLL, 1, 0x01);
  uart.pioWrite(UART_REG.IER_DLM, 1, 0x00);
  assert.equal(uart.pioRead(UART_REG.RBR_THR_DLL, 1), 0x01);
  uart.pioWrite(UART_REG.LCR, 1, 0x03); // DLAB off
  uart.pioWrite(UART_REG.IER_DLM, 1, 0x0f);
  assert.equal(uart.pioRead(UART_REG.IER_DLM, 1), 0x0f);
  // loopback: MCR bits reflect into MSR's top nibble; a transmitted byte comes back as received
  uart.pioWrite(UART_REG.MCR, 1, 0x1f);
  assert.equal(uart.pioRead(UART_REG.MSR, 1) & 0xf0, 0xf0);
  uart.pioWrite(UART_REG.MCR, 1, 0x10);
  assert.equal(uart.pioRead(UART_REG.MSR, 1) & 0xf0, 0x00);
  uart.pioWrite(UART_REG.RBR_THR_DLL, 1, 0x5a);
  assert.equal(uart.pioRead(UART_REG.LSR, 1) & UART_LSR.DR, UART_LSR.DR);
  assert.equal(uart.pioRead(UART_REG.RBR_THR_DLL, 1), 0x5a);
  assert.equal(new ByteRing({ sab: share.tx }).available(), 0, "loopback bytes never reach the console");
});

Deno.test("the exit port reports the written value through the bus hooks", () => {
  const statuses: number[] = [];
  const { pio } = buildBuses([{ kind: "debug-exit", base: 0xf4 }], {
    requestExit: (s) => statuses.push(s),
    requestReboot: () => statuses.push(-1),
    requestPowerOff: () => statuses.push(-2),
    irqLine: () => {},
  });
  pio.write(0xf4, 1, 0x31);
  pio.write(0xf4, 4, 0xdeadbeef);
  assert.deepEqual(statuses, [0x31, 0xdeadbeef]);
  assert.equal(pio.read(0xf4, 1), 0);
});

Deno.test("byte ring: wraps, reports fullness, and wakes a waiting consumer", async () => {
  const ring = ByteRing.create(8);
  for (let i = 0; i < 8; i++) assert.ok(ring.tryPush(i));
  assert.equal(ring.tryPush(99), false);
  assert.deepEqual([...ring.drain()], [0, 1, 2, 3, 4, 5, 6, 7]);
  for (let i = 0; i < 5; i++) ring.tryPush(10 + i);
  assert.equal(ring.tryPop(), 10);
  assert.deepEqual([...ring.drain()], [11, 12, 13, 14]);
  assert.equal(ring.tryPop(), -1);
  const waiting = ring.waitForData(5000);
  setTimeout(() => ring.tryPush(7), 10);
  const t0 = performance.now();
  await waiting;
  assert.ok(performance.now() - t0 < 1000);
  assert.deepEqual([...ring.drain()], [7]);
});

Deno.test("vCPU state machine: allowed transitions and typed refusals", () => {
  let s: VcpuState = VcpuState.Created;
  s = nextVcpuState(s, "start");
  s = nextVcpuState(s, "pause");
  assert.equal(s, VcpuState.Paused);
  s = nextVcpuState(s, "resume");
  assert.equal(s, VcpuState.Running);
  assert.throws(() => nextVcpuState(s, "resume"), {
    name: "VcpuStateError",
    message: "vCPU cannot resume while running",
  });
  s = nextVcpuState(s, "stop");
  assert.equal(s, VcpuState.Stopped);
  for (const e of ["start", "pause", "resume", "stop", "exit"] as const) {
    assert.throws(() => nextVcpuState(VcpuState.Stopped, e), VcpuStateError);
  }
  assert.equal(nextVcpuState(VcpuState.Created, "stop"), VcpuState.Stopped);
});
