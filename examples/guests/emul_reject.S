/*
 * A 64-bit guest that executes one instruction a PVM host's KVM cannot emulate and vmd does not complete
 * (`popcnt`, see docs/pvm.md), then halts. On hardware KVM the CPU runs it and the guest halts; on PVM vmd
 * must stop the VM and report the instruction's bytes, RIP and registers.
 */
        .code64
        .text
        .globl _start
_start:
        mov     $0x00ff00ff, %eax
        mov     $0x1234, %ebx
        popcnt  %rax, %rcx
        cli
        hlt
