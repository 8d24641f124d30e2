/**
 * `vmctl console id`: attaches the terminal to a VM's serial console (its pty) until `~.` at the start of a
 * line, as cu(1) does. On a terminal, stdin is put in raw mode meanwhile. Detaching leaves the VM running;
 * the session also ends when the VM stops or stdin ends.
 *
 * @module
 */

const TILDE = 0x7e;
const DOT = 0x2e;

/** Copies between stdin/stdout and the pty at `tty`; resolves to the exit status. */
export async function attachConsole(tty: string): Promise<number> {
  // Two handles: Deno serialises operations on one file, so a pending read would hold back every write.
  let reader: Deno.FsFile;
  let file: Deno.FsFile;
  try {
    // opened synchronously: a tty opens at once, and a round trip through Deno's thread pool per file is
    // time `vmctl start -c` spends before the first byte
    reader = Deno.openSync(tty, { read: true });
    file = Deno.openSync(tty, { write: true });
  } catch (e) {
    console.error(`vmctl: cannot open ${tty}: ${(e as Error).message}`);
    return 1;
  }
  const raw = Deno.stdin.isTerminal();
  if (raw) Deno.stdin.setRaw(true);
  console.error(`Connected to ${tty}; type ~. at the start of a line to detach.`);
  let done = false;
  const output = (async () => {
    const buf = new Uint8Array(4096);
    while (!done) {
      let n: number | null;
      try {
        n = await reader.read(buf);
      } catch {
        n = null;
      }
      if (n === null || n === 0) return "[EOT]";
      await Deno.stdout.write(buf.subarray(0, n));
    }
    return "";
  })();
  const input = (async () => {
    const buf = new Uint8Array(1024);
    let lineStart = true;
    let tilde = false;
    for (;;) {
      const n = await Deno.stdin.read(buf);
      if (n === null) return "";
      const out: number[] = [];
      for (const b of buf.subarray(0, n)) {
        if (tilde) {
          tilde = false;
          if (b === DOT) {
            if (out.length > 0) await file.write(new Uint8Array(out));
            return "[detached]";
          }
          out.push(TILDE);
        } else if (lineStart && b === TILDE) {
          tilde = true;
          continue;
        }
        lineStart = b === 0x0d || b === 0x0a;
        out.push(b);
      }
      if (out.length > 0) await file.write(new Uint8Array(out));
    }
  })();
  const why = await Promise.race([output, input]);
  done = true;
  if (raw) Deno.stdin.setRaw(false);
  if (why !== "") console.error(`\r\n${why}`);
  return 0;
}
