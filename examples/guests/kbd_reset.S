/* A 64-bit guest that resets the machine the way Linux's reboot=k does: 0xFE to the i8042 command port. */
        .code64
        .text
        .globl _start
_start:
        mov     $0xfe, %al
        out     %al, $0x64
1:      hlt
        jmp     1b
