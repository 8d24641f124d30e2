/**
 * virtio-net (device type 1) over a tap fd: queue 0 receives (frames from the tap, or answers of the built-in
 * DHCP server, into the guest's writable buffers), queue 1 transmits (the guest's frames, after its 12-byte
 * virtio-net header, to the tap). The device offers MAC and STATUS (link up) and no offloads.
 *
 * No mergeable RX buffers: without the guest offload features (GUEST_TSO/UFO) no frame is larger than
 * 1518 bytes, so every receive buffer a driver posts (Linux posts ≥ 1526 bytes) holds a whole frame and a
 * frame never spans buffers; MRG_RXBUF would only add a second path to get wrong.
 *
 * Nothing the guest sends makes the device throw: short or oversized frames, frames with a foreign source
 * MAC on a `locked lladdr` NIC, and malformed DHCP requests are dropped and counted.
 *
 * The guest is hostile and has other vCPUs: every transmitted frame is first copied out of guest memory into
 * the device's own buffer, and only that copy is checked (source MAC, DHCP) and sent, so the guest cannot
 * change a frame between its check and its send. DHCP answers wait for receive buffers in a queue of at most
 * {@link LOCAL_QUEUE_MAX} frames; requests that find it full get no answer, as on a congested network.
 *
 * @module
 */
import type { GuestMemory } from "../memory/guest_memory.ts";
import type { TapIo } from "../../ffi/tap.ts";
import { type DhcpLink, dhcpReply, isDhcpRequest } from "../net/dhcp.ts";
import type { VirtioBackend } from "./device_core.ts";
import { W } from "./transport_state.ts";
import type { Chain } from "./virtqueue.ts";

/** Device config: mac[6], status (u16). */
export const NET_CONFIG_LENGTH = 8;
/** The virtio 1.x net header (with num_buffers). */
export const NET_HDR_LEN = 12;
/** Smallest frame the device forwards (an Ethernet header). */
export const MIN_FRAME = 14;
/** Largest frame the device forwards (1500-byte MTU plus header and a VLAN tag). */
export const MAX_FRAME = 1518;
/** VIRTIO_NET_F_MAC. */
export const NET_F_MAC = 5;
/** VIRTIO_NET_F_STATUS. */
export const NET_F_STATUS = 16;
/** Most DHCP answers waiting for a receive buffer; requests beyond that are dropped unanswered. */
export const LOCAL_QUEUE_MAX = 16;
const RX = 0;

/** What one NIC's device is told. */
export interface NetOptions {
  /** The NIC's MAC. */
  readonly mac: Uint8Array;
  /** Drop guest frames whose source MAC is not {@link mac}. */
  readonly lockedLladdr: boolean;
  /** Answer DHCP on this link (a `local interface`). */
  readonly dhcp?: DhcpLink;
}

/** What the device saw. */
export interface NetCounters {
  /** Frames given to the guest. */
  rx: number;
  /** Frames sent to the tap. */
  tx: number;
  /** Guest frames too short or too long. */
  malformed: number;
  /** Guest frames with another source MAC on a locked NIC. */
  spoofed: number;
  /** DHCP answers given. */
  dhcpReplies: number;
  /** DHCP requests dropped without an answer. */
  dhcpDropped: number;
  /** DHCP requests dropped because {@link LOCAL_QUEUE_MAX} answers already waited for receive buffers. */
  dhcpQueueFull: number;
  /** Frames for the guest dropped because its buffer was too small. */
  rxTooBig: number;
  /** Writes to the tap that failed. */
  txErrors: number;
}

/** The virtio-net backend. */
export class NetBackend implements VirtioBackend {
  /** RX and TX. */
  readonly numQueues = 2;
  /** Queue size. */
  readonly maxQueueSize = 256;
  /** MAC and status. */
  readonly configLength = NET_CONFIG_LENGTH;
  /** MAC and STATUS. */
  readonly features = (1n << BigInt(NET_F_MAC)) | (1n << BigInt(NET_F_STATUS));
  /** What happened so far. */
  readonly counters: NetCounters = {
    rx: 0,
    tx: 0,
    malformed: 0,
    spoofed: 0,
    dhcpReplies: 0,
    dhcpDropped: 0,
    dhcpQueueFull: 0,
    rxTooBig: 0,
    txErrors: 0,
  };
  readonly #io: TapIo;
  readonly #opts: NetOptions;
  readonly #w: Int32Array;
  readonly #rxBuf = new Uint8Array(65536);
  readonly #txBuf = new Uint8Array(NET_HDR_LEN + MAX_FRAME);
  readonly #local: Uint8Array[] = [];
  #pending: Uint8Array | undefined;
  #drained = true;
  #onDrained: (() => void) | undefined;

