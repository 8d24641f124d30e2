/**
 * Networking under the daemon, run inside a network namespace made by the test (vmd itself runs in it under
 * `ip netns exec`): `vmctl start -L` (the guest leases its address from the device and answers ping from
 * the host side), a vm.conf switch with two VMs (the locked guest's spoofed frame is not heard), and nothing
 * left behind — no tap, no bridge vmd made — after `vmctl stop` or SIGTERM.
 *
 * @module
 */
import assert from "node:assert/strict";
import { buildKitGuest } from "../examples/guests/kit/build.ts";
import { kvmTest } from "./kvm_support.ts";
import { linkExists, pingFrom, sh, withNetns } from "./net_support.ts";
import { ConsoleSession, TestDaemon, until } from "./vmd_support.ts";

/** Pings `address` from `ns` once at a time until one reply comes back (bounded by `ms`). */
function reachable(ns: string, address: string, ms = 30_000): Promise<true> {
  return until(
    `a ping reply from ${address}`,
    ms,
    async () => (await pingFrom(ns, address, 1)) === 1 || undefined,
  );
}

kvmTest(
  "vmd daemon: vmctl start -L leases 100.64.1.3 and answers ping (local inet6 on the tap); -n/-i taps join a bridge vmd makes; " +
    "-n of a host bridge not in vm.conf is refused; " +
    "vmctl stop and SIGTERM leave no tap or bridge",
  async () => {
    const guest = await buildKitGuest("virtio_net");
    await withNetns(async (ns) => {
      const conf = `local inet6\nswitch "sw7" {\n  interface "vmdbr7"\n}\n`;
      const d = await TestDaemon.start(conf, {}, ["ip", "netns", "exec", ns]);
      try {
        let r = await d.vmctl(["start", "-b", guest.path, "-m", "16M", "-L", "--cmdline", "pings=9", "net1"]);
        assert.equal(r.code, 0, r.stderr);
        await d.waitState("net1", "running");
        // only the device's DHCP gives the kit guest an address: a reply from .3 is the lease
        await reachable(ns, "100.64.1.3");
        assert.equal(await pingFrom(ns, "100.64.1.3", 2), 2);
        // local inet6 without a prefix: fd00::/8, the guest's IPv4 address, host ::1
        const inet6 = await sh("ip", "-n", ns, "-6", "-o", "addr", "show", "dev", "vm1-if0");
        assert.match(inet6, /inet6 fd00::6440:103:0:1\/96 scope global/, inet6);
        assert.match(
          d.log,
          /vm1-if0: lladdr fe:e1:bb:d1:[0-9a-f:]{5} local 100\.64\.1\.2\/31, guest 100\.64\.1\.3/,
        );
        r = await d.vmctl(["stop", "-f", "-w", "net1"]);
        assert.equal(r.code, 0, r.stderr);
        await d.waitState("net1", "stopped");
        assert.equal(await linkExists("vm1-if0", ns), false, "the tap is gone after vmctl stop");

        // -n names a vm.conf switch, never a host bridge: a foreign bridge gets no port, a missing one is
        // not created, and nothing is left listed
        await sh("ip", "-n", ns, "link", "add", "vmdfor7", "type", "bridge");
        for (const name of ["vmdfor7", "vmdnone7"]) {
          r = await d.vmctl(["start", "-b", guest.path, "-m", "16M", "-n", name, "net3"]);
          assert.equal(r.code, 1, name);
          assert.match(r.stderr, new RegExp(`switch "${name}" is not defined in vm.conf; define it there`));
        }
        assert.deepEqual(JSON.parse(await sh("ip", "-n", ns, "-j", "link", "show", "master", "vmdfor7")), []);
        assert.equal(await linkExists("vmdnone7", ns), false, "no bridge is made outside vm.conf");
        assert.ok(!(await d.status()).some((v) => v.name === "net3"));

        r = await d.vmctl(["start", "-b", guest.path, "-m", "16M", "-n", "sw7", "-i", "2", "net2"]);
        assert.equal(r.code, 0, r.stderr);
        await d.waitState("net2", "running");
        const link = JSON.parse(await sh("ip", "-n", ns, "-j", "link", "show", "vm2-if0")) as {
          master?: string;
        }[];
        assert.equal(link[0].master, "vmdbr7");
        assert.equal(await linkExists("vm2-if1", ns), true);
        assert.equal(await d.terminate(), 0);
        for (const name of ["vm2-if0", "vm2-if1", "vmdbr7"]) {
          assert.equal(await linkExists(name, ns), false, `${name} is gone after SIGTERM`);
        }
      } finally {
        await d.cleanup();
      }
    });
  },
);

