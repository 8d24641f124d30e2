/*
 * Benchmark guest (real mode, loaded at 0x1000, entered at 0100:0000): writes the UART scratch register
 * 1,000,000 times (one port-I/O exit each), then writes 0 to the exit port. bench/exits.ts runs it under vmd
 * and under a C KVM_RUN loop.
 */
#include "uart.inc"
        .code16
        .text
        .globl _start
_start:
        mov     $1000000, %ecx
        mov     $0x3ff, %dx
loop:   mov     %cl, %al
        out     %al, %dx
        dec     %ecx
        jnz     loop
        mov     $EXIT_PORT, %dx
        xor     %al, %al
        out     %al, %dx
        hlt
