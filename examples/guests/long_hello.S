/*
 * A 64-bit guest: the VMM enters it in long mode with paging on (identity map) at 0x100000. It prints a
 * greeting and the value of CR0/EFER-derived mode bits on COM1, then writes 0x22 to the exit port.
 */
#include "uart.inc"
        .code64
        .text
        .globl _start
_start:
        lea     msg(%rip), %rsi
        call    puts
        mov     %cr0, %rax              /* prove paging is on: print "PG" if CR0.PG is set */
        bt      $31, %rax
        jnc     1f
        lea     pg(%rip), %rsi
        call    puts
1:      mov     $EXIT_PORT, %dx
        mov     $0x22, %eax
        out     %eax, %dx
        hlt

/* puts: print the NUL-terminated string at %rsi. */
puts:   lodsb
        test    %al, %al
        jz      2f
        mov     %al, %bl
        mov     $COM1_LSR, %dx
3:      in      %dx, %al
        test    $LSR_THRE, %al
        jz      3b
        mov     $COM1, %dx
        mov     %bl, %al
        out     %al, %dx
        jmp     puts
2:      ret

msg:    .asciz  "hello from long mode\n"
pg:     .asciz  "paging on\n"
