/**
 * The state a virtio-PCI function shares between the vCPU workers (which run its register model on MMIO
 * exits), its device worker (which serves its queues) and the VM's main thread (which turns its interrupt
 * doorbell into an INTx line). One SharedArrayBuffer, laid out as 32-bit words then the device config bytes.
 *
 * Doorbells: a queue notify sets bit q of {@link W.NOTIFY} and wakes the device worker; a reset or DRIVER_OK
 * bumps {@link W.EPOCH} and sets {@link NOTIFY_EPOCH}. The device worker sets ISR bits and bumps
 * {@link W.IRQ_SEQ} to wake the main thread, which asserts the line; an ISR read clears ISR and deasserts.
 * A reset sets {@link W.RESET_PENDING}; device_status reads non-zero until the device worker has dropped its
 * queues and cleared it, so a driver that waits for 0 (as the spec asks) never races a request in flight.
 * Line changes happen under a tiny spin lock ({@link W.IRQ_LOCK}) so "ISR non-zero" and "line asserted" agree.
 *
 * @module
 */

/** Word indices in the shared state. */
export const W = {
  DEVICE_FEATURES_LO: 0,
  DEVICE_FEATURES_HI: 1,
  DRIVER_FEATURES_LO: 2,
  DRIVER_FEATURES_HI: 3,
  DEVICE_FEATURE_SELECT: 4,
  DRIVER_FEATURE_SELECT: 5,
  STATUS: 6,
  CONFIG_GENERATION: 7,
  QUEUE_SELECT: 8,
  NUM_QUEUES: 9,
  ISR: 10,
  NOTIFY: 11,
  IRQ_SEQ: 12,
  EPOCH: 13,
  IRQ_LOCK: 14,
  IRQ_ASSERTED: 15,
  STOP: 16,
  CONFIG_LENGTH: 17,
  READY: 18,
  RESET_PENDING: 19,
  CONFIG_MSIX_VECTOR: 20,
  PENDING_VECTORS: 21,
  QUEUE_BASE: 32,
  MSIX_TABLE: 160,
} as const;

/** Per-queue word offsets from {@link queueWord}. */
export const Q = {
  SIZE: 0,
  MAX_SIZE: 1,
  ENABLE: 2,
  DESC_LO: 3,
  DESC_HI: 4,
  DRIVER_LO: 5,
  DRIVER_HI: 6,
  DEVICE_LO: 7,
  DEVICE_HI: 8,
  MSIX_VECTOR: 9,
} as const;

const QUEUE_STRIDE = 12;
/** Most queues one function has. */
export const MAX_QUEUES = 8;
/** Byte offset of the device-specific config in the shared state. */
export const DEVICE_CONFIG_OFFSET = 1024;
/** Largest device-specific config. */
export const DEVICE_CONFIG_SIZE = 256;
/** Bytes of shared state per function. */
export const TRANSPORT_STATE_SIZE = DEVICE_CONFIG_OFFSET + DEVICE_CONFIG_SIZE;
/** The NOTIFY bit that says "the epoch changed" (reset or DRIVER_OK). */
export const NOTIFY_EPOCH = 1 << 30;
/** The NOTIFY bit that says "stop" (the VM is closing). */
export const NOTIFY_STOP = 1 << 29;

/** MSI-X vectors per function: one per queue and one for configuration changes. */
export const MSIX_VECTORS = MAX_QUEUES + 1;
/** "No vector" in the MSI-X vector registers. */
export const NO_VECTOR = 0xffff;
/** Words per MSI-X table entry: address low, address high, data, vector control. */
export const MSIX_ENTRY_WORDS = 4;

/** The word index of MSI-X table entry `v`'s word `i` (0 addr lo, 1 addr hi, 2 data, 3 control). */
export function msixWord(v: number, i: number): number {
  return W.MSIX_TABLE + MSIX_ENTRY_WORDS * v + i;
}

/** Device status bits. */
export const STATUS = {
  ACKNOWLEDGE: 1,
  DRIVER: 2,
  DRIVER_OK: 4,
  FEATURES_OK: 8,
  NEEDS_RESET: 64,
  FAILED: 128,
} as const;

/** ISR bits. */
export const ISR_QUEUE = 1;
/** ISR bit: the configuration changed (also used with NEEDS_RESET). */
export const ISR_CONFIG = 2;

/** Feature bits (as bit numbers). */
export const FEATURE = {
  INDIRECT_DESC: 28,
  EVENT_IDX: 29,
  VERSION_1: 32,
} as const;

/** The word index of queue `q`'s field `field`. */
export function queueWord(q: number, field: number): number {
  return W.QUEUE_BASE + QUEUE_STRIDE * q + field;
}

/** A new transport state: everything zero but the MSI-X vectors (none) and table entries (masked). */
export function createTransportState(): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(TRANSPORT_STATE_SIZE);
  const w = new Int32Array(sab, 0, DEVICE_CONFIG_OFFSET / 4);
  w[W.CONFIG_MSIX_VECTOR] = NO_VECTOR;
  for (let q = 0; q < MAX_QUEUES; q++) w[queueWord(q, Q.MSIX_VECTOR)] = NO_VECTOR;
  for (let v = 0; v < MSIX_VECTORS; v++) w[msixWord(v, 3)] = 1;
  return sab;
}

/** True when feature bit `bit` is set in the (lo, hi) pair. */
export function hasFeature(lo: number, hi: number, bit: number): boolean {
  return bit < 32 ? ((lo >>> bit) & 1) === 1 : ((hi >>> (bit - 32)) & 1) === 1;
}

/** Takes the IRQ spin lock (held for one KVM_IRQ_LINE at most). */
export function lockIrq(words: Int32Array): void {
  while (Atomics.compareExchange(words, W.IRQ_LOCK, 0, 1) !== 0) {
    // spin: the holder only does one ioctl
  }
}

/** Releases the IRQ spin lock. */
export function unlockIrq(words: Int32Array): void {
  Atomics.store(words, W.IRQ_LOCK, 0);
}

/**
 * Device side: raises ISR bits (for INTx) and marks the MSI-X vector pending (`queue` is the queue whose
 * vector to use, or -1 for the configuration vector), then rings the interrupt doorbell. The main thread
 * delivers whichever the driver enabled.
 */
export function raiseInterrupt(words: Int32Array, isrBits: number, queue = -1): void {
  const v = Atomics.load(words, queue < 0 ? W.CONFIG_MSIX_VECTOR : queueWord(queue, Q.MSIX_VECTOR));
  if (v >= 0 && v < MSIX_VECTORS) Atomics.or(words, W.PENDING_VECTORS, 1 << v);
  Atomics.or(words, W.ISR, isrBits);
  Atomics.add(words, W.IRQ_SEQ, 1);
  Atomics.notify(words, W.IRQ_SEQ);
}
