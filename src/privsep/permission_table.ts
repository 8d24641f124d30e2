/**
 * The permission table: every process and worker vmd runs, the Deno permissions it gets, and a reason for
 * each grant (as OpenBSD's vmd declares its processes and pledges in one place). Workers are only ever
 * created from this table ({@link workerOptions}); what a row does not grant, the worker cannot do.
 *
 * @module
 */
import { LIBC_CANDIDATES } from "../../ffi/libc.ts";
import { BUNDLE_PATH, bundleUrl, isBundleName, PROGRAM_ROOT, RUNNING_BUNDLED } from "../build/bundles.ts";

/** A Deno permission name. */
export type PermissionName = "read" | "write" | "net" | "env" | "run" | "ffi" | "sys" | "import";

/** One grant: a permission, its scope, and why it is needed. */
export interface Grant {
  /** The permission. */
  readonly permission: PermissionName;
  /** Paths, hosts or names it is limited to; `true` for unscoped. */
  readonly scope: readonly string[] | true;
  /** Why this row needs it. */
  readonly reason: string;
}

/** Facts a row's grants depend on. */
export interface PolicyContext {
  /** libc's resolved path (ffi permission matches the literal string). */
  readonly libcPath: string;
  /** For process rows: the program's root folder (workers are loaded from its `src/` and `ffi/`). */
  readonly programRoot?: string;
}

/** Devices every VM process opens: KVM (its console pty is opened by vmd and inherited). */
export const VM_DEVICES: readonly string[] = ["/dev/kvm"];

/** One process or worker. */
export interface PolicyRow {
  /** Its name (`vcpu`, `vmd`, ...). */
  readonly name: string;
  /** Process or worker. */
  readonly kind: "process" | "worker";
  /** Its entry module, relative to the project root. */
  readonly entry: string;
  /** What it does, in one line. */
  readonly role: string;
  /** Its grants; everything else is denied. */
  grants(ctx: PolicyContext): readonly Grant[];
}

/** Every row. */
export const POLICY: readonly PolicyRow[] = [
  {
    name: "vmd",
    kind: "process",
    entry: "cli.ts",
    role: "parent: parses vm.conf, owns the control socket, opens disks/ttys, creates VMs and workers",
    grants: () => [
      {
        permission: "ffi",
        scope: true,
        reason: "KVM ioctls and tgkill via libc; unscoped because registering the RAM SharedArrayBuffer " +
          "needs its address (Deno's pointer API), which a path-scoped grant denies. Unscoped ffi is all power, " +
          "so the installed vmd runs with --allow-all, which Deno also demands for /dev/pts (giving a console " +
          "to its owner) and /proc/<pid> (a VM process's RSS)",
      },
      { permission: "read", scope: true, reason: "vm.conf, kernels, disk images, /dev/kvm" },
      { permission: "write", scope: true, reason: "disk images, the control socket, /dev/kvm (O_RDWR)" },
      { permission: "env", scope: true, reason: "VMD_SOCKET, CI and terminal settings" },
      { permission: "run", scope: true, reason: "re-executes itself once per VM (one process per VM)" },
      { permission: "sys", scope: true, reason: "host name and memory figures for status" },
      {
        permission: "net",
        scope: true,
        reason: "vmctl connects to the control socket (Deno counts a Unix-socket connect as net access)",
      },
    ],
  },
  {
    name: "vm",
    kind: "process",
    entry: "cli.ts",
    role:
      "one per running VM (cli.ts vm-process, or its bundle): guest RAM, vCPU workers, devices; its console, taps, " +
      "kernel, initrd and disks are descriptors vmd opened and it inherited (it opens no user path)",
    grants: (ctx) => [
      {
        permission: "ffi",
        scope: true,
        reason: "KVM ioctls, reads of its inherited kernel/initrd descriptors, console reads/writes and " +
          "tgkill via libc; unscoped for the same reason as vmd's (the RAM SharedArrayBuffer's address)",
      },
      {
        permission: "read",
        scope: [
          ...VM_DEVICES,
          ...LIBC_CANDIDATES,
          ...(ctx.programRoot === undefined
            ? []
            : [`${ctx.programRoot}/src`, `${ctx.programRoot}/ffi`, `${ctx.programRoot}/${BUNDLE_PATH}`]),
        ],
        reason:
          "/dev/kvm, libc's path (to find it), the program's modules or their bundles (its workers are " +
          "loaded from files); no user file: those arrive as descriptors",
      },
      {
        permission: "write",
        scope: [...VM_DEVICES],
        reason: "/dev/kvm (opened O_RDWR)",
      },
    ],
  },
  {
    name: "vcpu",
    kind: "worker",
    entry: "src/vcpu/vcpu_worker.ts",
    role: "one per vCPU: the KVM_RUN loop and port/MMIO dispatch to register models",
    grants: (ctx) => [
      {
        permission: "ffi",
        scope: [ctx.libcPath],
        reason:
          "ioctl(KVM_RUN) and register ioctls on its vCPU fd, KVM_IRQ_LINE for its devices, gettid for kicks",
      },
    ],
  },
  {
    name: "virtio-blk",
    kind: "worker",
    entry: "src/virtio/blk_worker.ts",
    role: "one per disk: serves its virtqueue against the image (guest memory is a SharedArrayBuffer)",
    grants: (ctx) => [
      {
        permission: "ffi",
        scope: [ctx.libcPath],
        reason:
          "pread/pwrite/fdatasync on the descriptors of its image and backing chain (vmd opened them; " +
          "the backing ones read-only): Deno's file API opens only paths, and resolves links by name again",
      },
    ],
  },
  {
    name: "virtio-scsi",
    kind: "worker",
    entry: "src/virtio/scsi_worker.ts",
    role: "one per CD-ROM: serves its virtio-scsi queues, reading the ISO image (read-only)",
    grants: (ctx) => [
      {
        permission: "ffi",
        scope: [ctx.libcPath],
        reason: "pread on the descriptor of its ISO image (vmd opened it read-only; Deno's file API opens " +
          "only paths), and Landlock for its own thread; no files, no network, no other permission",
      },
    ],
  },
  {
    name: "virtio-rng",
    kind: "worker",
    entry: "src/virtio/rng_worker.ts",
    role: "entropy for the guest from crypto.getRandomValues; needs no permission at all",
    grants: () => [],
  },
  {
    name: "virtio-net",
    kind: "worker",
    entry: "src/virtio/net_worker.ts",
    role:
      "one per NIC: moves frames between its virtqueues and its tap fd; answers DHCP on a local interface",
    grants: (ctx) => [
      {
        permission: "ffi",
        scope: [ctx.libcPath],
        reason: "read/write/poll on its tap fd (opened by the main thread): Deno cannot adopt a raw fd, so " +
          "the only way is libc; no files, no network, no other permission",
      },
    ],
  },
];

