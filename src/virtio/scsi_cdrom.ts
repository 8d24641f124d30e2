/**
 * A read-only SCSI CD-ROM logical unit (peripheral type 5, removable, 2048-byte blocks): executes one CDB
 * against a medium and says what to answer. It knows nothing of virtio: the transport hands it the CDB and
 * moves the data. The guest is hostile: every field of the CDB is bounded here (allocation lengths clip the
 * answer, a read past the last block or one whose length overflows is refused with sense data), and anything
 * it does not know — every write among them — is CHECK CONDITION, ILLEGAL REQUEST, INVALID COMMAND OPERATION
 * CODE.
 *
 * Commands: TEST UNIT READY, REQUEST SENSE, INQUIRY (standard; VPD pages 0x00, 0x80, 0x83), MODE SENSE(6/10)
 * (the CD capabilities page only), START STOP UNIT and PREVENT ALLOW MEDIUM REMOVAL (accepted; the medium
 * never leaves), READ CAPACITY(10/16), READ(10/12/16), REPORT LUNS, and what an MMC driver asks of a drive:
 * GET CONFIGURATION, READ TOC (formats 0 and 1), GET EVENT STATUS NOTIFICATION (polled), READ DISC
 * INFORMATION.
 *
 * @module
 */

/** The CD block size. */
export const CD_BLOCK = 2048;

/** SCSI status bytes. */
export const SCSI_STATUS = { GOOD: 0x00, CHECK_CONDITION: 0x02 } as const;

/** Operation codes this unit knows. */
export const SCSI_OP = {
  TEST_UNIT_READY: 0x00,
  REQUEST_SENSE: 0x03,
  INQUIRY: 0x12,
  MODE_SENSE_6: 0x1a,
  START_STOP_UNIT: 0x1b,
  PREVENT_ALLOW: 0x1e,
  READ_CAPACITY_10: 0x25,
  READ_10: 0x28,
  READ_TOC: 0x43,
  GET_CONFIGURATION: 0x46,
  GET_EVENT_STATUS: 0x4a,
  READ_DISC_INFORMATION: 0x51,
  MODE_SENSE_10: 0x5a,
  READ_16: 0x88,
  SERVICE_ACTION_IN_16: 0x9e,
  REPORT_LUNS: 0xa0,
  READ_12: 0xa8,
} as const;

/** Sense key, additional sense code and qualifier. */
export interface Sense {
  /** Sense key. */
  readonly key: number;
  /** Additional sense code. */
  readonly asc: number;
  /** Its qualifier. */
  readonly ascq: number;
}

/** The sense data this unit reports. */
export const SENSE = {
  INVALID_OPCODE: { key: 0x05, asc: 0x20, ascq: 0x00 },
  LBA_OUT_OF_RANGE: { key: 0x05, asc: 0x21, ascq: 0x00 },
  INVALID_FIELD_IN_CDB: { key: 0x05, asc: 0x24, ascq: 0x00 },
} as const satisfies Record<string, Sense>;

/** Bytes of fixed-format sense data. */
export const FIXED_SENSE_BYTES = 18;

/** What to answer a command with. */
export type ScsiOutcome =
  /** GOOD, with these bytes of data-in (already clipped to the allocation length); none for no data. */
  | { readonly kind: "data"; readonly bytes: Uint8Array }
  /** GOOD, with `length` bytes of the medium from byte `offset` as data-in (checked to lie on the medium). */
  | { readonly kind: "read"; readonly offset: number; readonly length: number }
  /** CHECK CONDITION with this sense. */
  | { readonly kind: "check"; readonly sense: Sense };

/** A read-only medium: its size and positioned reads (zeros past its end). */
export interface CdMedium {
  /** Bytes. */
  readonly length: number;
  /** Fills `buf` from byte `pos`. */
  readAt(pos: number, buf: Uint8Array): void;
}

/**
 * Why an image of `size` bytes cannot be a CD-ROM (smaller than one block: not an ISO image), or undefined.
 * Callers put it after the file's name.
 */
export function cdromImageProblem(size: number): string | undefined {
  return size < CD_BLOCK
    ? `a CD-ROM image of ${size} bytes holds no ${CD_BLOCK}-byte block; name an ISO 9660 image`
    : undefined;
}

/** Fixed-format sense data for `s`. */
export function fixedSense(s: Sense): Uint8Array {
  const b = new Uint8Array(FIXED_SENSE_BYTES);
  b[0] = 0x70; // current error, fixed format
  b[2] = s.key;
  b[7] = FIXED_SENSE_BYTES - 8;
  b[12] = s.asc;
  b[13] = s.ascq;
  return b;
}

