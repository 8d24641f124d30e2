/**
 * POSIX path arithmetic on strings, for include files and relative image paths. No file system access.
 *
 * @module
 */

/** The directory part of `path` (`.` when there is none, `/` for top-level files). */
export function dirname(path: string): string {
  const i = path.lastIndexOf("/");
  if (i === -1) return ".";
  if (i === 0) return "/";
  return path.slice(0, i);
}

/** Removes `.` and empty components and folds `..` where possible; keeps a leading `/`. */
export function normalize(path: string): string {
  const absolute = path.startsWith("/");
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === ".." && out.length > 0 && out[out.length - 1] !== "..") out.pop();
    else if (part === ".." && absolute) continue;
    else out.push(part);
  }
  const joined = out.join("/");
  return absolute ? `/${joined}` : joined === "" ? "." : joined;
}

/** Resolves `path` against the directory `base` unless it is absolute, then normalises it. */
export function resolveFrom(base: string, path: string): string {
  return normalize(path.startsWith("/") ? path : `${base}/${path}`);
}
