/**
 * virtio-scsi (device type 8) with one target holding one logical unit, a read-only CD-ROM ({@link CdromUnit}):
 * the three queues (control, event, request), the framing of each request, and the virtio response codes.
 *
 * A command request is a 51-byte header (LUN, tag, task attributes, a 32-byte CDB) in the readable bytes,
 * then data-out; the writable bytes hold a 108-byte response (sense length, residual, status, response, 96
 * bytes of sense), then data-in. Framing is not assumed: the parts may be split across buffers in any way. A
 * request too short to hold its header or its response gets a FAILURE response when there is room for the
 * response's fixed part, and is returned with nothing written when there is not. An address other than
 * target 0, LUN 0 gets BAD_TARGET or INCORRECT_LUN. Task management is answered FUNCTION COMPLETE (every
 * command completes before the next is taken), asynchronous notification subscribes to nothing, and the event
 * queue keeps its buffers: the medium never changes.
 *
 * @module
 */
import type { GuestMemory } from "../memory/guest_memory.ts";
import { gatherReadable } from "./blk.ts";
import type { VirtioBackend } from "./device_core.ts";
import { type CdromUnit, fixedSense, SCSI_STATUS, type ScsiOutcome } from "./scsi_cdrom.ts";
import type { Chain } from "./virtqueue.ts";

/** Queue indices. */
export const SCSI_QUEUE = { CONTROL: 0, EVENT: 1, REQUEST: 2 } as const;
/** Queue size offered. */
export const SCSI_QUEUE_SIZE = 128;
/** CDB bytes in a request (the config's cdb_size; the driver may not change it here). */
export const SCSI_CDB_SIZE = 32;
/** Sense bytes in a response (the config's sense_size). */
export const SCSI_SENSE_SIZE = 96;
/** Bytes of a command request's header: LUN (8), tag (8), task attribute, priority, CRN, CDB. */
export const SCSI_REQ_BYTES = 19 + SCSI_CDB_SIZE;
/** Bytes of a command response before its sense: sense_len, residual, status qualifier, status, response. */
export const SCSI_RESP_FIXED = 12;
/** Bytes of a command response. */
export const SCSI_RESP_BYTES = SCSI_RESP_FIXED + SCSI_SENSE_SIZE;
/** Bytes of device config. */
export const SCSI_CONFIG_LENGTH = 36;
/** Control request types. */
export const SCSI_CTRL = { TMF: 0, AN_QUERY: 1, AN_SUBSCRIBE: 2 } as const;

/** virtio-scsi response codes. */
export const SCSI_RESPONSE = {
  OK: 0,
  OVERRUN: 1,
  BAD_TARGET: 3,
  FAILURE: 9,
  INCORRECT_LUN: 12,
  /** Task management: done. */
  FUNCTION_COMPLETE: 0,
} as const;

/** A medium error reading the image (MEDIUM ERROR, UNRECOVERED READ ERROR). */
const READ_ERROR = { key: 0x03, asc: 0x11, ascq: 0x00 };

/**
 * Calls `fn` for each piece of the chain's writable stream in bytes [from, from + n), with its index in guest
 * memory and its length; returns how many bytes that covered (less than `n` when the stream is shorter).
 */
function eachWritable(
  chain: Chain,
  from: number,
  n: number,
  fn: (at: number, len: number, done: number) => void,
): number {
  let skip = from;
  let done = 0;
  for (let i = chain.readable; i < chain.count && done < n; i++) {
    const len = chain.len[i];
    if (skip >= len) {
      skip -= len;
      continue;
    }
    const k = Math.min(len - skip, n - done);
    fn(chain.at[i] + skip, k, done);
    done += k;
    skip = 0;
  }
  return done;
}

/** Copies `src` into the chain's writable stream from byte `from`; returns the bytes copied. */
function scatter(chain: Chain, mem: GuestMemory, from: number, src: Uint8Array): number {
  return eachWritable(
    chain,
    from,
    src.length,
    (at, len, done) => mem.bytes.set(src.subarray(done, done + len), at),
  );
}

