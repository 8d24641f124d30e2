/**
 * Helpers for the configuration tests: the fixture directory and a reader rooted in it, so diagnostics show
 * short, exact paths such as `broken/bad_size.conf:2:9`.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import type { ConfigReader } from "../src/config/parser.ts";
import { checkConfig, type CheckResult } from "../src/config/load.ts";

/** The absolute path of tests/fixtures/config. */
export const FIXTURES: string = fileURLToPath(new URL("./fixtures/config", import.meta.url));

/** Reads paths relative to the fixture directory. */
export const fixtureReader: ConfigReader = (path) => {
  try {
    return { ok: true, text: Deno.readTextFileSync(`${FIXTURES}/${path}`) };
  } catch {
    return { ok: false, reason: "no such file" };
  }
};

/** Checks fixture `name` (e.g. `valid/manpage.conf`). */
export function checkFixture(name: string, defines: Record<string, string> = {}): CheckResult {
  return checkConfig(name, Deno.readTextFileSync(`${FIXTURES}/${name}`), { reader: fixtureReader, defines });
}
