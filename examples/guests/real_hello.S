/*
 * A real-mode guest: prints a line on COM1 (polling the line status register like a driver would) and
 * writes 0x11 to the exit port. Loaded at 0x1000 and entered at 0100:0000; linked at 0.
 */
#include "uart.inc"
        .code16
        .text
        .globl _start
_start:
        mov     $msg, %si
next:   lodsb
        test    %al, %al
        jz      done
        mov     %al, %bl
        mov     $COM1_LSR, %dx
wait:   in      %dx, %al
        test    $LSR_THRE, %al
        jz      wait
        mov     $COM1, %dx
        mov     %bl, %al
        out     %al, %dx
        jmp     next
done:   mov     $EXIT_PORT, %dx
        mov     $0x11, %al
        out     %al, %dx
        hlt
msg:    .asciz  "hello from real mode\n"