const NONE: ScsiOutcome = { kind: "data", bytes: new Uint8Array(0) };
const check = (sense: Sense): ScsiOutcome => ({ kind: "check", sense });
const be16 = (c: Uint8Array, at: number) => (c[at] << 8) | c[at + 1];
const be32 = (c: Uint8Array, at: number) =>
  ((c[at] << 24) | (c[at + 1] << 16) | (c[at + 2] << 8) | c[at + 3]) >>> 0;
/** A big-endian 64-bit field as a number; values past 2^53 saturate (past any medium anyway). */
const be64 = (c: Uint8Array, at: number) => Math.min(be32(c, at) * 2 ** 32 + be32(c, at + 4), 2 ** 53);

/** `bytes` clipped to `alloc`. */
const clip = (bytes: Uint8Array, alloc: number): ScsiOutcome => ({
  kind: "data",
  bytes: bytes.subarray(0, Math.min(bytes.length, alloc)),
});

/** ASCII, space-padded to `n` bytes. */
function padded(text: string, n: number): Uint8Array {
  const out = new Uint8Array(n).fill(0x20);
  for (let i = 0; i < Math.min(n, text.length); i++) out[i] = text.charCodeAt(i) & 0x7f;
  return out;
}

/** Identity strings of the unit. */
export interface CdIdentity {
  /** Unit serial number (VPD page 0x80), ASCII. */
  readonly serial: string;
}

/** Vendor identification in INQUIRY (8 bytes). */
export const CD_VENDOR = "VMD";
/** Product identification in INQUIRY (16 bytes). */
export const CD_PRODUCT = "Virtual CD-ROM";
/** Product revision in INQUIRY (4 bytes). */
export const CD_REVISION = "1.0";

/** An MMC profile: CD-ROM up to a CD's size, DVD-ROM beyond (as drives report pressed discs). */
const PROFILE_CD_ROM = 0x0008;
const PROFILE_DVD_ROM = 0x0010;
/** 80 minutes of 75 blocks a second. */
const CD_MAX_BLOCKS = 80 * 60 * 75;

/** One read-only CD-ROM logical unit. */
export class CdromUnit {
  readonly #medium: CdMedium;
  readonly #blocks: number;
  readonly #serial: string;

  /** The unit over `medium` (whole 2048-byte blocks; a partial last block is not part of it). */
  constructor(medium: CdMedium, id: CdIdentity) {
    this.#medium = medium;
    this.#blocks = Math.floor(medium.length / CD_BLOCK);
    this.#serial = id.serial.slice(0, 32);
  }

  /** Blocks on the medium. */
  get blocks(): number {
    return this.#blocks;
  }

  /** The medium (the transport reads from it for a `read` outcome). */
  get medium(): CdMedium {
    return this.#medium;
  }

