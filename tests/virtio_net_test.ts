/**
 * virtio-net end to end, in a network namespace made by the test: the kit guest leases its address from the
 * device's DHCP server on a local interface, then answers ARP and ping from the host side of its tap; the
 * same guest under QEMU (`-netdev tap`, given the address on its cmdline, as QEMU has no DHCP server here)
 * answers the same pings.
 *
 * @module
 */
import assert from "node:assert/strict";
import { buildKitGuest } from "../examples/guests/kit/build.ts";
import { localAddresses } from "../src/net/local_prefix.ts";
import { kvmTest, runKernel } from "./kvm_support.ts";
import { DENIED } from "./virtio_support.ts";
import { QEMU, qemuArgs } from "./qemu_support.ts";
import { configureInNetns, linkExists, pingFrom, sh, tapRxPackets, withNetns } from "./net_support.ts";

const MAC = Uint8Array.from([0xfe, 0xe1, 0xbb, 0xd1, 0x00, 0x01]);

kvmTest(
  "virtio-net: the kit guest leases 100.64.1.3 by DHCP and answers ARP and ping from its tap",
  async () => {
    const guest = await buildKitGuest("virtio_net");
    const tap = `vm1-if0-${Deno.pid % 100000}`;
    const link = localAddresses(1, 0);
    assert.deepEqual(link, { host: "100.64.1.2", guest: "100.64.1.3", prefixLength: 31 });
    await withNetns(async (ns) => {
      let ping: Promise<number> | undefined;
      const run = await runKernel(guest.path, {
        cmdline: "pings=3",
        nics: [{ tap, mac: MAC, local: link }],
        timeoutMs: 60_000,
        beforeRun: () => configureInNetns(ns, tap, link.host),
        onOutput: (out) => {
          if (ping === undefined && out.includes("virtio_net: serving")) ping = pingFrom(ns, link.guest, 3);
        },
      });
      assert.deepEqual(run.result.exit, { kind: "exit-port", status: 0x26 }, run.output);
      assert.equal(await ping, 3, run.output);
      assert.equal(
        run.output,
        "virtio_net: mac fe:e1:bb:d1:00:01 link 1\nvirtio_net: offer 100.64.1.3\n" +
          "virtio_net: lease 100.64.1.3 router 100.64.1.2\nvirtio_net: serving\n" +
          "virtio_net: echo 1\nvirtio_net: echo 2\nvirtio_net: echo 3\nvirtio_net: done\n",
      );
      // closing the VM closed the tap's fd, which removes the tap once the worker's last poll (≤ 0.2 s) ends
      let gone = false;
      for (let i = 0; i < 40 && !gone; i++) {
        gone = !(await linkExists(tap, ns));
        if (!gone) await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(gone, `tap ${tap} still exists after the VM closed`);
    });
  },
);

kvmTest("virtio-net: the same guest under QEMU on a tap answers the same pings", async () => {
  const guest = await buildKitGuest("virtio_net");
  const tap = `qt-${Deno.pid % 100000}`;
  const link = localAddresses(1, 0);
  await withNetns(async (ns) => {
    await sh("ip", "-n", ns, "tuntap", "add", "dev", tap, "mode", "tap");
    await sh("ip", "-n", ns, "addr", "add", `${link.host}/31`, "dev", tap);
    await sh("ip", "-n", ns, "link", "set", tap, "up");
    const args = await qemuArgs(guest.path, {
      append: `ip=${link.guest} pings=3`,
      extraArgs: [
        "-netdev",
        `tap,id=n0,ifname=${tap},script=no,downscript=no`,
        "-device",
        "virtio-net-pci,netdev=n0,disable-legacy=on,mac=fe:e1:bb:d1:00:01",
      ],
    });
    const child = new Deno.Command("ip", {
      args: ["netns", "exec", ns, QEMU, ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    let output = "";
    let ping: Promise<number> | undefined;
    const dec = new TextDecoder();
    const stderr = new Response(child.stderr).text();
    for await (const chunk of child.stdout) {
      output += dec.decode(chunk, { stream: true });
      if (ping === undefined && output.includes("virtio_net: serving")) ping = pingFrom(ns, link.guest, 3);
    }
    const status = await child.status;
    clearTimeout(timer);
    assert.equal(status.code, (0x26 << 1) | 1, output + (await stderr));
    assert.equal(await ping, 3, output);
    assert.equal(
      output,
      "virtio_net: mac fe:e1:bb:d1:00:01 link 1\nvirtio_net: static 100.64.1.3\nvirtio_net: serving\n" +
        "virtio_net: echo 1\nvirtio_net: echo 2\nvirtio_net: echo 3\nvirtio_net: done\n",
    );
  });
});

kvmTest(
  "virtio-net: short, oversized, spoofed (locked lladdr) frames and a DHCP request with overrunning options are " +
    "dropped and counted; the device still leases, forwards and answers; its worker cannot read files or exec",
  async () => {
    const guest = await buildKitGuest("virtio_net");
    const tap = `vm2-if0-${Deno.pid % 100000}`;
    const link = localAddresses(2, 0);
    const secret = await Deno.makeTempFile();
    try {
      await withNetns(async (ns) => {
        let ping: Promise<number> | undefined;
        let stats: Readonly<Record<string, number>> = {};
        let hostRx = -1;
        let probe: unknown;
        const run = await runKernel(guest.path, {
          cmdline: "hostile pings=2",
          nics: [{ tap, mac: MAC, local: link, lockedLladdr: true }],
          timeoutMs: 60_000,
          beforeRun: async (vm) => {
            probe = await vm.virtioDevices[0].probe(secret);
            await configureInNetns(ns, tap, link.host);
          },
          onOutput: (out) => {
            if (ping === undefined && out.includes("virtio_net: serving")) ping = pingFrom(ns, link.guest, 2);
          },
          afterRun: async (vm) => {
            stats = await vm.virtioDevices[0].stats();
            hostRx = await tapRxPackets(ns, tap);
          },
        });
        assert.deepEqual(run.result.exit, { kind: "exit-port", status: 0x26 }, run.output);
        assert.equal(await ping, 2, run.output);
        assert.match(run.output, /^virtio_net: hostile frames sent\nvirtio_net: offer 100\.64\.2\.3$/m);
        assert.equal(stats.malformed, 2);
        assert.equal(stats.spoofed, 1);
        assert.equal(stats.dhcpDropped, 1);
        assert.equal(stats.dhcpReplies, 2);
        assert.equal(stats.needsReset, 0);
        // two good frames, one ARP reply (or more, if the host asks again) and two echo replies reached the host
        assert.ok(stats.tx >= 5, JSON.stringify(stats));
        assert.equal(
          hostRx,
          stats.tx,
          "every frame the device sent, and nothing else, reached the host side",
        );
        assert.deepEqual(probe, DENIED);
      });
    } finally {
      await Deno.remove(secret);
    }
  },
);
