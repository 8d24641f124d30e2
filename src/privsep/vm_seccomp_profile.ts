/**
 * The VM process's seccomp profile: an allow-list. Whatever is not listed fails with EPERM (an error the
 * code reports, not a kill), as do other architectures' and x32 calls.
 *
 * Why an allow-list: a deny-list is only as good as the list of dangerous calls someone remembered, and the
 * kernel keeps adding calls that reach files, namespaces or other processes by new routes (`open_tree`,
 * `fsopen`, `io_uring_*`, `name_to_handle_at`...). The allow-list below was measured (`strace -f -c` on
 * `vmd run` with virtio-blk, virtio-rng and virtio-net guests, and on the lock-down test's process) and
 * widened only by calls that act on descriptors the process already holds, on its own memory, its own
 * threads or the clock. The risk of an allow-list, a call V8 or Deno makes at run time that was not seen,
 * turns into EPERM for that call; the lock-down test runs timers, Atomics, allocations and ioctls after the
 * filter to catch that.
 *
 * What is refused, by not being listed, includes every call that names a path (open, openat, openat2,
 * creat, execve, execveat, readlink, access, mkdir, unlink, rename...), every socket call that makes a new
 * socket or address (socket, socketpair, connect, bind, listen, accept), ptrace, process_vm_readv/writev,
 * mount, umount2, pivot_root, chroot, bpf, perf_event_open, kexec_*, *_module, the setuid family, capset,
 * keyctl, add_key, request_key, userfaultfd, unshare, setns, memfd_create, name_to_handle_at,
 * open_by_handle_at, io_uring_setup (io_uring would run calls without passing this filter) and personality.
 * {@link MUST_REFUSE} lists them for the tests.
 *
 * The exceptions that still name a path: `newfstatat` and `statx` (glibc's `fstat` and Rust's
 * `File::metadata` are these calls with an empty path and `AT_EMPTY_PATH`; seccomp cannot read the path, so a
 * locked VM process can still learn a path's metadata — existence, size, owner — but never its contents).
 *
 * @module
 */
import type { SyscallName } from "../../ffi/syscalls_x86_64.ts";
import type { SeccompProfile, SyscallRule } from "./seccomp_filter.ts";

/** EPERM: what every refused call fails with. */
export const EPERM = 1;
/** ENOSYS: `clone3` fails with it, so glibc falls back to `clone`, whose flags a filter can read. */
export const ENOSYS = 38;

/** clone(2) flags that make a new namespace (`CLONE_NEW*` in `linux/sched.h`). */
export const CLONE_NAMESPACE_FLAGS = 0x00020000 /* CLONE_NEWNS */ | 0x02000000 /* CLONE_NEWCGROUP */ |
  0x04000000 /* CLONE_NEWUTS */ | 0x08000000 /* CLONE_NEWIPC */ | 0x10000000 /* CLONE_NEWUSER */ |
  0x20000000 /* CLONE_NEWPID */ | 0x40000000 /* CLONE_NEWNET */;
/** `CLONE_THREAD`: a new thread of this process (clones without it would be new processes). */
export const CLONE_THREAD = 0x00010000;

/** prctl(2) options a running Deno process uses: thread names, naming anonymous mappings, reading NNP. */
export const ALLOWED_PRCTL = {
  PR_GET_DUMPABLE: 3,
  PR_SET_NAME: 15,
  PR_GET_NAME: 16,
  PR_SET_NO_NEW_PRIVS: 38,
  PR_GET_NO_NEW_PRIVS: 39,
  PR_SET_VMA: 0x53564d41,
} as const;

/** `TIOCSTI`: pushes bytes into a terminal's input; refused on every fd. */
export const TIOCSTI = 0x5412;

const allow = (name: SyscallName, reason: string): SyscallRule => ({
  name,
  action: { kind: "allow" },
  reason,
});

/**
 * The profile for a VM process whose own pid is `pid` (signals may only go to its own threads). The hot
 * calls come first: the filter walks the list in order.
 */