  /** Executes `cdb` (16 bytes or more; the bytes a command does not use are ignored). */
  execute(cdb: Uint8Array): ScsiOutcome {
    switch (cdb[0]) {
      case SCSI_OP.TEST_UNIT_READY:
      case SCSI_OP.START_STOP_UNIT:
      case SCSI_OP.PREVENT_ALLOW:
        return NONE;
      case SCSI_OP.REQUEST_SENSE:
        // Sense travels with each failed command (autosense): nothing is pending here.
        return clip(fixedSense({ key: 0, asc: 0, ascq: 0 }), cdb[4]);
      case SCSI_OP.INQUIRY:
        return this.#inquiry(cdb);
      case SCSI_OP.MODE_SENSE_6:
        return this.#modeSense(cdb, false);
      case SCSI_OP.MODE_SENSE_10:
        return this.#modeSense(cdb, true);
      case SCSI_OP.READ_CAPACITY_10: {
        const b = new Uint8Array(8);
        const v = new DataView(b.buffer);
        v.setUint32(0, Math.min(Math.max(this.#blocks - 1, 0), 0xffffffff));
        v.setUint32(4, CD_BLOCK);
        return { kind: "data", bytes: b };
      }
      case SCSI_OP.SERVICE_ACTION_IN_16: {
        if ((cdb[1] & 0x1f) !== 0x10) return check(SENSE.INVALID_FIELD_IN_CDB); // READ CAPACITY(16) only
        const b = new Uint8Array(32);
        const v = new DataView(b.buffer);
        v.setBigUint64(0, BigInt(Math.max(this.#blocks - 1, 0)));
        v.setUint32(8, CD_BLOCK);
        return clip(b, be32(cdb, 10));
      }
      case SCSI_OP.READ_10:
        return this.#read(be32(cdb, 2), be16(cdb, 7));
      case SCSI_OP.READ_12:
        return this.#read(be32(cdb, 2), be32(cdb, 6));
      case SCSI_OP.READ_16:
        return this.#read(be64(cdb, 2), be32(cdb, 10));
      case SCSI_OP.REPORT_LUNS: {
        const alloc = be32(cdb, 6);
        if (alloc < 16) return check(SENSE.INVALID_FIELD_IN_CDB);
        const b = new Uint8Array(16); // one LUN: 0
        b[3] = 8;
        return clip(b, alloc);
      }
      case SCSI_OP.GET_CONFIGURATION:
        return this.#configuration(cdb);
      case SCSI_OP.READ_TOC:
        return this.#toc(cdb);
      case SCSI_OP.GET_EVENT_STATUS:
        return this.#eventStatus(cdb);
      case SCSI_OP.READ_DISC_INFORMATION: {
        if ((cdb[1] & 0x07) !== 0) return check(SENSE.INVALID_FIELD_IN_CDB); // standard disc information
        const b = new Uint8Array(34);
        b[1] = 32;
        b[2] = 0x0e; // last session complete, disc complete
        b[3] = 1; // first track
        b[4] = 1; // sessions
        b[5] = 1; // first track of the last session
        b[6] = 1; // last track of the last session
        b[7] = 0x20; // unrestricted use
        return clip(b, be16(cdb, 7));
      }
      default:
        return check(SENSE.INVALID_OPCODE);
    }
  }

  /** Refuses a read that leaves the medium; otherwise the byte range. */
  #read(lba: number, count: number): ScsiOutcome {
    if (lba > this.#blocks || count > this.#blocks - lba) return check(SENSE.LBA_OUT_OF_RANGE);
    if (count === 0) return NONE;
    return { kind: "read", offset: lba * CD_BLOCK, length: count * CD_BLOCK };
  }

  #inquiry(cdb: Uint8Array): ScsiOutcome {
    const alloc = be16(cdb, 3);
    const evpd = (cdb[1] & 1) !== 0;
    if (!evpd) {
      if (cdb[2] !== 0) return check(SENSE.INVALID_FIELD_IN_CDB);
      const b = new Uint8Array(36);
      b[0] = 0x05; // connected, CD/DVD
      b[1] = 0x80; // removable
      b[2] = 0x05; // SPC-3
      b[3] = 0x02; // response data format 2
      b[4] = b.length - 5;
      b.set(padded(CD_VENDOR, 8), 8);
      b.set(padded(CD_PRODUCT, 16), 16);
      b.set(padded(CD_REVISION, 4), 32);
      return clip(b, alloc);
    }
    const page = (code: number, body: Uint8Array) => {
      const b = new Uint8Array(4 + body.length);
      b[0] = 0x05;
      b[1] = code;
      b[2] = body.length >> 8;
      b[3] = body.length & 0xff;
      b.set(body, 4);
      return clip(b, alloc);
    };
    const serial = padded(this.#serial, this.#serial.length);
    switch (cdb[2]) {
      case 0x00:
        return page(0x00, Uint8Array.of(0x00, 0x80, 0x83));
      case 0x80:
        return page(0x80, serial);
      case 0x83: {
        // one designator: T10 vendor identification (ASCII), vendor then serial
        const id = new Uint8Array(8 + serial.length);
        id.set(padded(CD_VENDOR, 8));
        id.set(serial, 8);
        const d = new Uint8Array(4 + id.length);
        d[0] = 0x02; // ASCII
        d[1] = 0x01; // associated with the unit, T10 vendor id
        d[3] = id.length;
        d.set(id, 4);
        return page(0x83, d);
      }
      default:
        return check(SENSE.INVALID_FIELD_IN_CDB);
    }
  }

  /** MODE SENSE: no block descriptor; the CD capabilities page (0x2a) alone, or as "all pages" (0x3f). */
  #modeSense(cdb: Uint8Array, ten: boolean): ScsiOutcome {
    const control = cdb[2] >> 6;
    const code = cdb[2] & 0x3f;
    if (control === 3) return check({ key: 0x05, asc: 0x39, ascq: 0x00 }); // saving parameters not supported
    if (code !== 0x2a && code !== 0x3f) return check(SENSE.INVALID_FIELD_IN_CDB);
    const p = new Uint8Array(22);
    p[0] = 0x2a;
    p[1] = p.length - 2;
    if (control !== 1) { // changeable values: none
      p[2] = 0x00; // reads CD-ROM media only (no CD-R, CD-RW)
      p[4] = 0x00;
      p[6] = 0x29; // tray loading, eject, lock
    }
    const header = ten ? 8 : 4;
    const b = new Uint8Array(header + p.length);
    b.set(p, header);
    if (ten) {
      b[0] = (b.length - 2) >> 8;
      b[1] = (b.length - 2) & 0xff;
    } else b[0] = b.length - 1;
    return clip(b, ten ? be16(cdb, 7) : cdb[4]);
  }

  #profile(): number {
    return this.#blocks > CD_MAX_BLOCKS ? PROFILE_DVD_ROM : PROFILE_CD_ROM;
  }

  /** GET CONFIGURATION: the header and, from feature 0, the profile list with the one current profile. */
  #configuration(cdb: Uint8Array): ScsiOutcome {
    const rt = cdb[1] & 0x03;
    if (rt === 3) return check(SENSE.INVALID_FIELD_IN_CDB);
    const start = be16(cdb, 2);
    const withList = start === 0;
    const b = new Uint8Array(withList ? 16 : 8);
    const v = new DataView(b.buffer);
    v.setUint32(0, b.length - 4);
    v.setUint16(6, this.#profile());
    if (withList) {
      v.setUint16(8, 0x0000); // profile list
      b[10] = 0x03; // persistent, current
      b[11] = 4;
      v.setUint16(12, this.#profile());
      b[14] = 0x01; // current
    }
    return clip(b, be16(cdb, 7));
  }

  /** READ TOC: format 0 (one data track and the lead-out) and 1 (session information), LBA or MSF. */
  #toc(cdb: Uint8Array): ScsiOutcome {
    const msf = (cdb[1] & 0x02) !== 0;
    const format = cdb[2] & 0x0f;
    const track = cdb[6];
    const address = (lba: number, out: DataView, at: number) => {
      if (!msf) return out.setUint32(at, lba);
      const f = lba + 150;
      out.setUint8(at + 1, Math.min(Math.floor(f / (60 * 75)), 0xff));
      out.setUint8(at + 2, Math.floor(f / 75) % 60);
      out.setUint8(at + 3, f % 75);
    };
    const descriptor = (out: DataView, at: number, number: number, lba: number) => {
      out.setUint8(at + 1, 0x14); // ADR 1, data track
      out.setUint8(at + 2, number);
      address(lba, out, at + 4);
    };
    if (format === 0) {
      if (track > 1 && track !== 0xaa) return check(SENSE.INVALID_FIELD_IN_CDB);
      const entries = track === 0xaa ? 1 : 2;
      const b = new Uint8Array(4 + 8 * entries);
      const v = new DataView(b.buffer);
      v.setUint16(0, b.length - 2);
      b[2] = 1;
      b[3] = 1;
      if (entries === 2) descriptor(v, 4, 1, 0);
      descriptor(v, 4 + 8 * (entries - 1), 0xaa, this.#blocks);
      return clip(b, be16(cdb, 7));
    }
    if (format === 1) {
      const b = new Uint8Array(12);
      const v = new DataView(b.buffer);
      v.setUint16(0, b.length - 2);
      b[2] = 1;
      b[3] = 1;
      descriptor(v, 4, 1, 0);
      return clip(b, be16(cdb, 7));
    }
    return check(SENSE.INVALID_FIELD_IN_CDB);
  }

  /** GET EVENT STATUS NOTIFICATION, polled only: the media class says a medium is present, nothing changed. */
  #eventStatus(cdb: Uint8Array): ScsiOutcome {
    if ((cdb[1] & 0x01) === 0) return check(SENSE.INVALID_FIELD_IN_CDB); // asynchronous: not supported
    const media = (cdb[4] & 0x10) !== 0;
    const b = new Uint8Array(media ? 8 : 4);
    b[1] = b.length - 2;
    b[3] = 0x10; // supported classes: media
    if (media) {
      b[2] = 0x04; // media class
      b[5] = 0x02; // media present, tray closed
    } else b[2] = 0x80; // no event available
    return clip(b, be16(cdb, 7));
  }
}
