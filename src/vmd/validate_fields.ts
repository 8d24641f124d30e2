/**
 * Small checks for validating JSON messages field by field: every message crossing a process boundary is
 * checked against exactly the fields its type allows, and anything else is refused with a reason.
 *
 * @module
 */

/** A message that failed validation; the message names the field. */
export class MessageError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "MessageError";
  }
}

/** `value` as a plain object whose keys are all in `allowed`; throws {@link MessageError}. */
export function record(value: unknown, allowed: readonly string[], what: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new MessageError(`${what} must be a JSON object`);
  }
  const obj = value as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) throw new MessageError(`${what}: unexpected field "${key}"`);
  }
  return obj;
}

/** A string field of at most `max` characters. */
export function str(obj: Record<string, unknown>, key: string, max = 4096): string {
  const v = obj[key];
  if (typeof v !== "string") throw new MessageError(`field "${key}" must be a string`);
  if (v.length > max) throw new MessageError(`field "${key}" is longer than ${max} characters`);
  return v;
}

/** A string field or null. */
export function strOrNull(obj: Record<string, unknown>, key: string, max = 4096): string | null {
  return obj[key] === null ? null : str(obj, key, max);
}

/** A boolean field. */
export function bool(obj: Record<string, unknown>, key: string): boolean {
  const v = obj[key];
  if (typeof v !== "boolean") throw new MessageError(`field "${key}" must be true or false`);
  return v;
}

/** An integer field in [min, max]. */
export function int(obj: Record<string, unknown>, key: string, min: number, max: number): number {
  const v = obj[key];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new MessageError(`field "${key}" must be an integer from ${min} to ${max}`);
  }
  return v;
}

/** An integer field in [min, max], or null. */
export function intOrNull(
  obj: Record<string, unknown>,
  key: string,
  min: number,
  max: number,
): number | null {
  return obj[key] === null ? null : int(obj, key, min, max);
}

/** A field that must be one of `options`. */
export function oneOf<T extends string>(obj: Record<string, unknown>, key: string, options: readonly T[]): T {
  const v = obj[key];
  if (typeof v !== "string" || !(options as readonly string[]).includes(v)) {
    throw new MessageError(`field "${key}" must be one of ${options.join(", ")}`);
  }
  return v as T;
}
