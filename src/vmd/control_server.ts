/**
 * The control socket's server: a Unix stream socket served through libc (`ffi/unix_socket.ts`) so that each
 * connection's peer credentials come from the kernel (SO_PEERCRED). One poll(2) loop, run off the main thread,
 * watches the listening socket, every connection and a wake-up eventfd. Each frame is validated; a malformed,
 * oversized or unknown message gets an error reply and only that connection is affected.
 *
 * @module
 */
import { createEventfd, drainEventfd, EFD_CLOEXEC, EFD_NONBLOCK, signalEventfd } from "../../ffi/fd.ts";
import { openLibc } from "../../ffi/libc.ts";
import { POLLERR, pollFds, POLLHUP, POLLIN, POLLNVAL, POLLOUT, type PollRequest } from "../../ffi/poll.ts";
import {
  acceptUnix,
  listenUnix,
  type PeerCredentials,
  peerCredentials,
  recvSome,
  sendSome,
} from "../../ffi/unix_socket.ts";
import { encodeFrame, FrameDecoder } from "./framing.ts";
import { errorReply, type Reply, type Request, RequestError, validateRequest } from "./protocol.ts";

/**
 * Answers one validated request from `peer`; `gone` aborts when the connection is dropped (its client went
 * away), so a request that waits (`vmctl wait`) can stop waiting and release what it holds.
 */
export type RequestHandler = (request: Request, peer: PeerCredentials, gone: AbortSignal) => Promise<Reply>;

/** Limits of the server. */
export interface ServerLimits {
  /** Most connections at once, root's included; more are answered with an error and closed. */
  readonly maxConnections: number;
  /**
   * Connections kept for root: other users together may hold at most `maxConnections - rootReserve`, so their
   * load never refuses root's `vmctl`.
   */
  readonly rootReserve: number;
  /** Most connections one user other than root may hold at once. */
  readonly perUserConnections: number;
  /** A connection that has not completed a message this long after its first byte is dropped. */
  readonly partialTimeoutMs: number;
  /**
   * An idle connection (nothing buffered, nothing in progress) is closed after this long; so is one whose
   * replies have not been read for this long.
   */
  readonly idleTimeoutMs: number;
}

/** Default limits: 512 connections, 32 of them kept for root, 32 per other user; 10 s and 120 s. */
export const DEFAULT_LIMITS: ServerLimits = {
  maxConnections: 512,
  rootReserve: 32,
  perUserConnections: 32,
  partialTimeoutMs: 10_000,
  idleTimeoutMs: 120_000,
};

/** Requests a connection may have in progress at once. */
const MAX_PIPELINED = 64;
/** Reply bytes a connection may leave unread. */
const MAX_QUEUED_BYTES = 1 << 20;

interface Conn {
  readonly fd: number;
  readonly peer: PeerCredentials;
  readonly decoder: FrameDecoder;
  out: Uint8Array[];
  chain: Promise<void>;
  busy: number;
  lastActivity: number;
  /** When the unfinished message in the decoder began, or null. */
  partialSince: number | null;
  /** When replies last went out, or began to wait for a reader. */
  lastSend: number;
  closeAfterFlush: boolean;
  /** The client has shut down its side: nothing more to read, so it is no longer polled for input. */
  eof: boolean;
  closed: boolean;
  /** Aborted when the connection is dropped. */
  readonly gone: AbortController;
}

/** The running server. */
export class ControlServer {
  readonly #listenFd: number;
  readonly #wakeFd: number;
  readonly #handler: RequestHandler;
  readonly #limits: ServerLimits;
  readonly #log: (msg: string) => void;
  readonly #conns = new Map<number, Conn>();
  /** Open connections per uid. */
  readonly #perUid = new Map<number, number>();
  /** Fds of dropped connections, closed only between polls (the poll thread may still be watching them). */
  #toClose: number[] = [];
  #stopping = false;
  #loop: Promise<void> | undefined;

  private constructor(
    listenFd: number,
    handler: RequestHandler,
    limits: ServerLimits,
    log: (m: string) => void,
  ) {
    this.#listenFd = listenFd;
    this.#wakeFd = createEventfd(EFD_CLOEXEC | EFD_NONBLOCK);
    this.#handler = handler;
    this.#limits = limits;
    this.#log = log;
  }

