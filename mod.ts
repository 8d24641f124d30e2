/**
 * vmd: a virtual machine monitor for Linux/KVM, modelled on OpenBSD's vmd(8).
 *
 * This module re-exports the library API only; it has no side effects.
 *
 * @module
 */

export type { BlockStatus, Disk, DiskFormat } from "./src/disk/disk.ts";
export { DiskError } from "./src/disk/disk.ts";
export { RawDisk } from "./src/disk/raw.ts";
export { Qcow2Disk } from "./src/disk/qcow2.ts";
export { Qcow2Error } from "./src/disk/qcow2_error.ts";
export { createQcow2 } from "./src/disk/qcow2_create.ts";
export type { CreateQcow2Options } from "./src/disk/qcow2_create.ts";
export { copyDisk } from "./src/disk/convert.ts";
export type { ProgressCallback } from "./src/disk/convert.ts";
export { createImage } from "./src/disk/create.ts";
export type { CreateImageOptions } from "./src/disk/create.ts";
export { detectFormat, MAX_BACKING_DEPTH, openDisk, parseDiskSpec } from "./src/disk/open.ts";
export type { DiskSpec, OpenDiskOptions } from "./src/disk/open.ts";