kvmTest(
  "vmd daemon: two vm.conf VMs on a switch exchange frames; the locked lladdr guest's spoofed frame is not " +
    "heard; the bridge vmd made goes with the last VM",
  async () => {
    const guest = await buildKitGuest("virtio_net");
    await withNetns(async (ns) => {
      const conf = `switch "lan" {\n  interface "vmdbr8"\n}\n` +
        `vm "listener" {\n  boot "${guest.path}" { cmdline "ip=10.78.0.2 listen pings=1" }\n  memory 16M\n` +
        `  interface { switch "lan" }\n}\n` +
        `vm "talker" {\n  disable\n  boot "${guest.path}" { cmdline "hostile ip=10.78.0.3 bench=0" }\n  memory 16M\n` +
        `  interface { switch "lan"\n    locked lladdr fe:e1:bb:d1:00:12\n  }\n}\n`;
      const d = await TestDaemon.start(conf, {}, ["ip", "netns", "exec", ns]);
      try {
        await d.waitState("listener", "running");
        const listener = new ConsoleSession(d, "listener");
        await listener.expect("virtio_net: serving", 15_000);
        const r = await d.vmctl(["start", "talker"]);
        assert.equal(r.code, 0, r.stderr);
        await until("the talker to end", 15_000, async () => {
          const vm = await d.vm("talker");
          return vm.state === "stopped" && vm.lastExit !== null ? vm : undefined;
        });
        assert.equal(await linkExists("vm2-if0", ns), false);
        assert.equal(await linkExists("vmdbr8", ns), true, "the listener is still on the bridge");
        await sh("ip", "-n", ns, "addr", "add", "10.78.0.1/24", "dev", "vmdbr8");
        assert.equal(await pingFrom(ns, "10.78.0.2", 1), 1);
        await listener.ended(15_000);
        await d.waitState("listener", "stopped");
        const heard = listener.output.split(/\r?\n/).filter((l) => l.startsWith("virtio_net: heard"));
        assert.deepEqual(heard, [
          "virtio_net: heard fe:e1:bb:d1:00:12",
          "virtio_net: heard fe:e1:bb:d1:00:12",
        ]);
        assert.match(d.log, /vm2-if0: lladdr fe:e1:bb:d1:00:12 \(locked\)/);
        await until(
          "the bridge vmd made to go",
          5_000,
          async () => !(await linkExists("vmdbr8", ns)) || undefined,
        );
        assert.equal(await linkExists("vm1-if0", ns), false);
      } finally {
        await d.cleanup();
      }
    });
  },
);

/** Whether `name` in `ns` has its link set up (the UP flag, whatever the carrier). */
async function isUp(ns: string, name: string): Promise<boolean> {
  const link = JSON.parse(await sh("ip", "-n", ns, "-j", "link", "show", "dev", name)) as {
    flags: string[];
  }[];
  return link[0].flags.includes("UP");
}

kvmTest(
  "vmd daemon: switch and interface up/down set the bridges' and taps' link state (a switch's state applies " +
    'to a bridge that was already there too); interface "named3" names its tap',
  async () => {
    const guest = await buildKitGuest("virtio_net");
    await withNetns(async (ns) => {
      // a bridge the test made, down; its switch says up (the default)
      await sh("ip", "-n", ns, "link", "add", "name", "vmdbr10", "type", "bridge");
      const conf = `switch "lan" {\n  interface "vmdbr9"\n  down\n}\n` +
        `switch "wan" {\n  interface "vmdbr10"\n}\n` +
        `vm "states" {\n  boot "${guest.path}" { cmdline "ip=10.79.0.2 pings=9" }\n  memory 16M\n` +
        `  interface { switch "lan" }\n  interface { switch "wan"\n    down\n  }\n  interface { down }\n` +
        `  interface "named3" { up }\n}\n`;
      const d = await TestDaemon.start(conf, {}, ["ip", "netns", "exec", ns]);
      try {
        await d.waitState("states", "running");
        assert.deepEqual(
          {
            vmdbr9: await isUp(ns, "vmdbr9"),
            vmdbr10: await isUp(ns, "vmdbr10"),
            if0: await isUp(ns, "vm1-if0"),
            if1: await isUp(ns, "vm1-if1"),
            if2: await isUp(ns, "vm1-if2"),
            named3: await isUp(ns, "named3"),
          },
          { vmdbr9: false, vmdbr10: true, if0: true, if1: false, if2: false, named3: true },
        );
        const r = await d.vmctl(["stop", "-f", "-w", "states"]);
        assert.equal(r.code, 0, r.stderr);
        await d.waitState("states", "stopped");
        await until(
          "the bridge vmd made to go",
          5_000,
          async () => !(await linkExists("vmdbr9", ns)) || undefined,
        );
        assert.equal(await linkExists("vmdbr10", ns), true, "a bridge vmd found stays");
        assert.equal(await linkExists("vm1-if1", ns), false);
        assert.equal(await linkExists("named3", ns), false, "a named tap goes too");
      } finally {
        await d.cleanup();
      }
    });
  },
);
