/**
 * Where the control socket is: `VMD_SOCKET` when set (for both vmd and vmctl), else /var/run/vmd.sock.
 *
 * @module
 */

/** The default control socket. */
export const DEFAULT_SOCKET_PATH = "/var/run/vmd.sock";

/** The control socket's path. */
export function socketPath(): string {
  const env = Deno.env.get("VMD_SOCKET");
  return env === undefined || env === "" ? DEFAULT_SOCKET_PATH : env;
}
