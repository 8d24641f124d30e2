/* A guest that prints "spinning\n" and then loops forever: for pause/resume/stop tests. 64-bit. */
#include "uart.inc"
        .code64
        .text
        .globl _start
_start:
        lea     msg(%rip), %rsi
1:      lodsb
        test    %al, %al
        jz      spin
        mov     $COM1, %dx
        out     %al, %dx
        jmp     1b
spin:   inc     %rcx
        jmp     spin
msg:    .asciz  "spinning\n"
