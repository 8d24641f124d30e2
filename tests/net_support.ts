/**
 * Test support for networking: a network namespace made by the test (and removed after it), and commands
 * run in it. All traffic stays inside the namespace.
 *
 * @module
 */

/** Runs a command; throws with its stderr when it fails. */
export async function sh(cmd: string, ...args: string[]): Promise<string> {
  const r = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  if (!r.success) throw new Error(`${cmd} ${args.join(" ")}: ${dec.decode(r.stderr)}${dec.decode(r.stdout)}`);
  return dec.decode(r.stdout);
}

/** A network namespace that exists for the duration of `body`. */
export async function withNetns<T>(body: (ns: string) => Promise<T>): Promise<T> {
  const ns = `vmdt${Deno.pid}-${Math.floor(Math.random() * 1e6)}`;
  await sh("ip", "netns", "add", ns);
  try {
    await sh("ip", "-n", ns, "link", "set", "lo", "up");
    return await body(ns);
  } finally {
    await sh("ip", "netns", "del", ns).catch(() => {});
  }
}

/** Moves `tap` into `ns`, gives it `address/31` and brings it up. */
export async function configureInNetns(ns: string, tap: string, address: string): Promise<void> {
  await sh("ip", "link", "set", tap, "netns", ns);
  await sh("ip", "-n", ns, "addr", "add", `${address}/31`, "dev", tap);
  await sh("ip", "-n", ns, "link", "set", tap, "up");
}

/** Pings `address` `count` times from `ns`; returns how many replies came back. */
export async function pingFrom(ns: string, address: string, count: number): Promise<number> {
  const r = await new Deno.Command("ip", {
    args: ["netns", "exec", ns, "ping", "-n", "-c", String(count), "-i", "0.3", "-W", "10", address],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(r.stdout);
  return Number(/(\d+) received/.exec(out)?.[1] ?? 0);
}

/** Whether a link named `name` exists in `ns` (or in this namespace). */
export async function linkExists(name: string, ns?: string): Promise<boolean> {
  const args = ns === undefined ? ["link", "show", name] : ["-n", ns, "link", "show", name];
  return (await new Deno.Command("ip", { args, stdout: "null", stderr: "null" }).output()).success;
}

/** Frames the host side of `tap` in `ns` has received (what the device wrote to the tap). */
export async function tapRxPackets(ns: string, tap: string): Promise<number> {
  const j = JSON.parse(await sh("ip", "-n", ns, "-s", "-j", "link", "show", tap)) as {
    stats64: { rx: { packets: number } };
  }[];
  return j[0].stats64.rx.packets;
}
