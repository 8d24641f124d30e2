/**
 * The descriptors a {@link VmSpec} names, and their passing from the daemon to a VM process. The daemon
 * sends them over the VM process's descriptor channel (a `SOCK_SEQPACKET` pair, `ffi/fd_passing.ts`) in one
 * message whose payload lists the numbers they have in the daemon; the VM process checks the message came
 * from its parent, that it holds exactly the spec's descriptors, each of the kind its role needs (a pty or
 * tap is a character device, a kernel or CD-ROM image a regular file, a disk a file or block device), and rewrites the spec
 * to its own numbers. Anything else is closed and refused.
 *
 * @module
 */
import { MAX_PASSED_FDS, receiveFds, sendFds } from "../../ffi/fd_passing.ts";
import { type FileKind, fstatFd } from "../../ffi/open_file.ts";
import { closeFd } from "../../ffi/fd.ts";
import { peerCredentials } from "../../ffi/unix_socket.ts";
import type { VmSpec } from "./vm_messages.ts";

/** What a descriptor of a spec is for. */
export type SpecFdRole = "console" | "tap" | "boot file" | "disk" | "cdrom";

/** One descriptor of a spec. */
export interface SpecFd {
  /** Its number (in the daemon, in the spec as sent). */
  readonly fd: number;
  /** Its role. */
  readonly role: SpecFdRole;
}

/** The descriptor kinds each role accepts. */
const ACCEPTED: Readonly<Record<SpecFdRole, readonly FileKind[]>> = {
  console: ["char"],
  tap: ["char"],
  "boot file": ["file"],
  disk: ["file", "block"],
  cdrom: ["file"],
};

/** A descriptor message that does not match the spec, or came from someone else. */
export class SpecFdError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "SpecFdError";
  }
}

/** Every descriptor `spec` names, with its role, in a fixed order. */
export function specFds(spec: VmSpec): SpecFd[] {
  return [
    { fd: spec.consoleFd, role: "console" },
    ...spec.nics.map((n): SpecFd => ({ fd: n.fd, role: "tap" })),
    { fd: spec.kernel.fd, role: "boot file" },
    ...(spec.initrd === null ? [] : [{ fd: spec.initrd.fd, role: "boot file" } as SpecFd]),
    ...spec.disks.flatMap((d) => d.files.map((f): SpecFd => ({ fd: f.fd, role: "disk" }))),
    ...(spec.cdrom === null ? [] : [{ fd: spec.cdrom.fd, role: "cdrom" } as SpecFd]),
  ];
}

/** `spec` with every descriptor number replaced through `map`. */
export function remapSpec(spec: VmSpec, map: (fd: number) => number): VmSpec {
  return {
    ...spec,
    consoleFd: map(spec.consoleFd),
    kernel: { ...spec.kernel, fd: map(spec.kernel.fd) },
    initrd: spec.initrd === null ? null : { ...spec.initrd, fd: map(spec.initrd.fd) },
    disks: spec.disks.map((d) => ({ ...d, files: d.files.map((f) => ({ ...f, fd: map(f.fd) })) })),
    cdrom: spec.cdrom === null ? null : { ...spec.cdrom, fd: map(spec.cdrom.fd) },
    nics: spec.nics.map((n) => ({ ...n, fd: map(n.fd) })),
  };
}

/**
 * Checks that the peer of the descriptor channel is `sender` (this process's parent by default): SO_PEERCRED
 * of a socket pair names the process that created it, so only the daemon that spawned this process passes.
 */
export function checkSender(channel: number, sender: number = Deno.ppid): void {
  const peer = peerCredentials(channel);
  if (peer.pid !== sender) {
    throw new SpecFdError(
      `descriptor channel's peer is pid ${peer.pid}, not the daemon (${sender}); refused`,
    );
  }
}

/** Sends the descriptors `spec` names over `channel` (daemon side); they stay open here. */
export function sendSpecFds(channel: number, spec: VmSpec): void {
  const fds = [...new Set(specFds(spec).map((s) => s.fd))];
  sendFds(channel, new Uint8Array(Int32Array.from(fds).buffer), fds);
}

/**
 * Receives the descriptors of `spec` from `channel` (VM-process side: the daemon sent them before the boot
 * message), checks them and returns the spec in this process's numbers. The sender must be `sender`, this
 * process's parent by default (SO_PEERCRED of the pair it inherited names the pair's creator). On any
 * mismatch every received descriptor is closed.
 */
export function receiveSpecFds(channel: number, spec: VmSpec, sender: number = Deno.ppid): VmSpec {
  checkSender(channel, sender);
  const wanted = specFds(spec);
  const got = receiveFds(channel, 4 * MAX_PASSED_FDS, MAX_PASSED_FDS);
  try {
    const theirs = Array.from(new Int32Array(got.payload.slice().buffer, 0, got.payload.length >> 2));
    if (got.payload.length % 4 !== 0 || theirs.length !== got.fds.length) {
      throw new SpecFdError(`descriptor message names ${theirs.length} fds but carries ${got.fds.length}`);
    }
    const count = new Set(wanted.map((w) => w.fd)).size;
    if (got.fds.length !== count || new Set(theirs).size !== theirs.length) {
      throw new SpecFdError(`the spec names ${count} descriptors; ${got.fds.length} arrived`);
    }
    const map = new Map(theirs.map((fd, i) => [fd, got.fds[i]]));
    for (const w of wanted) {
      const mine = map.get(w.fd);
      if (mine === undefined) throw new SpecFdError(`the spec's fd ${w.fd} (${w.role}) did not arrive`);
      const type = fstatFd(mine).kind;
      if (!ACCEPTED[w.role].includes(type)) {
        throw new SpecFdError(
          `the ${w.role} descriptor is a ${type}, not a ${ACCEPTED[w.role].join(" or ")}`,
        );
      }
    }
    return remapSpec(spec, (fd) => map.get(fd)!);
  } catch (e) {
    for (const fd of got.fds) closeFd(fd);
    throw e;
  }
}