export function vmSeccompProfile(pid: number): SeccompProfile {
  return {
    name: "vm",
    defaultErrno: EPERM,
    rules: [
      {
        name: "ioctl",
        action: { kind: "allow-if", tests: [{ arg: 1, op: "not-in", values: [TIOCSTI] }] },
        reason: "KVM_RUN and the other KVM ioctls on its VM/vCPU fds (on PVM also KVM_REINJECT_CONTROL at " +
          "set-up and KVM_GET_VCPU_EVENTS/KVM_SET_VCPU_EVENTS to inject #BP: docs/pvm.md); terminal ioctls on " +
          "its console (not TIOCSTI)",
      },
      allow("futex", "Atomics.wait/notify, worker messages, every lock in V8 and Deno"),
      allow("read", "its fds: console pty, pipes from the daemon, taps, eventfds"),
      allow("write", "its fds: console pty, pipes to the daemon, taps, eventfds"),
      allow("pread64", "disk images it holds open"),
      allow("pwrite64", "disk images it holds open"),
      allow("readv", "its fds"),
      allow("writev", "its fds"),
      allow("preadv", "disk images it holds open"),
      allow("pwritev", "disk images it holds open"),
      allow("preadv2", "disk images it holds open"),
      allow("pwritev2", "disk images it holds open"),
      allow("lseek", "disk images it holds open"),
      allow("fsync", "guest flushes"),
      allow("fdatasync", "guest flushes"),
      allow("ftruncate", "a qcow2 image growing"),
      allow("fallocate", "discard (punching holes) in its images"),
      allow("fstat", "sizes of the files it holds open"),
      allow("newfstatat", "glibc's fstat (empty path, AT_EMPTY_PATH); see the module note on paths"),
      allow("statx", "Rust's File::metadata (empty path, AT_EMPTY_PATH); see the module note on paths"),
      allow("fstatfs", "file-system facts of an fd it holds"),
      allow("fcntl", "fd flags (O_NONBLOCK, FD_CLOEXEC) on its fds"),
      allow("close", "closing its fds"),
      allow("dup", "Deno duplicates fds it wraps"),
      allow("dup3", "Deno duplicates fds it wraps"),
      allow("poll", "console and tap readiness"),
      allow("ppoll", "console and tap readiness"),
      allow("epoll_create1", "Deno's event loop (each worker has one)"),
      allow("epoll_ctl", "Deno's event loop"),
      allow("epoll_wait", "Deno's event loop"),
      allow("epoll_pwait", "Deno's event loop"),
      allow("epoll_pwait2", "Deno's event loop"),
      allow("eventfd2", "Deno's event-loop wake-ups"),
      allow("pipe2", "Deno's internal wake-up pipes (an anonymous pipe reaches nothing new)"),
      allow("recvfrom", "reads on sockets it already holds"),
      allow("recvmsg", "reads on sockets it already holds"),
      allow("sendto", "writes on sockets it already holds"),
      allow("sendmsg", "writes on sockets it already holds"),
      allow("shutdown", "sockets it already holds"),
      allow("getsockopt", "sockets it already holds"),
      allow("mmap", "V8's heap, thread stacks, Deno's allocations"),
      allow("munmap", "V8's heap, thread stacks"),
      allow("mprotect", "V8's code space and guard pages"),
      allow("mremap", "growing allocations"),
      allow("madvise", "V8 and the allocator returning memory"),
      allow("brk", "the allocator"),
      allow("msync", "mapped files it holds"),
      allow("mincore", "V8 probes its own mappings"),
      allow("membarrier", "V8's concurrent code patching"),
      allow("pkey_alloc", "V8 asks for memory protection keys (fails harmlessly where the CPU has none)"),
      allow("pkey_free", "V8's memory protection keys"),
      allow("pkey_mprotect", "V8's memory protection keys"),
      allow("rt_sigaction", "Deno's signal listeners (the SIGUSR2 kick)"),
      allow("rt_sigprocmask", "thread signal masks"),
      allow("rt_sigreturn", "returning from a signal handler"),
      allow("sigaltstack", "thread signal stacks"),
      allow("rt_sigtimedwait", "signal handling threads"),
      {
        name: "tgkill",
        action: { kind: "allow-if", tests: [{ arg: 0, op: "in", values: [pid] }] },
        reason: "the vCPU kick (SIGUSR2 to its own threads only)",
      },
      {
        name: "kill",
        action: { kind: "allow-if", tests: [{ arg: 0, op: "in", values: [pid] }] },
        reason: "signals to itself only (abort)",
      },
      allow("getpid", "kicks, logs"),
      allow("gettid", "kicks (each vCPU's thread id)"),
      allow("getppid", "the daemon's pid"),
      allow("getuid", "identity reads"),
      allow("geteuid", "identity reads"),
      allow("getgid", "identity reads"),
      allow("getegid", "identity reads"),
      allow("getresuid", "identity reads"),
      allow("getresgid", "identity reads"),
      allow("clock_gettime", "time (when the vDSO falls back to the call)"),
      allow("clock_getres", "timer resolution"),
      allow("gettimeofday", "time"),
      allow("clock_nanosleep", "sleeps"),
      allow("nanosleep", "sleeps"),
      allow("timerfd_create", "timers"),
      allow("timerfd_settime", "timers"),
      allow("timerfd_gettime", "timers"),
      allow("getrusage", "V8's CPU time"),
      allow("times", "CPU time"),
      allow("getrandom", "crypto.getRandomValues (virtio-rng), hash seeds"),
      allow("sched_yield", "spin loops"),
      allow("sched_getaffinity", "thread pools size themselves"),
      allow("sched_getparam", "V8's thread priorities"),
      allow("sched_getscheduler", "V8's thread priorities"),
      allow("getpriority", "thread priorities"),
      allow("uname", "V8 and glibc read the kernel version"),
      allow("sysinfo", "memory figures"),
      allow("prlimit64", "reading its own limits (stack size for new threads)"),
      allow("getrlimit", "reading its own limits"),
      {
        name: "clone",
        action: {
          kind: "allow-if",
          tests: [
            { arg: 0, op: "clear", mask: CLONE_NAMESPACE_FLAGS },
            { arg: 0, op: "set", mask: CLONE_THREAD },
          ],
        },
        reason: "new threads (Deno's pools grow lazily); no new processes, no namespaces",
      },
      {
        name: "clone3",
        action: { kind: "errno", errno: ENOSYS },
        reason: "its flags are behind a pointer a filter cannot read: ENOSYS makes glibc fall back to clone",
      },
      allow("set_robust_list", "new threads"),
      allow("get_robust_list", "new threads"),
      allow("rseq", "new threads (glibc registers restartable sequences)"),
      allow("set_tid_address", "new threads"),
      allow("arch_prctl", "thread-local storage of new threads"),
      {
        name: "prctl",
        action: { kind: "allow-if", tests: [{ arg: 0, op: "in", values: Object.values(ALLOWED_PRCTL) }] },
        reason: "thread names, naming V8's mappings, reading no_new_privs; no other option",
      },
      allow(
        "landlock_create_ruleset",
        "a worker confines its own thread (a ruleset can only take rights away)",
      ),
      allow("landlock_restrict_self", "a worker confines its own thread (it can only lose rights)"),
      allow("restart_syscall", "restarting a call a signal interrupted"),
      allow("exit", "a thread ends"),
      allow("exit_group", "the process ends"),
    ],
  };
}

