/**
 * virtio-net benchmark: the `virtio_net` kit guest sends a batch of 1514-byte frames (UDP, 1472-byte
 * payload, a full ring per notify) through its tap to a UDP socket on the host side, under vmd (`-L` local
 * interface, address by DHCP) and under QEMU's virtio-net-pci on a tap (no vhost; address on the cmdline),
 * same guest, same run. The guest times its send loop with the TSC (the host converts with the TSC rate);
 * the frames that reached the host side are counted on the tap (`rx_packets`), and the host UDP socket's
 * count is shown too (it drops when JavaScript cannot keep up, so it is not the rate). Prints frames/s and
 * Mbit/s of frames delivered to the tap, and the ratios vmd/QEMU. Runs itself inside a network namespace it
 * makes and removes.
 *
 * Only the guest → host direction is measured: the kit guest has no clock to time what it receives.
 *
 * Usage: deno run -A bench/net.ts [frames]
 *
 * @module
 */
import dgram from "node:dgram";
import { buildKitGuest } from "../examples/guests/kit/build.ts";
import { bringUpLocal } from "../src/net/host_link.ts";
import { localAddresses } from "../src/net/local_prefix.ts";
import { runKernel } from "../tests/kvm_support.ts";
import { QEMU, qemuArgs } from "../tests/qemu_support.ts";
import { sh } from "../tests/net_support.ts";

const FRAMES = Number(Deno.args[0] ?? 20000);
const MAC = Uint8Array.from([0xfe, 0xe1, 0xbb, 0xd1, 0, 1]);

interface Rate {
  /** Datagrams the host socket read. */
  socket: number;
  /** Frames the tap's host side received. */
  frames: number;
  fps: number;
  mbps: number;
}

/** TSC ticks per second (the guest's TSC runs at the host's rate). */
function tscHz(): number {
  const m = /cpu MHz\s*:\s*([\d.]+)/.exec(Deno.readTextFileSync("/proc/cpuinfo"));
  if (m === null) throw new Error("cannot find the CPU frequency in /proc/cpuinfo");
  return Number(m[1]) * 1e6;
}

function rxPackets(tap: string): number {
  return Number(Deno.readTextFileSync(`/sys/class/net/${tap}/statistics/rx_packets`));
}

/** The rate from the guest's line, the tap's counter delta and the socket's count. */
function rate(output: string, who: string, frames: number, socket: number): Rate {
  const m = /bench sent (\d+) in (\d+) cycles/.exec(output);
  if (m === null || Number(m[1]) !== FRAMES) throw new Error(`${who}: unexpected guest output: ${output}`);
  const secs = Number(m[2]) / tscHz();
  return { socket, frames, fps: frames / secs, mbps: (frames * 1514 * 8) / secs / 1e6 };
}

/** Counts datagrams arriving at host:5555 until `done` resolves (plus a short drain). */
async function receive(host: string, done: () => Promise<void>): Promise<number> {
  const sock = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => sock.bind(5555, host, resolve));
  let n = 0;
  sock.on("message", () => n++);
  await done();
  await new Promise((r) => setTimeout(r, 300));
  sock.close();
  return n;
}

async function vmd(path: string): Promise<Rate> {
  const tap = "vm1-if0";
  const link = localAddresses(1, 0);
  let socket: Promise<number> | undefined;
  let before = 0;
  let after = 0;
  let finish!: () => void;
  const finished = new Promise<void>((r) => finish = r);
  const run = await runKernel(path, {
    cmdline: `bench=${FRAMES}`,
    nics: [{ tap, mac: MAC, local: link }],
    timeoutMs: 300_000,
    beforeRun: async () => {
      await bringUpLocal(tap, link.host);
      before = rxPackets(tap);
      socket = receive(link.host, () => finished);
    },
    onOutput: (out) => {
      if (out.includes("bench sent")) finish();
    },
    afterRun: () => {
      after = rxPackets(tap);
      return Promise.resolve();
    },
  });
  finish();
  return rate(run.output, "vmd", after - before, await socket!);
}

async function qemu(path: string): Promise<Rate> {
  const tap = "qemu-if0";
  const link = localAddresses(1, 1);
  await sh("ip", "tuntap", "add", "dev", tap, "mode", "tap");
  try {
    await bringUpLocal(tap, link.host);
    const args = await qemuArgs(path, {
      append: `ip=${link.guest} gw=${link.host} bench=${FRAMES}`,
      extraArgs: [
        "-netdev",
        `tap,id=n0,ifname=${tap},script=no,downscript=no`,
        "-device",
        "virtio-net-pci,netdev=n0,disable-legacy=on,mac=fe:e1:bb:d1:00:01",
      ],
    });
    let out = "";
    const before = rxPackets(tap);
    const socket = await receive(link.host, async () => {
      const child = new Deno.Command(QEMU, { args, stdin: "null", stdout: "piped", stderr: "null" }).spawn();
      const timer = setTimeout(() => child.kill("SIGKILL"), 300_000);
      for await (const c of child.stdout) out += new TextDecoder().decode(c);
      await child.status;
      clearTimeout(timer);
    });
    return rate(out, "qemu", rxPackets(tap) - before, socket);
  } finally {
    await sh("ip", "link", "del", tap).catch(() => {});
  }
}

async function main(): Promise<void> {
  const guest = await buildKitGuest("virtio_net");
  const ours = await vmd(guest.path);
  const theirs = await qemu(guest.path);
  const line = (who: string, r: Rate) =>
    `${who.padEnd(6)} ${String(r.frames).padStart(7)} at the tap (${r.socket} read by the socket)  ` +
    `${r.fps.toFixed(0).padStart(8)} frames/s  ${r.mbps.toFixed(1).padStart(8)} Mbit/s`;
  console.log(`guest → host, ${FRAMES} frames of 1514 bytes sent:`);
  console.log(line("vmd", ours));
  console.log(line("qemu", theirs));
  console.log(
    `ratio vmd/qemu: frames/s ${(ours.fps / theirs.fps).toFixed(2)}×, Mbit/s ` +
      `${(ours.mbps / theirs.mbps).toFixed(2)}×`,
  );
}

if (import.meta.main) {
  if (Deno.env.get("VMD_BENCH_NETNS") !== undefined) await main();
  else {
    const ns = `vmdbench${Deno.pid}`;
    await sh("ip", "netns", "add", ns);
    try {
      await sh("ip", "-n", ns, "link", "set", "lo", "up");
      const r = await new Deno.Command("ip", {
        args: [
          "netns",
          "exec",
          ns,
          Deno.execPath(),
          "run",
          "-A",
          new URL(import.meta.url).pathname,
          ...Deno.args,
        ],
        env: { VMD_BENCH_NETNS: ns },
        stdin: "null",
        stdout: "inherit",
        stderr: "inherit",
      }).output();
      Deno.exitCode = r.code;
    } finally {
      await sh("ip", "netns", "del", ns);
    }
  }
}
