/**
 * The one error type of the configuration module: thrown by `loadConfig` when a configuration has errors. It
 * carries every diagnostic of the run, not just the first.
 *
 * @module
 */
import { type Diagnostic, formatDiagnostic } from "./diagnostic.ts";

/** A configuration that cannot be used. `diagnostics` holds every error and warning found in the run. */
export class ConfigError extends Error {
  /** All diagnostics of the run, errors and warnings, in the order they were found. */
  readonly diagnostics: readonly Diagnostic[];

  /** Builds the error from the run's diagnostics; the message lists every one, one per line. */
  constructor(diagnostics: readonly Diagnostic[]) {
    const errors = diagnostics.filter((d) => d.severity === "error").length;
    super(
      `configuration has ${errors} error${errors === 1 ? "" : "s"}:\n` +
        diagnostics.map(formatDiagnostic).join("\n"),
    );
    this.name = "ConfigError";
    this.diagnostics = diagnostics;
  }
}
