/*
 * Guest memory round trip (64-bit, at 0x100000): reads the u32 the host left at 0x200000, writes it plus one
 * to 0x200004, writes the marker 0x600dcafe to 0x200008, prints "memory ok\n" and exits with status 0x33.
 */
#include "uart.inc"
        .code64
        .text
        .globl _start
_start:
        mov     0x200000, %eax
        inc     %eax
        mov     %eax, 0x200004
        movl    $0x600dcafe, 0x200008
        lea     msg(%rip), %rsi
1:      lodsb
        test    %al, %al
        jz      2f
        mov     $COM1, %dx
        out     %al, %dx
        jmp     1b
2:      mov     $EXIT_PORT, %dx
        mov     $0x33, %eax
        out     %eax, %dx
        hlt
msg:    .asciz  "memory ok\n"
