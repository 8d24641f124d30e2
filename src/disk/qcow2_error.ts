/**
 * The error class of the qcow2 backend.
 *
 * @module
 */
import { DiskError } from "./disk.ts";

/** A qcow2 image is malformed, uses a feature we refuse, or a request on it cannot be served. */
export class Qcow2Error extends DiskError {
  /** `message` says what is wrong with the image at `path` and what to do about it. */
  constructor(path: string, message: string, options?: ErrorOptions) {
    super(path, message, options);
    this.name = "Qcow2Error";
  }
}
