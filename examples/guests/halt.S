/* A 64-bit guest that disables interrupts and halts: without an in-kernel irqchip, KVM_EXIT_HLT. */
        .code64
        .text
        .globl _start
_start:
        cli
        hlt
