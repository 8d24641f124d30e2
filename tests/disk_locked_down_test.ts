/**
 * A compressed qcow2 cluster read for the first time after lock-down. Node's zlib cannot be loaded then (Deno
 * starting its Node compatibility reads /proc/self/exe, which the filter refuses, and aborts the process), so
 * opening an image must have loaded it: a guest's first read must not kill its VM.
 */
import assert from "node:assert/strict";
import { qemuImg, withTempDir } from "./disk_helpers.ts";
import { VM_UID_BASE } from "../src/privsep/lockdown.ts";
import { vmProcessEnv } from "../src/vmd/vm_launcher.ts";

const IS_ROOT = Deno.uid() === 0;
const FIXTURE = new URL("./fixtures/lockdown/compressed_read.ts", import.meta.url).pathname;
const VM_ID = 4243;

Deno.test({
  name: "a compressed cluster read after lock-down inflates (zlib loaded when the image was opened)",
  ignore: !IS_ROOT,
  fn: async () => {
    await withTempDir(async (dir) => {
      Deno.writeFileSync(`${dir}/text.raw`, new TextEncoder().encode("z".repeat(1 << 20)));
      await qemuImg("convert", "-c", "-O", "qcow2", `${dir}/text.raw`, `${dir}/comp.qcow2`);
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-ffi", "--allow-read", FIXTURE, String(VM_ID), `${dir}/comp.qcow2`],
        clearEnv: true,
        env: vmProcessEnv(),
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, `the locked-down reader failed: ${stderr}`);
      const got = JSON.parse(new TextDecoder().decode(out.stdout));
      assert.deepEqual(got, { uid: VM_UID_BASE + VM_ID, first: 0x7a, last: 0x7a });
    });
  },
});
if (!IS_ROOT) console.error("(disk_locked_down_test not run: lock-down needs root to leave it)");
