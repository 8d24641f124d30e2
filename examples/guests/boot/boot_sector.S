/*
 * A boot sector for BIOS boot tests: the BIOS loads it at 0x7c00 (from a disk's sector 0, or as an El Torito
 * no-emulation boot image). It prints "VMD-BOOT <kind> dl=<boot drive> read=<text>" on COM1, where <text>
 * comes from a sector it reads back through the BIOS (int 13h, AH=42h): on a disk, sector 1 (a line the
 * image builder writes there); on a CD, sector 16 (the volume descriptor, "CD001"). Then it writes 0x31 to
 * the exit port (0xf4: vmd's exit port, QEMU's isa-debug-exit), or 0x32 if the read failed.
 *
 * Built with -DREAD_LBA=<sector> -DREAD_OFF=<offset> -DCDROM=<0|1>.
 */
        .code16
        .text
        .globl _start
_start:
        cli
        xor %ax, %ax
        mov %ax, %ds
        mov %ax, %es
        mov %ax, %ss
        mov $0x7c00, %sp
        ljmp $0, $norm          /* a CD boot may enter at 07c0:0000 */
norm:
        mov %dl, drive
        mov $hello, %si
        call puts
        mov drive, %al
        call puthex
        mov $readmsg, %si
        call puts
        mov $dap, %si
        mov drive, %dl
        mov $0x42, %ah
        int $0x13
        jc failed
        mov $(0x8000 + READ_OFF), %si
        mov $40, %cx
print:  lodsb
        cmp $0x20, %al
        jb done
        cmp $0x7e, %al
        ja done
        call putc
        loop print
done:   mov $crlf, %si
        call puts
        mov $0x31, %al
        out %al, $0xf4
        jmp halt
failed: mov %ah, %al
        push %ax
        mov $errmsg, %si
        call puts
        pop %ax
        call puthex
        mov $crlf, %si
        call puts
        mov $0x32, %al
        out %al, $0xf4
halt:   hlt
        jmp halt

/* putc: %al to COM1, waiting for the transmitter */
putc:   push %dx
        push %ax
        mov $0x3fd, %dx
1:      in %dx, %al
        test $0x20, %al
        jz 1b
        pop %ax
        mov $0x3f8, %dx
        out %al, %dx
        pop %dx
        ret

/* puts: the NUL-terminated string at %si */
puts:   lodsb
        test %al, %al
        jz 1f
        call putc
        jmp puts
1:      ret

/* puthex: %al as two hex digits */
puthex: push %ax
        shr $4, %al
        call nibble
        pop %ax
nibble: and $0xf, %al
        add $'0', %al
        cmp $'9', %al
        jbe 1f
        add $('a' - '9' - 1), %al
1:      jmp putc

#if CDROM
hello:  .asciz "VMD-BOOT cdrom dl="
#else
hello:  .asciz "VMD-BOOT disk dl="
#endif
readmsg: .asciz " read="
errmsg: .asciz "error ah="
crlf:   .asciz "\r\n"
drive:  .byte 0
        .balign 4
dap:    .byte 16, 0             /* size, reserved */
        .word 1                 /* sectors */
        .word 0x8000, 0         /* buffer offset, segment */
        .quad READ_LBA

        .org 510
        .word 0xaa55
