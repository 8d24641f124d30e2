/**
 * The libc calls a confinement probe makes, with the power the real code has: a thread that holds libc can
 * call these whatever its Deno flags say, so a probe must try them. Bound only when a probe runs (the real
 * workers never use them otherwise), from the same libc path string as the thread's own grant.
 *
 * @module
 */
import { errno } from "./errno.ts";
import { cString } from "./fd.ts";
import { type Libc, openLibc } from "./libc.ts";

const PROBE_SYMBOLS = {
  // int execve(const char *path, char *const argv[], char *const envp[]);
  execve: { parameters: ["buffer", "usize", "usize"], result: "i32" },
  // int system(const char *command);
  system: { parameters: ["buffer"], result: "i32" },
  // int socket(int domain, int type, int protocol);
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  // void *dlopen(const char *filename, int flags);  (the handle travels as an integer)
  dlopen: { parameters: ["buffer", "i32"], result: "usize" },
  // char *dlerror(void);
  dlerror: { parameters: [], result: "usize" },
  // size_t strlen(const char *s);
  strlen: { parameters: ["usize"], result: "usize" },
} as const satisfies Deno.ForeignLibraryInterface;

/** A libc call's outcome: it succeeded, or failed with this errno (or dlopen's message). */
export type CallOutcome = { readonly ok: true; readonly detail: string } | {
  readonly ok: false;
  readonly errno: number;
  readonly message?: string;
};

/** The probe's libc calls, bound for this thread. */
export class ProbeLibc {
  readonly #libc: Libc;
  readonly #x: Deno.DynamicLibrary<typeof PROBE_SYMBOLS>["symbols"];

  /** Binds the calls from `libcPath` (the same string as the thread's grant). */
  constructor(libcPath: string) {
    this.#libc = openLibc(libcPath);
    this.#x = Deno.dlopen(libcPath, PROBE_SYMBOLS).symbols;
  }

  /** open(path, O_RDONLY); closes what it opened. */
  open(path: string): CallOutcome {
    const fd = this.#libc.open(cString(path), 0, 0);
    if (fd < 0) return { ok: false, errno: errno(this.#libc) };
    this.#libc.close(fd);
    return { ok: true, detail: `fd ${fd}` };
  }

  /** socket(domain, SOCK_STREAM, 0); closes what it made. */
  socket(domain: number): CallOutcome {
    const fd = this.#x.socket(domain, 1, 0);
    if (fd < 0) return { ok: false, errno: errno(this.#libc) };
    this.#libc.close(fd);
    return { ok: true, detail: `fd ${fd}` };
  }

  /** execve of a path that does not exist: unconfined it fails with ENOENT, and can never replace us. */
  execveMissing(): CallOutcome {
    this.#x.execve(cString("/nonexistent/vmd-probe"), 0n, 0n);
    const code = errno(this.#libc);
    return code === 2
      ? { ok: true, detail: "ENOENT: the kernel looked for the program" }
      : { ok: false, errno: code };
  }

  /** system("exit 7"): a shell, if one can be started. */
  system(): CallOutcome {
    const status = this.#x.system(cString("exit 7"));
    if (status === 7 << 8) return { ok: true, detail: "the shell ran" };
    return { ok: false, errno: errno(this.#libc), message: `status ${status}` };
  }

  /** libc's own dlopen of another library. */
  dlopen(path: string): CallOutcome {
    const handle = this.#x.dlopen(cString(path), 2 /* RTLD_NOW */);
    if (handle !== 0n) return { ok: true, detail: "loaded" };
    const code = errno(this.#libc);
    const msg = BigInt(this.#x.dlerror());
    if (msg === 0n) return { ok: false, errno: code };
    const text = new Uint8Array(Number(this.#x.strlen(msg)));
    // Safe: dlerror's string is NUL-terminated and lives until the next dl* call in this thread.
    this.#libc.memcpy_from(text, msg, BigInt(text.length));
    return { ok: false, errno: code, message: new TextDecoder().decode(text) };
  }
}
