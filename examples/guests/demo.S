/*
 * The embedded demo guest (`vmd demo`): a 64-bit guest entered in long mode at 0x100000. It prints a banner,
 * counts to five on COM1, reads the UART scratch register back to show a device round trip, and ends the
 * VM through the exit port with status 0.
 */
#include "uart.inc"
        .code64
        .text
        .globl _start
_start:
        lea     banner(%rip), %rsi
        call    puts
        mov     $'1', %cl
count:  lea     counting(%rip), %rsi
        call    puts
        mov     %cl, %al
        call    putc
        mov     $'\n', %al
        call    putc
        inc     %cl
        cmp     $'6', %cl
        jne     count
        mov     $0x3ff, %dx             /* scratch register: write, read back */
        mov     $0x5a, %al
        out     %al, %dx
        in      %dx, %al
        cmp     $0x5a, %al
        jne     fail
        lea     ok(%rip), %rsi
        call    puts
        mov     $EXIT_PORT, %dx
        xor     %eax, %eax
        out     %eax, %dx
        hlt
fail:   mov     $EXIT_PORT, %dx
        mov     $1, %eax
        out     %eax, %dx
        hlt

/* putc: print %al. Clobbers %dx, %bl. */
putc:   mov     %al, %bl
        mov     $COM1_LSR, %dx
1:      in      %dx, %al
        test    $LSR_THRE, %al
        jz      1b
        mov     $COM1, %dx
        mov     %bl, %al
        out     %al, %dx
        ret

/* puts: print the NUL-terminated string at %rsi. Clobbers %rax, %dx, %bl. */
puts:   lodsb
        test    %al, %al
        jz      2f
        call    putc
        jmp     puts
2:      ret

banner:   .ascii "vmd demo guest: 64-bit long mode, COM1 at 0x3f8, exit port at 0xf4\n"
          .asciz "every line below crossed the KVM exit loop one byte at a time\n"
counting: .asciz "counting: "
ok:       .asciz "scratch register round trip ok; exiting with status 0\n"