/** Error for a row that does not exist. */
export class PolicyError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "PolicyError";
  }
}

/** The row called `name`. */
export function policyRow(name: string): PolicyRow {
  const row = POLICY.find((r) => r.name === name);
  if (row === undefined) throw new PolicyError(`no permission-table row named ${name}`);
  return row;
}

/** Deno permissions for a row: its grants, and `false` for everything else. */
export function permissionsFor(name: string, ctx: PolicyContext): Deno.PermissionOptionsObject {
  const perms: Record<PermissionName, boolean | string[]> = {
    read: false,
    write: false,
    net: false,
    env: false,
    run: false,
    ffi: false,
    sys: false,
    import: false,
  };
  for (const g of policyRow(name).grants(ctx)) {
    perms[g.permission] = g.scope === true ? true : [...g.scope];
  }
  return perms as Deno.PermissionOptionsObject;
}

/** The URL of a row's entry module. */
export function entryUrl(name: string): URL {
  const row = policyRow(name);
  // a process running from a bundle starts its workers from the bundles built with it (src/build/bundles.ts)
  if (RUNNING_BUNDLED && row.kind === "worker") {
    if (!isBundleName(name)) throw new PolicyError(`worker ${name} has no bundle; add it to BUNDLE_ENTRIES`);
    return bundleUrl(name);
  }
  return new URL(row.entry, PROGRAM_ROOT);
}

/** `new Worker` options for a worker row, permissions from the table. */
export function workerOptions(name: string, ctx: PolicyContext, label = name): WorkerOptions {
  const row = policyRow(name);
  if (row.kind !== "worker") throw new PolicyError(`${name} is a process, not a worker`);
  return { type: "module", name: label, deno: { permissions: permissionsFor(name, ctx) } } as WorkerOptions;
}

/** A path that cannot be passed in a `--allow-*` flag (Deno separates paths with commas). */
export function unsafeFlagPath(path: string): boolean {
  return path.includes(",") || path.includes("\n") || path.length === 0;
}

/**
 * `deno run` permission flags for a process row: one `--allow-<name>` per grant, nothing else (Deno denies
 * the rest). Throws {@link PolicyError} for a path that cannot be expressed as a flag.
 */
export function processFlags(name: string, ctx: PolicyContext): string[] {
  const row = policyRow(name);
  if (row.kind !== "process") throw new PolicyError(`${name} is a worker, not a process`);
  const flags: string[] = [];
  for (const g of row.grants(ctx)) {
    if (g.scope === true) {
      flags.push(`--allow-${g.permission}`);
      continue;
    }
    const bad = g.scope.find(unsafeFlagPath);
    if (bad !== undefined) {
      throw new PolicyError(`path ${JSON.stringify(bad)} contains a comma; rename the file`);
    }
    flags.push(`--allow-${g.permission}=${[...new Set(g.scope)].join(",")}`);
  }
  return flags;
}

/** The table as text: one line per grant, with its reason. */
export function formatPolicy(ctx: PolicyContext): string {
  const lines = ["NAME      KIND     PERMISSION  SCOPE                              REASON"];
  for (const row of POLICY) {
    const grants = row.grants(ctx);
    lines.push(`${row.name.padEnd(9)} ${row.kind.padEnd(8)} ${"".padEnd(11)} ${"".padEnd(34)} ${row.role}`);
    for (const g of grants) {
      const scope = g.scope === true ? "(any)" : g.scope.join(",");
      lines.push(
        `${"".padEnd(9)} ${"".padEnd(8)} ${g.permission.padEnd(11)} ${scope.padEnd(34)} ${g.reason}`,
      );
    }
    lines.push(`${"".padEnd(9)} ${"".padEnd(8)} ${"(all else)".padEnd(11)} ${"denied".padEnd(34)}`);
  }
  return lines.join("\n");
}