/** Calls the profile must refuse, whatever else changes (the tests check each against the program). */
export const MUST_REFUSE: readonly SyscallName[] = [
  "open",
  "openat",
  "openat2",
  "creat",
  "execve",
  "execveat",
  "socket",
  "socketpair",
  "connect",
  "bind",
  "listen",
  "accept",
  "accept4",
  "ptrace",
  "process_vm_readv",
  "process_vm_writev",
  "mount",
  "umount2",
  "pivot_root",
  "chroot",
  "bpf",
  "perf_event_open",
  "kexec_load",
  "kexec_file_load",
  "init_module",
  "finit_module",
  "delete_module",
  "setuid",
  "setgid",
  "setreuid",
  "setregid",
  "setresuid",
  "setresgid",
  "setfsuid",
  "setfsgid",
  "setgroups",
  "capset",
  "keyctl",
  "add_key",
  "request_key",
  "userfaultfd",
  "unshare",
  "setns",
  "memfd_create",
  "name_to_handle_at",
  "open_by_handle_at",
  "io_uring_setup",
  "io_uring_enter",
  "io_uring_register",
  "personality",
  "open_tree",
  "move_mount",
  "fsopen",
  "fsmount",
  "fspick",
  "mknod",
  "mknodat",
  "vfork",
  "fork",
  "seccomp",
  "landlock_add_rule",
];
