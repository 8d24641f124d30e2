/**
 * vmctl's side of the control socket: connect to `VMD_SOCKET` (or /var/run/vmd.sock), send one request,
 * read and validate one reply.
 *
 * @module
 */
import { encodeFrame, FrameDecoder } from "../vmd/framing.ts";
import { type Reply, type Request, validateReply, type VmStatus } from "../vmd/protocol.ts";
import { socketPath } from "../vmd/socket_path.ts";

/** The daemon could not be reached or answered something unusable. */
export class ControlError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "ControlError";
  }
}

/** Connects; while the daemon's accept queue is full (EAGAIN), retries for up to 5 s. */
async function connectRetrying(path: string): Promise<Deno.UnixConn> {
  const end = Date.now() + 5000;
  for (let delay = 5;; delay = Math.min(delay * 2, 200)) {
    try {
      return await Deno.connect({ transport: "unix", path });
    } catch (e) {
      const busy = e instanceof Deno.errors.WouldBlock || /os error 11\b/.test((e as Error).message);
      if (!busy || Date.now() > end) throw e;
    }
    await new Promise((r) => setTimeout(r, delay));
  }
}

/** Sends `request` and resolves to the daemon's validated reply. */
export async function sendRequest(request: Request, path: string = socketPath()): Promise<Reply> {
  let conn: Deno.UnixConn;
  try {
    conn = await connectRetrying(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.ConnectionRefused) {
      throw new ControlError(`cannot reach vmd at ${path}: is vmd running? (VMD_SOCKET moves the socket)`);
    }
    if (e instanceof Deno.errors.PermissionDenied) {
      throw new ControlError(
        `permission denied on ${path}: vm.conf's "socket owner" decides who may connect`,
      );
    }
    throw new ControlError(`cannot connect to ${path}: ${(e as Error).message}`);
  }
  try {
    const frame = encodeFrame(request);
    let at = 0;
    let writeError: Error | null = null;
    try {
      while (at < frame.length) at += await conn.write(frame.subarray(at));
    } catch (e) {
      // vmd may refuse the connection (too many) and close it before the request is written: its reply
      // says why, and is read below
      writeError = e as Error;
    }
    const decoder = new FrameDecoder();
    const buf = new Uint8Array(65536);
    for (;;) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) {
        throw new ControlError(
          `vmd closed the connection without a reply${writeError === null ? "" : ` (${writeError.message})`}`,
        );
      }
      for (const ev of decoder.push(buf.subarray(0, n))) {
        if (ev.kind !== "frame") throw new ControlError(`unreadable reply from vmd (${ev.kind})`);
        try {
          return validateReply(ev.value);
        } catch (e) {
          throw new ControlError(`invalid reply from vmd: ${(e as Error).message}`);
        }
      }
    }
  } finally {
    conn.close();
  }
}

/** The most status pages vmctl reads (a daemon whose pages do not end is refused). */
const MAX_STATUS_PAGES = 10_000;

/**
 * Every VM's status row: the daemon answers in pages (each within the frame limit), read here until the
 * last. Returns the first error reply instead, if there is one.
 */
export async function fetchAllStatus(
  path: string = socketPath(),
): Promise<VmStatus[] | Extract<Reply, { type: "error" }>> {
  const vms: VmStatus[] = [];
  let after = 0;
  for (let page = 0; page < MAX_STATUS_PAGES; page++) {
    const reply = await sendRequest({ v: 1, type: "status", target: null, after }, path);
    if (reply.type === "error") return reply;
    if (reply.type !== "status") throw new ControlError(`vmd answered status with ${reply.type}`);
    vms.push(...reply.vms);
    const next = reply.next ?? null;
    if (next === null) return vms;
    if (next <= after) throw new ControlError("vmd's status pages do not advance");
    after = next;
  }
  throw new ControlError(`vmd's status has more than ${MAX_STATUS_PAGES} pages`);
}
