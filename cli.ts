/**
 * The one entry point: `vmd ...` (the daemon and its utility commands) and `vmctl ...` (the client), chosen
 * by the first argument or by the name the program was installed under.
 *
 * @module
 */
import { main } from "./src/cli/main.ts";

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
