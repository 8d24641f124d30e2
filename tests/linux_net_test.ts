/**
 * Real Linux on a local interface under the daemon (hardware KVM only: on PVM a stock kernel's boot to the
 * shell takes more than 30 minutes, docs/pvm.md): vmd runs in a network namespace made by the test, `vmctl
 * start -L` boots Debian's kernel with the test initramfs (which loads virtio_net), busybox `udhcpc` leases
 * 100.64.1.3 from the device's DHCP server, the guest pings the host side (100.64.1.2) and the host pings the
 * guest.
 *
 * @module
 */
import assert from "node:assert/strict";
import { prepareGuests } from "../scripts/prepare_guests.ts";
import { hardwareKvmTest } from "./kvm_support.ts";
import { pingFrom, withNetns } from "./net_support.ts";
import { ConsoleSession, TestDaemon } from "./vmd_support.ts";

hardwareKvmTest(
  "Linux's busybox udhcpc leases its address on a local interface under vmd and pings the host " +
    "(hardware KVM)",
  async () => {
    const g = await prepareGuests({ log: () => {} });
    await withNetns(async (ns) => {
      const d = await TestDaemon.start("", {}, ["ip", "netns", "exec", ns]);
      try {
        const r = await d.vmctl([
          "start",
          "-b",
          g.bzImage,
          "--initrd",
          g.initrd,
          "-m",
          "512M",
          "-L",
          "--cmdline",
          "console=ttyS0 reboot=k panic=-1 vmd.shell",
          "linux",
        ]);
        assert.equal(r.code, 0, r.stderr);
        await d.waitState("linux", "running");
        const con = new ConsoleSession(d, "linux");
        await con.expect("VMD-INITRAMFS-READY", 120_000);
        // busybox has no default udhcpc script: this one sets the leased address and prints the lease
        const script = [
          "ip link set eth0 up",
          `printf '#!/bin/sh\\n[ "$1" = bound ] && ip addr add $ip/$mask dev $interface && ` +
          `echo lease-$ip-router-$router\\nexit 0\\n' > /tmp/dhcp.sh`,
          "chmod +x /tmp/dhcp.sh",
          "udhcpc -i eth0 -n -q -t 5 -s /tmp/dhcp.sh",
          "ping -c 3 -W 5 100.64.1.2 && echo guest-pings-$((1+1))-ok",
        ].join(" && ") + "\n";
        await con.send(script);
        await con.expect("guest-pings-2-ok", 60_000);
        assert.match(con.output, /lease-100\.64\.1\.3-router-100\.64\.1\.2/);
        assert.equal(await pingFrom(ns, "100.64.1.3", 2), 2);
        await con.detach();
        assert.equal((await d.vmctl(["stop", "-f", "-w", "linux"])).code, 0);
      } finally {
        await d.cleanup();
      }
    });
  },
);