  /** A backend over `io`; `state` is the transport state (to wake its own loop for DHCP answers). */
  constructor(io: TapIo, opts: NetOptions, state: SharedArrayBuffer) {
    this.#io = io;
    this.#opts = opts;
    this.#w = new Int32Array(state, 0, W.NOTIFY + 1);
  }

  /** The counters, for the stats message. */
  stats(): Record<string, number> {
    return { ...this.counters };
  }

  /** Fills mac and status (link up). */
  writeConfig(config: Uint8Array): void {
    config.set(this.#opts.mac, 0);
    config[6] = 1; // VIRTIO_NET_S_LINK_UP
    config[7] = 0;
  }

  /** Queue 0 is served only while a frame waits for the guest; queue 1 always. */
  ready(q: number): boolean {
    if (q !== RX) return true;
    if (this.#pending !== undefined) return true;
    const local = this.#local.shift();
    if (local !== undefined) {
      this.#pending = local;
      return true;
    }
    const n = this.#io.read(this.#rxBuf);
    if (n < 0) {
      this.#drained = true;
      const f = this.#onDrained;
      this.#onDrained = undefined;
      f?.();
      return false;
    }
    this.#pending = this.#rxBuf.subarray(0, n);
    return true;
  }

  /** Serves one chain: a receive buffer (queue 0) or a frame to send (queue 1). */
  handle(q: number, chain: Chain, mem: GuestMemory): number {
    return q === RX ? this.#receive(chain, mem) : this.#transmit(chain, mem);
  }

  #receive(chain: Chain, mem: GuestMemory): number {
    const frame = this.#pending;
    this.#pending = undefined;
    if (frame === undefined) return 0;
    if (chain.writeBytes < NET_HDR_LEN + frame.length) {
      this.counters.rxTooBig++;
      return 0;
    }
    const hdr = new Uint8Array(NET_HDR_LEN);
    hdr[10] = 1; // num_buffers
    let from = 0;
    const total = NET_HDR_LEN + frame.length;
    for (let i = chain.readable; i < chain.count && from < total; i++) {
      const n = Math.min(chain.len[i], total - from);
      let at = chain.at[i];
      let left = n;
      if (from < NET_HDR_LEN) {
        const h = Math.min(left, NET_HDR_LEN - from);
        mem.bytes.set(hdr.subarray(from, from + h), at);
        at += h;
        left -= h;
        from += h;
      }
      if (left > 0) {
        mem.bytes.set(frame.subarray(from - NET_HDR_LEN, from - NET_HDR_LEN + left), at);
        from += left;
      }
    }
    this.counters.rx++;
    return total;
  }

  #transmit(chain: Chain, mem: GuestMemory): number {
    const total = chain.readBytes;
    if (total < NET_HDR_LEN + MIN_FRAME || total > NET_HDR_LEN + MAX_FRAME) {
      this.counters.malformed++;
      return 0;
    }
    // Copy first, then check and send only the copy: another vCPU may rewrite the guest's buffer at any time.
    const buf = this.#txBuf;
    let off = 0;
    for (let i = 0; i < chain.readable; i++) {
      buf.set(mem.bytes.subarray(chain.at[i], chain.at[i] + chain.len[i]), off);
      off += chain.len[i];
    }
    const frame = buf.subarray(NET_HDR_LEN, total);
    const mac = this.#opts.mac;
    if (this.#opts.lockedLladdr && !mac.every((b, i) => frame[6 + i] === b)) {
      this.counters.spoofed++;
      return 0;
    }
    const dhcp = this.#opts.dhcp;
    if (dhcp !== undefined && isDhcpRequest(frame)) {
      if (this.#local.length >= LOCAL_QUEUE_MAX) {
        this.counters.dhcpQueueFull++;
        return 0;
      }
      const reply = dhcpReply(frame, dhcp);
      if (reply === undefined) this.counters.dhcpDropped++;
      else {
        this.counters.dhcpReplies++;
        this.#local.push(reply);
        // wake our own loop: the answer waits for a receive buffer
        Atomics.or(this.#w, W.NOTIFY, 1 << RX);
        Atomics.notify(this.#w, W.NOTIFY);
      }
      return 0;
    }
    if (this.#io.write(frame) !== frame.length) this.counters.txErrors++;
    else this.counters.tx++;
    return 0;
  }

  /**
   * Watches the tap until `stopped()`: when a frame is waiting, wakes the device loop and waits until it has
   * read the tap dry (which needs receive buffers from the guest).
   */
  async watchTap(stopped: () => boolean): Promise<void> {
    while (!stopped()) {
      if (!this.#drained) {
        await new Promise<void>((resolve) => {
          this.#onDrained = resolve;
          setTimeout(resolve, 200); // look at stopped() now and then
        });
        continue;
      }
      if (!(await this.#io.readable(200))) continue;
      this.#drained = false;
      Atomics.or(this.#w, W.NOTIFY, 1 << RX);
      Atomics.notify(this.#w, W.NOTIFY);
    }
  }
}
