/**
 * `vmd run` as one bundle (`build/bundles/run.js`, see src/build/bundles.ts): vmd_main.ts imports it instead
 * of run.ts while the bundles are fresh.
 *
 * @module
 */
export { runMain } from "./run.ts";