/** The virtio-scsi backend over one CD-ROM. */
export class ScsiBackend implements VirtioBackend {
  /** Control, event and request queues. */
  readonly numQueues = 3;
  /** Queue size. */
  readonly maxQueueSize = SCSI_QUEUE_SIZE;
  /** No device-type features (no hotplug, no change notification, no T10 PI). */
  readonly features = 0n;
  /** Bytes of device config. */
  readonly configLength = SCSI_CONFIG_LENGTH;
  readonly #unit: CdromUnit;
  readonly #header = new Uint8Array(SCSI_REQ_BYTES);
  readonly #resp = new Uint8Array(SCSI_RESP_BYTES);
  readonly #respView = new DataView(this.#resp.buffer);
  readonly #counters = {
    scsiCommands: 0,
    scsiChecks: 0,
    scsiBadAddress: 0,
    scsiMalformed: 0,
    scsiReadBytes: 0,
  };

  /** Serves `unit` as target 0, LUN 0. */
  constructor(unit: CdromUnit) {
    this.#unit = unit;
  }

  /** One request queue, its limits, the CDB and sense sizes, one target and one LUN. */
  writeConfig(config: Uint8Array): void {
    const v = new DataView(config.buffer, config.byteOffset, SCSI_CONFIG_LENGTH);
    v.setUint32(0, 1, true); // num_queues (request queues)
    v.setUint32(4, SCSI_QUEUE_SIZE - 2, true); // seg_max
    v.setUint32(8, 0xffff, true); // max_sectors
    v.setUint32(12, SCSI_QUEUE_SIZE, true); // cmd_per_lun
    v.setUint32(16, 16, true); // event_info_size
    v.setUint32(20, SCSI_SENSE_SIZE, true);
    v.setUint32(24, SCSI_CDB_SIZE, true);
    v.setUint16(28, 0, true); // max_channel
    v.setUint16(30, 0, true); // max_target
    v.setUint32(32, 0, true); // max_lun
  }

  /** The event queue keeps its buffers (no event ever happens); the others are served. */
  ready(q: number): boolean {
    return q !== SCSI_QUEUE.EVENT;
  }

  /** Command, address and error counts. */
  stats(): Record<string, number> {
    return { ...this.#counters };
  }

  /** Serves one chain; returns the bytes written into it. */
  handle(q: number, chain: Chain, mem: GuestMemory): number {
    if (q === SCSI_QUEUE.REQUEST) return this.#command(chain, mem);
    if (q === SCSI_QUEUE.CONTROL) return this.#control(chain, mem);
    return 0;
  }

  /** Fills the response header; `sense` goes after it. Returns the response's bytes. */
  #response(response: number, status: number, residual: number, sense?: Uint8Array): Uint8Array {
    const r = this.#resp;
    r.fill(0);
    const v = this.#respView;
    v.setUint32(0, sense?.length ?? 0, true);
    v.setUint32(4, residual >>> 0, true);
    r[10] = status;
    r[11] = response;
    if (sense !== undefined) r.set(sense, SCSI_RESP_FIXED);
    return r;
  }

  #command(chain: Chain, mem: GuestMemory): number {
    if (chain.writeBytes < SCSI_RESP_FIXED) {
      this.#counters.scsiMalformed++;
      return 0;
    }
    if (chain.readBytes < SCSI_REQ_BYTES || chain.writeBytes < SCSI_RESP_BYTES) {
      this.#counters.scsiMalformed++;
      return scatter(chain, mem, 0, this.#response(SCSI_RESPONSE.FAILURE, 0, 0).subarray(0, SCSI_RESP_FIXED));
    }
    const h = this.#header;
    gatherReadable(chain, mem, 0, h);
    const capacity = chain.writeBytes - SCSI_RESP_BYTES;
    // The single-level LUN structure: 1, target, then the LUN in flat (0x40) or peripheral addressing.
    if (h[0] !== 1 || h[1] !== 0) {
      this.#counters.scsiBadAddress++;
      return scatter(chain, mem, 0, this.#response(SCSI_RESPONSE.BAD_TARGET, 0, capacity));
    }
    if (
      (h[2] & 0x3f) !== 0 || h[3] !== 0 || (h[2] >> 6) > 1 || h[4] !== 0 || h[5] !== 0 || h[6] !== 0 ||
      h[7] !== 0
    ) {
      this.#counters.scsiBadAddress++;
      return scatter(chain, mem, 0, this.#response(SCSI_RESPONSE.INCORRECT_LUN, 0, capacity));
    }
    this.#counters.scsiCommands++;
    const outcome = this.#unit.execute(h.subarray(19, 19 + SCSI_CDB_SIZE));
    return this.#answer(outcome, chain, mem, capacity);
  }

  /** Moves the outcome's data-in and writes the response; returns the bytes written. */
  #answer(outcome: ScsiOutcome, chain: Chain, mem: GuestMemory, capacity: number): number {
    if (outcome.kind === "check") {
      this.#counters.scsiChecks++;
      const r = this.#response(
        SCSI_RESPONSE.OK,
        SCSI_STATUS.CHECK_CONDITION,
        capacity,
        fixedSense(outcome.sense),
      );
      return scatter(chain, mem, 0, r);
    }
    const length = outcome.kind === "data" ? outcome.bytes.length : outcome.length;
    if (length > capacity) {
      // The driver's data-in buffers cannot hold what it asked for.
      return scatter(chain, mem, 0, this.#response(SCSI_RESPONSE.OVERRUN, 0, 0));
    }
    if (outcome.kind === "data") scatter(chain, mem, SCSI_RESP_BYTES, outcome.bytes);
    else {
      const medium = this.#unit.medium;
      try {
        eachWritable(chain, SCSI_RESP_BYTES, length, (at, len, done) => {
          medium.readAt(outcome.offset + done, mem.bytes.subarray(at, at + len));
        });
      } catch {
        this.#counters.scsiChecks++;
        const r = this.#response(
          SCSI_RESPONSE.OK,
          SCSI_STATUS.CHECK_CONDITION,
          capacity,
          fixedSense(READ_ERROR),
        );
        return scatter(chain, mem, 0, r);
      }
      this.#counters.scsiReadBytes += length;
    }
    return scatter(chain, mem, 0, this.#response(SCSI_RESPONSE.OK, SCSI_STATUS.GOOD, capacity - length)) +
      length;
  }

  /** Task management and asynchronous-notification requests. */
  #control(chain: Chain, mem: GuestMemory): number {
    if (chain.readBytes < 4) {
      this.#counters.scsiMalformed++;
      return 0;
    }
    const h = this.#header;
    gatherReadable(chain, mem, 0, h.subarray(0, Math.min(chain.readBytes, 24)));
    const type = (h[0] | (h[1] << 8) | (h[2] << 16) | (h[3] << 24)) >>> 0;
    if (type === SCSI_CTRL.TMF && chain.readBytes >= 24 && chain.writeBytes >= 1) {
      // type, subtype, LUN at 8, tag
      const ok = h[8] === 1 && h[9] === 0;
      return scatter(
        chain,
        mem,
        0,
        Uint8Array.of(ok ? SCSI_RESPONSE.FUNCTION_COMPLETE : SCSI_RESPONSE.BAD_TARGET),
      );
    }
    if ((type === SCSI_CTRL.AN_QUERY || type === SCSI_CTRL.AN_SUBSCRIBE) && chain.readBytes >= 16) {
      if (chain.writeBytes < 5) {
        this.#counters.scsiMalformed++;
        return 0;
      }
      // event_actual 0 (no event class supported), then the response
      const ok = h[4] === 1 && h[5] === 0;
      return scatter(
        chain,
        mem,
        0,
        Uint8Array.of(0, 0, 0, 0, ok ? SCSI_RESPONSE.OK : SCSI_RESPONSE.BAD_TARGET),
      );
    }
    this.#counters.scsiMalformed++;
    return 0;
  }
}
