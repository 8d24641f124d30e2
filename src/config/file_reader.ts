/**
 * The real file reader for the configuration parser (the parser itself never touches the file system).
 *
 * @module
 */
import type { ConfigReader, ReadResult } from "./parser.ts";

/** Reads configuration files from disk, synchronously, turning failures into a reason. */
export const fileReader: ConfigReader = (path: string): ReadResult => {
  try {
    return { ok: true, text: Deno.readTextFileSync(path) };
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { ok: false, reason: "no such file" };
    if (e instanceof Deno.errors.PermissionDenied) return { ok: false, reason: "permission denied" };
    if (e instanceof Deno.errors.IsADirectory) return { ok: false, reason: "is a directory" };
    return { ok: false, reason: e instanceof Error ? e.message : String(e) };
  }
};

/** A reader over an in-memory map of path to text, for tests and embedders. */
export function mapReader(files: Readonly<Record<string, string>>): ConfigReader {
  return (path) => {
    const text = files[path];
    return text === undefined ? { ok: false, reason: "no such file" } : { ok: true, text };
  };
}