  /** Binds `path` (which must not exist) and starts serving. */
  static listen(
    path: string,
    handler: RequestHandler,
    log: (msg: string) => void,
    limits: ServerLimits = DEFAULT_LIMITS,
  ): ControlServer {
    const server = new ControlServer(listenUnix(path), handler, limits, log);
    server.#loop = server.#run();
    return server;
  }

  /** Number of open connections. */
  get connections(): number {
    return this.#conns.size;
  }

  /** Stops accepting, closes every connection, and resolves when the loop has ended. */
  async close(): Promise<void> {
    this.#stopping = true;
    signalEventfd(this.#wakeFd);
    await this.#loop;
  }

  #wake(): void {
    if (!this.#stopping) signalEventfd(this.#wakeFd);
  }

  async #run(): Promise<void> {
    const libc = openLibc();
    while (!this.#stopping) {
      const conns = [...this.#conns.values()];
      const requests: PollRequest[] = [
        { fd: this.#wakeFd, events: POLLIN },
        { fd: this.#listenFd, events: POLLIN },
        // after end of stream POLLIN would be ready forever (a spin while a request is in progress); the
        // client's full close still shows as POLLHUP, which drops the connection
        ...conns.map((c) => ({ fd: c.fd, events: (c.eof ? 0 : POLLIN) | (c.out.length > 0 ? POLLOUT : 0) })),
      ];
      const events = await pollFds(requests, 1000);
      for (const fd of this.#toClose.splice(0)) libc.close(fd);
      if (events[0] & POLLIN) {
        try {
          drainEventfd(this.#wakeFd, libc);
        } catch { /* already drained */ }
      }
      if (events[1] & POLLIN) this.#acceptAll();
      conns.forEach((c, i) => {
        if (c.closed) return;
        const ev = events[i + 2];
        if (ev & POLLIN) this.#readFrom(c);
        if ((ev & (POLLHUP | POLLERR | POLLNVAL)) && !(ev & POLLIN)) this.#drop(c);
        if (!c.closed && c.out.length > 0) this.#flush(c);
      });
      this.#expire();
    }
    for (const c of this.#conns.values()) this.#drop(c);
    for (const fd of this.#toClose.splice(0)) libc.close(fd);
    libc.close(this.#listenFd);
    libc.close(this.#wakeFd);
  }

  #acceptAll(): void {
    for (;;) {
      let fd: number | null;
      try {
        fd = acceptUnix(this.#listenFd);
      } catch (e) {
        this.#log(`control: accept failed: ${(e as Error).message}`);
        return;
      }
      if (fd === null) return;
      let peer: PeerCredentials;
      try {
        peer = peerCredentials(fd);
      } catch (e) {
        this.#log(`control: no peer credentials: ${(e as Error).message}`);
        this.#toClose.push(fd);
        continue;
      }
      const now = Date.now();
      const conn: Conn = {
        fd,
        peer,
        decoder: new FrameDecoder(),
        out: [],
        chain: Promise.resolve(),
        busy: 0,
        lastActivity: now,
        partialSince: null,
        lastSend: now,
        closeAfterFlush: false,
        eof: false,
        closed: false,
        gone: new AbortController(),
      };
      this.#conns.set(fd, conn);
      this.#perUid.set(peer.uid, (this.#perUid.get(peer.uid) ?? 0) + 1);
      const refusal = this.#refusal(peer.uid);
      if (refusal !== null) {
        this.#reply(conn, errorReply("failed", refusal), true);
        this.#drop(conn); // refused connections are closed at once, reply or not: they hold nothing
      }
    }
  }

  /** Why a new connection from `uid` is refused (it is counted already), or null. */
  #refusal(uid: number): string | null {
    const l = this.#limits;
    if (this.#conns.size > l.maxConnections) return "vmd has too many control connections; try again later";
    if (uid === 0) return null;
    const mine = this.#perUid.get(uid) ?? 0;
    if (mine > l.perUserConnections) {
      return `too many control connections from uid ${uid} (at most ${l.perUserConnections} per user); ` +
        `close some and try again`;
    }
    const others = this.#conns.size - (this.#perUid.get(0) ?? 0);
    if (others > l.maxConnections - l.rootReserve) {
      return "vmd has too many control connections from users; try again later";
    }
    return null;
  }

  #readFrom(c: Conn): void {
    const buf = new Uint8Array(65536);
    for (;;) {
      let n: number | null;
      try {
        n = recvSome(c.fd, buf);
      } catch {
        this.#drop(c);
        return;
      }
      if (n === null) return;
      if (n === 0) {
        // end of stream: answer what is in progress, then close
        c.eof = true;
        c.closeAfterFlush = true;
        if (c.busy === 0 && c.out.length === 0) this.#drop(c);
        return;
      }
      c.lastActivity = Date.now();
      if (c.closeAfterFlush) continue; // after a fatal error, discard the rest
      for (const ev of c.decoder.push(buf.subarray(0, n))) {
        if (ev.kind === "too-large") {
          this.#reply(
            c,
            errorReply("too-large", `message of ${ev.bytes} bytes exceeds the 65536-byte limit`),
            true,
          );
          return;
        }
        if (ev.kind === "bad-json") {
          this.#reply(c, errorReply("bad-message", `message is not valid JSON: ${ev.message}`), false);
          continue;
        }
        this.#dispatch(c, ev.value);
        if (c.closeAfterFlush) return;
      }
      // a message's time runs from its first byte: trickling bytes does not keep a half message alive
      if (!c.decoder.pending) c.partialSince = null;
      else c.partialSince ??= Date.now();
      if (n < buf.length) return;
    }
  }

  #dispatch(c: Conn, value: unknown): void {
    const queued = c.out.reduce((n, b) => n + b.length, 0);
    if (c.busy >= MAX_PIPELINED || queued > MAX_QUEUED_BYTES) {
      // a client that sends without reading its replies is cut off rather than buffered without end
      this.#reply(c, errorReply("failed", "too many requests without reading the replies; closing"), true);
      return;
    }
    let request: Request;
    try {
      request = validateRequest(value);
    } catch (e) {
      if (e instanceof RequestError) {
        this.#enqueue(c, () => Promise.resolve(errorReply(e.code, e.message)));
        return;
      }
      throw e;
    }
    this.#enqueue(c, () => this.#handler(request, c.peer, c.gone.signal));
  }

  /** Runs `work` after the connection's earlier requests, so replies come back in order. */
  #enqueue(c: Conn, work: () => Promise<Reply>): void {
    c.busy++;
    c.chain = c.chain.then(async () => {
      let reply: Reply;
      try {
        reply = await work();
      } catch (e) {
        reply = errorReply("failed", e instanceof Error ? e.message : String(e));
      }
      c.busy--;
      this.#reply(c, reply, false);
    });
  }

  #reply(c: Conn, reply: Reply, fatal: boolean): void {
    if (c.closed) return;
    let frame: Uint8Array;
    try {
      frame = encodeFrame(reply);
    } catch (e) {
      frame = encodeFrame(errorReply("failed", (e as Error).message));
    }
    if (c.out.length === 0) c.lastSend = Date.now();
    c.out.push(frame);
    if (fatal) c.closeAfterFlush = true;
    this.#flush(c);
    this.#wake();
  }

  #flush(c: Conn): void {
    while (c.out.length > 0 && !c.closed) {
      let n: number;
      try {
        n = sendSome(c.fd, c.out[0]);
      } catch {
        this.#drop(c);
        return;
      }
      if (n === 0) return;
      c.lastSend = Date.now();
      c.out[0] = c.out[0].subarray(n);
      if (c.out[0].length === 0) c.out.shift();
    }
    if (c.out.length === 0 && c.closeAfterFlush && c.busy === 0) this.#drop(c);
  }

  #drop(c: Conn): void {
    if (c.closed) return;
    c.closed = true;
    this.#conns.delete(c.fd);
    const left = (this.#perUid.get(c.peer.uid) ?? 1) - 1;
    if (left > 0) this.#perUid.set(c.peer.uid, left);
    else this.#perUid.delete(c.peer.uid);
    this.#toClose.push(c.fd);
    c.gone.abort();
    this.#wake();
  }

  #expire(): void {
    const now = Date.now();
    const l = this.#limits;
    for (const c of [...this.#conns.values()]) {
      if (c.out.length > 0) {
        // replies nobody reads: the client is gone or stalling
        if (now - c.lastSend > l.idleTimeoutMs) this.#drop(c);
        continue;
      }
      if (c.busy > 0) continue; // a request in progress (`vmctl wait` may take long)
      if (c.partialSince !== null && now - c.partialSince > l.partialTimeoutMs) {
        c.partialSince = null;
        this.#reply(c, errorReply("bad-message", "incomplete message; closing the connection"), true);
      } else if (now - c.lastActivity > l.idleTimeoutMs) {
        this.#drop(c);
      }
    }
  }
}
