/**
 * The VM process's entry module when it runs from its bundle (`build/bundles/vm-process.js`, see
 * src/build/bundles.ts); from the sources it is `cli.ts vm-process <fd>`. Arguments: the descriptor channel.
 *
 * @module
 */
import { vmProcessMain } from "./vm_process.ts";

if (import.meta.main) Deno.exit(await vmProcessMain(Deno.args));
