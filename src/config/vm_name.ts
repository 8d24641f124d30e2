/**
 * The rule for VM names, shared by the configuration, the daemon and vmctl; in a module of its own so that
 * vmctl checks a name without loading the configuration code (start-up time).
 *
 * @module
 */
import { MAX_VM_NAME_LENGTH } from "./limits.ts";

/**
 * Why `name` is not a valid VM name, or null when it is. The rule of vm.conf(5) and vmd: 1 to 63 characters,
 * letters, digits, `.`, `-`, `_`, starting with a letter or digit; and, because vmctl reads a number as a VM
 * id, not digits only. The daemon and vmctl check the names they are given with this same function.
 */
export function vmNameProblem(n: string): string | null {
  if (n.length > MAX_VM_NAME_LENGTH) {
    return `vm name ${JSON.stringify(n)} is too long (${n.length} characters; at most ${MAX_VM_NAME_LENGTH})`;
  }
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(n)) {
    return `invalid vm name ${JSON.stringify(n)}: use letters, digits, '.', '-' and '_', starting with a ` +
      `letter or digit`;
  }
  if (/^[0-9]+$/.test(n)) {
    return `invalid vm name "${n}": a name of digits only would read as a vm id; add a letter`;
  }
  return null;
}
