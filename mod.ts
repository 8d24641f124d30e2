/**
 * vmd: a virtual machine monitor for Linux/KVM, modelled on OpenBSD's vmd(8).
 *
 * This module re-exports the library API only; it has no side effects.
 *
 * @module
 */

export { ConfigError } from "./src/config/config_error.ts";
export { type Diagnostic, formatDiagnostic, type Pos, type Severity } from "./src/config/diagnostic.ts";
export { fileReader, mapReader } from "./src/config/file_reader.ts";
export {
  checkConfig,
  checkConfigFile,
  type CheckOptions,
  type CheckResult,
  loadConfig,
  parseDefine,
} from "./src/config/load.ts";
export type { ConfigReader, ReadResult } from "./src/config/parser.ts";
export { printConfig } from "./src/config/printer.ts";
export { runConfigCheck } from "./src/config/check_command.ts";
export {
  DEFAULT_CONFIG_PATH,
  MAX_BACKING_IMAGES,
  MAX_DISKS_PER_VM,
  MAX_NICS_PER_VM,
} from "./src/config/limits.ts";
export type * from "./src/config/types.ts";
