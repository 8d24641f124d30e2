import assert from "node:assert/strict";
import { Vm } from "../src/vm/vm.ts";
import { formatPolicy, permissionsFor, POLICY } from "../src/privsep/permission_table.ts";
import { resolveLibcPath } from "../ffi/libc.ts";
import { enterLongMode } from "../src/boot/cpu_modes.ts";
import { kvmTest } from "./kvm_support.ts";

kvmTest(
  "the vCPU worker cannot read a file, read env, open a socket, write, run or query the system",
  async () => {
    const vm = Vm.create({ memory: 4 << 20 });
    try {
      // a guest that halts at once; the real vCPU worker is probed after init, before its loop starts
      vm.memory.write(0x100000, new Uint8Array([0xfa, 0xf4])); // cli; hlt
      enterLongMode(vm.vcpuFd(0), vm.memory, 0x100000, 0x80000);
      await vm.spawn();
      const result = await vm.vcpus[0].probe();
      vm.run();
      assert.deepEqual(result, {
        read: "NotCapable",
        write: "NotCapable",
        env: "NotCapable",
        net: "NotCapable",
        run: "NotCapable",
        sys: "NotCapable",
      });
      assert.deepEqual((await vm.wait()).exit, { kind: "hlt" });
    } finally {
      vm.close();
    }
  },
);

Deno.test("the permission table grants the vCPU worker ffi on libc's path and nothing else", () => {
  const libcPath = resolveLibcPath();
  assert.deepEqual(permissionsFor("vcpu", { libcPath }), {
    read: false,
    write: false,
    net: false,
    env: false,
    run: false,
    ffi: [libcPath],
    sys: false,
    import: false,
  });
  for (const row of POLICY) {
    for (const g of row.grants({ libcPath })) {
      assert.ok(g.reason.length > 10, `${row.name}.${g.permission} has a reason`);
    }
  }
  const text = formatPolicy({ libcPath });
  assert.match(text, /^vcpu\s+worker\s+one per vCPU/m);
  assert.match(text, new RegExp(`^\\s+ffi\\s+${libcPath.replaceAll(".", "\\.")}\\s+ioctl\\(KVM_RUN\\)`, "m"));
});

Deno.test("the compile task includes every worker module of the permission table", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  const compile: string = config.tasks.compile;
  const workers = POLICY.filter((r) => r.kind === "worker");
  assert.ok(workers.length >= 4);
  for (const row of workers) {
    assert.ok(compile.includes(`--include ${row.entry}`), `${row.name}: ${row.entry}`);
  }
});
