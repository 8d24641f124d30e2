/**
 * `vmd run` with NICs, run inside a network namespace made by the test: `-L` (a local interface the guest
 * leases its address on) and `-n switch` (a Linux bridge), each pinged from the host side; nothing is left
 * behind when the VM ends.
 *
 * @module
 */
import assert from "node:assert/strict";
import { buildKitGuest } from "../examples/guests/kit/build.ts";
import { parseRunArgs, RunUsageError } from "../src/cli/run.ts";
import { kvmTest } from "./kvm_support.ts";
import { linkExists, pingFrom, sh, withNetns } from "./net_support.ts";

const root = new URL("..", import.meta.url).pathname;

/**
 * Runs `vmd run args` in `ns`; once the guest serves, awaits `serving()` (if given), then pings `address`;
 * returns status, output and pings.
 */
async function runInNetns(ns: string, address: string, args: string[], serving?: () => Promise<unknown>) {
  const child = new Deno.Command("ip", {
    args: ["netns", "exec", ns, Deno.execPath(), "run", "-A", "cli.ts", "run", ...args],
    cwd: root,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  const stderr = new Response(child.stderr).text();
  const dec = new TextDecoder();
  let output = "";
  let ping: Promise<number> | undefined;
  for await (const chunk of child.stdout) {
    output += dec.decode(chunk, { stream: true });
    if (ping === undefined && output.includes("virtio_net: serving")) {
      ping = (serving?.() ?? Promise.resolve()).then(() =>
        pingFrom(ns, address, args.includes("pings=1") ? 1 : 2)
      );
    }
  }
  const status = await child.status;
  clearTimeout(timer);
  return { code: status.code, output, stderr: await stderr, pings: await ping };
}

Deno.test("vmd run: NIC flags are checked (counts, switch names, lladdr) before anything runs", () => {
  const nics = parseRunArgs(["-b", "k", "-L", "-n", "sw0", "-i", "3", "--id", "5"]).nics;
  assert.deepEqual(nics.map((n) => n.tap), ["vm5-if0", "vm5-if1", "vm5-if2"]);
  assert.deepEqual(nics[0].local, { host: "100.64.5.2", guest: "100.64.5.3", prefixLength: 31 });
  assert.equal(nics[1].switch, "sw0");
  assert.deepEqual([...nics[2].mac.subarray(0, 4)], [0xfe, 0xe1, 0xbb, 0xd3]);
  const one = parseRunArgs(["-b", "k", "-L", "--lladdr", "fe:e1:bb:d1:00:07", "--locked-lladdr"]).nics;
  assert.deepEqual([...one[0].mac], [0xfe, 0xe1, 0xbb, 0xd1, 0, 7]);
  assert.equal(one[0].lockedLladdr, true);
  for (
    const bad of [
      ["-i", "5"],
      ["-n", "-bad"],
      ["-n", "a/b"],
      ["-L", "-i", "0"],
      ["-L", "--lladdr", "01:00:00:00:00:01"],
      ["-L", "--lladdr", "zz"],
      ["--locked-lladdr"],
      ["-L", "--id", "0"],
      ["-L", "--local-prefix", "10.0.0.0/24", "--id", "9"],
    ]
  ) {
    assert.throws(() => parseRunArgs(["-b", "k", ...bad]), RunUsageError, bad.join(" "));
  }
});

kvmTest(
  "vmd run -L --local-inet6: the guest leases 100.64.7.3 on vm7-if0 and answers ping; the host side has its " +
    "IPv6 address; the tap is gone after",
  async () => {
    const guest = await buildKitGuest("virtio_net");
    await withNetns(async (ns) => {
      let inet6 = "";
      const r = await runInNetns(ns, "100.64.7.3", [
        "-b",
        guest.path,
        "-L",
        "--local-inet6",
        "fd00:1:2:3::/64",
        "--id",
        "7",
        "--cmdline",
        "pings=2",
      ], async () => inet6 = await sh("ip", "-n", ns, "-6", "-o", "addr", "show", "dev", "vm7-if0"));
      assert.match(inet6, /inet6 fd00:1:2:3:6440:703:0:1\/96 scope global/, inet6);
      assert.equal(r.code, 0x26, r.output + r.stderr);
      assert.equal(r.pings, 2, r.output);
      assert.match(r.output, /virtio_net: lease 100\.64\.7\.3 router 100\.64\.7\.2/);
      assert.match(
        r.stderr,
        /vm7-if0: lladdr fe:e1:bb:d1:[0-9a-f:]{5}, local 100\.64\.7\.2\/31, guest 100\.64\.7\.3/,
      );
      assert.equal(await linkExists("vm7-if0", ns), false);
    });
  },
);

kvmTest(
  "vmd run -n: a locked guest that also sends spoofed and malformed frames is reached through a Linux bridge; " +
    "a bridge vmd created is removed after",
  async () => {
    const guest = await buildKitGuest("virtio_net");
    await withNetns(async (ns) => {
      // a bridge the test made (and keeps), with the host's address on it
      await sh("ip", "-n", ns, "link", "add", "name", "sw0", "type", "bridge");
      await sh("ip", "-n", ns, "addr", "add", "10.77.0.1/24", "dev", "sw0");
      await sh("ip", "-n", ns, "link", "set", "sw0", "up");
      const r = await runInNetns(ns, "10.77.0.2", [
        "-b",
        guest.path,
        "-n",
        "sw0",
        "-n",
        "sw9",
        "--id",
        "8",
        "--locked-lladdr",
        "--cmdline",
        "hostile ip=10.77.0.2 pings=2",
      ]);
      assert.equal(r.code, 0x26, r.output + r.stderr);
      assert.equal(r.pings, 2, r.output);
      assert.match(r.stderr, /vm8-if0: lladdr [0-9a-f:]+ \(locked\), switch sw0/);
      assert.equal(await linkExists("sw0", ns), true, "the test's own bridge stays");
      assert.equal(await linkExists("sw9", ns), false, "the bridge vmd created is gone");
      assert.equal(await linkExists("vm8-if0", ns), false);
    });
  },
);

kvmTest(
  "vmd run: two guests on one switch — the listener hears the locked guest's two good frames and not its " +
    "spoofed one",
  async () => {
    const guest = await buildKitGuest("virtio_net");
    await withNetns(async (ns) => {
      await sh("ip", "-n", ns, "link", "add", "name", "sw1", "type", "bridge");
      await sh("ip", "-n", ns, "addr", "add", "10.78.0.1/24", "dev", "sw1");
      await sh("ip", "-n", ns, "link", "set", "sw1", "up");
      let talker: Awaited<ReturnType<typeof runInNetns>> | undefined;
      const listener = await runInNetns(
        ns,
        "10.78.0.2",
        ["-b", guest.path, "-n", "sw1", "--id", "11", "--cmdline", "ip=10.78.0.2 listen pings=1"],
        async () => {
          // the talker: locked, sends 2 good frames, 1 spoofed, 2 malformed, then ends
          talker = await runInNetns(ns, "10.78.0.3", [
            "-b",
            guest.path,
            "-n",
            "sw1",
            "--id",
            "12",
            "--lladdr",
            "fe:e1:bb:d1:00:12",
            "--locked-lladdr",
            "--cmdline",
            "hostile ip=10.78.0.3 bench=0",
          ]);
        },
      );
      assert.equal(talker?.code, 0x26, talker?.output);
      assert.match(talker!.output, /hostile frames sent/);
      assert.equal(listener.code, 0x26, listener.output + listener.stderr);
      assert.equal(listener.pings, 1);
      const heard = listener.output.split("\n").filter((l) => l.startsWith("virtio_net: heard"));
      assert.deepEqual(heard, ["virtio_net: heard fe:e1:bb:d1:00:12", "virtio_net: heard fe:e1:bb:d1:00:12"]);
    });
  },
);
