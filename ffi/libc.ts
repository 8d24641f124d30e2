/**
 * The libc symbol table: every C function vmd calls, with its C prototype beside it, opened once per thread
 * (the main thread and each worker that holds ffi permission open their own handle).
 *
 * Deno's ffi permission matches the literal path string, so libc's path is resolved once in the main thread
 * ({@link resolveLibcPath}) and the same string is passed to every worker and to its permission grant.
 *
 * @module
 */

/** Where glibc lives on the distributions we support, most likely first. */
export const LIBC_CANDIDATES: readonly string[] = [
  "/lib/x86_64-linux-gnu/libc.so.6",
  "/usr/lib/x86_64-linux-gnu/libc.so.6",
  "/lib64/libc.so.6",
  "/usr/lib64/libc.so.6",
  "/lib/aarch64-linux-gnu/libc.so.6",
];

/** The libc functions vmd uses. Variadic functions get one entry per argument shape (`name` aliases). */
export const LIBC_SYMBOLS = {
  // int open(const char *pathname, int flags, mode_t mode);
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  // int close(int fd);
  close: { parameters: ["i32"], result: "i32" },
  // int ioctl(int fd, unsigned long request, unsigned long arg);
  ioctl: { parameters: ["i32", "u64", "u64"], result: "i32" },
  // int ioctl(int fd, unsigned long request, void *argp);
  ioctl_ptr: { name: "ioctl", parameters: ["i32", "u64", "buffer"], result: "i32" },
  // int ioctl(int fd, unsigned long request, void *argp);  — on one of Deno's blocking threads (the call
  // returns a promise), for ioctls that sleep in the kernel; errno is that thread's, so not read after it
  ioctl_ptr_blocking: {
    name: "ioctl",
    parameters: ["i32", "u64", "buffer"],
    result: "i32",
    nonblocking: true,
  },
  // void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset);
  // (addresses travel as integers: a worker whose ffi grant is scoped to libc may call libc but may not
  // build or read Deno pointer objects)
  mmap: { parameters: ["usize", "usize", "i32", "i32", "i32", "i64"], result: "usize" },
  // int madvise(void *addr, size_t length, int advice);
  madvise: { parameters: ["usize", "usize", "i32"], result: "i32" },
  // int munmap(void *addr, size_t length);
  munmap: { parameters: ["usize", "usize"], result: "i32" },
  // void *memcpy(void *dest, const void *src, size_t n);  — copy from a raw address into a JS buffer
  memcpy_from: { name: "memcpy", parameters: ["buffer", "usize", "usize"], result: "usize" },
  // void *memcpy(void *dest, const void *src, size_t n);  — copy from a JS buffer to a raw address
  memcpy_to: { name: "memcpy", parameters: ["usize", "buffer", "usize"], result: "usize" },
  // int eventfd(unsigned int initval, int flags);
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  // ssize_t read(int fd, void *buf, size_t count);
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  // ssize_t write(int fd, const void *buf, size_t count);
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  // pid_t getpid(void);
  getpid: { parameters: [], result: "i32" },
  // pid_t gettid(void);
  gettid: { parameters: [], result: "i32" },
  // int tgkill(pid_t tgid, pid_t tid, int sig);
  tgkill: { parameters: ["i32", "i32", "i32"], result: "i32" },
  // long syscall(long number, long a1, long a2, long a3, long a4, long a5);
  syscall: { parameters: ["i64", "i64", "i64", "i64", "i64", "i64"], result: "i64" },
  // int prctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4, unsigned long arg5);
  prctl: { parameters: ["i32", "u64", "u64", "u64", "u64"], result: "i32" },
  // int setgroups(size_t size, const gid_t *list);  (glibc applies it to every thread of the process)
  setgroups: { parameters: ["usize", "usize"], result: "i32" },
  // int setresgid(gid_t rgid, gid_t egid, gid_t sgid);  (glibc applies it to every thread)
  setresgid: { parameters: ["u32", "u32", "u32"], result: "i32" },
  // int setresuid(uid_t ruid, uid_t euid, uid_t suid);  (glibc applies it to every thread)
  setresuid: { parameters: ["u32", "u32", "u32"], result: "i32" },
  // uid_t getuid(void);
  getuid: { parameters: [], result: "u32" },
  // uid_t geteuid(void);
  geteuid: { parameters: [], result: "u32" },
  // gid_t getgid(void);
  getgid: { parameters: [], result: "u32" },
  // int socketpair(int domain, int type, int protocol, int sv[2]);
  socketpair: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  // ssize_t sendmsg(int sockfd, const struct msghdr *msg, int flags);
  sendmsg: { parameters: ["i32", "buffer", "i32"], result: "isize" },
  // ssize_t recvmsg(int sockfd, struct msghdr *msg, int flags);
  recvmsg: { parameters: ["i32", "buffer", "i32"], result: "isize" },
  // int *__errno_location(void);
  __errno_location: { parameters: [], result: "usize" },
  // int strerror_r(int errnum, char *buf, size_t buflen);  (the XSI version glibc exports as __xpg_strerror_r)
  strerror_r: { name: "__xpg_strerror_r", parameters: ["i32", "buffer", "usize"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The opened libc: its typed symbols. */
export type Libc = Deno.DynamicLibrary<typeof LIBC_SYMBOLS>["symbols"];

let opened: { path: string; lib: Deno.DynamicLibrary<typeof LIBC_SYMBOLS> } | undefined;

/**
 * Finds libc's path among {@link LIBC_CANDIDATES}. Needs read permission on the candidates; workers never call
 * this, they receive the path.
 */
export function resolveLibcPath(): string {
  for (const path of LIBC_CANDIDATES) {
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch {
      // not this one
    }
  }
  throw new Error(`libc not found; looked in ${LIBC_CANDIDATES.join(", ")}`);
}

/**
 * Opens libc at `path` for this thread (once; later calls return the same handle). Needs
 * `--allow-ffi=<path>` (or wider).
 */
export function openLibc(path: string = resolveLibcPath()): Libc {
  if (opened === undefined) {
    opened = { path, lib: Deno.dlopen(path, LIBC_SYMBOLS) };
  } else if (opened.path !== path) {
    throw new Error(`libc already opened from ${opened.path}, not ${path}`);
  }
  return opened.lib.symbols;
}

/** The path libc was opened from in this thread, if it was. */
export function openedLibcPath(): string | undefined {
  return opened?.path;
}
