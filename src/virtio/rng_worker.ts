/**
 * The virtio-rng worker's entry module. It has no permission at all: guest memory and the transport state
 * arrive as SharedArrayBuffers, randomness comes from `crypto.getRandomValues`.
 *
 * @module
 */
import { serveDeviceWorker } from "./device_worker_main.ts";
import { RngBackend } from "./rng.ts";

serveDeviceWorker(() => Promise.resolve(new RngBackend()));
