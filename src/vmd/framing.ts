/**
 * Message framing for the control socket and the daemon ↔ VM-process pipe: a 4-byte big-endian length, then
 * that many bytes of UTF-8 JSON. A frame longer than the limit is refused before any of it is buffered.
 *
 * @module
 */

/** The largest frame either side accepts (64 KiB: a status of hundreds of VMs fits easily). */
export const MAX_FRAME_BYTES = 64 * 1024;

/** A frame that cannot be encoded (its JSON exceeds the limit). */
export class FrameTooLargeError extends Error {
  /** Builds the error. */
  constructor(bytes: number, limit: number) {
    super(`message of ${bytes} bytes exceeds the ${limit}-byte limit; ask for less (e.g. status of one VM)`);
    this.name = "FrameTooLargeError";
  }
}

const encoder = new TextEncoder();

/** Encodes `value` as one frame. */
export function encodeFrame(value: unknown, limit = MAX_FRAME_BYTES): Uint8Array {
  const body = encoder.encode(JSON.stringify(value));
  if (body.length > limit) throw new FrameTooLargeError(body.length, limit);
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, body.length);
  out.set(body, 4);
  return out;
}

/** What the decoder found: a parsed JSON value, or a fatal framing error (the stream cannot continue). */
export type FrameEvent =
  | { readonly kind: "frame"; readonly value: unknown }
  | { readonly kind: "bad-json"; readonly message: string }
  | { readonly kind: "too-large"; readonly bytes: number };

/** Splits a byte stream into frames. After a `too-large` event it yields nothing more. */
export class FrameDecoder {
  readonly #limit: number;
  #buf = new Uint8Array(0);
  #broken = false;

  /** A decoder refusing frames over `limit` bytes. */
  constructor(limit = MAX_FRAME_BYTES) {
    this.#limit = limit;
  }

  /** True when bytes of an unfinished frame are buffered. */
  get pending(): boolean {
    return this.#buf.length > 0;
  }

  /** Adds received bytes; returns every event they complete. */
  push(bytes: Uint8Array): FrameEvent[] {
    if (this.#broken) return [];
    const joined = new Uint8Array(this.#buf.length + bytes.length);
    joined.set(this.#buf);
    joined.set(bytes, this.#buf.length);
    const events: FrameEvent[] = [];
    let at = 0;
    while (joined.length - at >= 4) {
      const len = new DataView(joined.buffer, at, 4).getUint32(0);
      if (len > this.#limit) {
        this.#broken = true;
        this.#buf = new Uint8Array(0);
        events.push({ kind: "too-large", bytes: len });
        return events;
      }
      if (joined.length - at - 4 < len) break;
      const body = joined.subarray(at + 4, at + 4 + len);
      at += 4 + len;
      try {
        events.push({
          kind: "frame",
          value: JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body)),
        });
      } catch (e) {
        events.push({ kind: "bad-json", message: (e as Error).message });
      }
    }
    this.#buf = joined.slice(at);
    return events;
  }
}
