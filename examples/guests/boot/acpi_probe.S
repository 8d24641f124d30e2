/*
 * A BIOS boot image that looks for the ACPI tables as an OS does. Its boot sector reads the rest of the
 * image (sectors 1..7) to 0x7e00 through the BIOS (int 13h, AH=42h), switches to 32-bit protected mode with
 * flat segments (the firmware may put the tables anywhere below 4 GiB) and, with interrupts off:
 *
 *   - scans 0xe0000-0xfffff on 16-byte boundaries for "RSD PTR " with a valid checksum (and, for revision 2,
 *     a valid extended checksum);
 *   - prints "ACPI-PROBE rsdp=<addr> oem=<OEM id> rev=<rev> xsdt=<addr> ok" (or rsdt= for a revision 0 RSDP
 *     or an XSDT above 4 GiB; "bad" for a root table whose checksum is wrong);
 *   - prints "ACPI-PROBE tables: SIG SIG ..." for every table the root table lists, a "!" after a table
 *     whose checksum is wrong;
 *   - follows the FADT to the DSDT and the PM timer: "ACPI-PROBE dsdt=<sig> pmtmr=<port> ticking" (or
 *     "stopped" when 1000 reads see the same count);
 *   - prints "ACPI-PROBE done" and writes 0x31 to the exit port 0xf4 (0x32 when there is no RSDP or the
 *     image could not be read).
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
        ljmp $0, $norm          /* some BIOSes enter at 07c0:0000 */
norm:
        mov $dap, %si           /* %dl: the boot drive, as the BIOS left it */
        mov $0x42, %ah
        int $0x13
        jc rdfail
        cli
        lgdt gdtr
        mov %cr0, %eax
        or $1, %eax
        mov %eax, %cr0
        ljmp $0x08, $pm32
rdfail:
        mov $0x32, %al
        out %al, $0xf4
1:      hlt
        jmp 1b

        .balign 8
gdt:    .quad 0
        .quad 0x00cf9a000000ffff        /* 0x08: code, base 0, 4 GiB, 32-bit */
        .quad 0x00cf92000000ffff        /* 0x10: data, base 0, 4 GiB */
gdtr:   .word gdtr - gdt - 1
        .long gdt
dap:    .byte 16, 0             /* size, reserved */
        .word 7                 /* sectors */
        .word 0x7e00, 0         /* buffer offset, segment */
        .quad 1                 /* from sector 1 */

        .org 510
        .word 0xaa55

        .code32
pm32:
        mov $0x10, %ax
        mov %ax, %ds
        mov %ax, %es
        mov %ax, %ss
        mov %ax, %fs
        mov %ax, %gs
        mov $0x7c00, %esp

        mov $0xe0000, %esi
scan:
        cmpl $0x20445352, (%esi)        /* "RSD " */
        jne next
        cmpl $0x20525450, 4(%esi)       /* "PTR " */
        jne next
        mov $20, %ecx
        call sum
        test %al, %al
        jnz next
        cmpb $2, 15(%esi)
        jb found
        mov 20(%esi), %ecx              /* revision 2: the extended checksum over Length bytes */
        cmp $36, %ecx
        jb next
        call sum
        test %al, %al
        jz found
next:   add $16, %esi
        cmp $0x100000, %esi
        jb scan
        mov $m_none, %esi
        call puts
        mov $0x32, %al
        out %al, $0xf4
        jmp halt

found:  mov %esi, %ebx                  /* %ebx: the RSDP */
        mov $m_rsdp, %esi
        call puts
        mov %ebx, %eax
        call puthex32
        mov $m_oem, %esi
        call puts
        lea 9(%ebx), %esi
        mov $6, %ecx
        call putn
        mov $m_rev, %esi
        call puts
        mov 15(%ebx), %al
        call puthex8
        cmpb $2, 15(%ebx)
        jb use_rsdt
        cmpl $0, 28(%ebx)               /* an XSDT above 4 GiB is out of reach */
        jne use_rsdt
        mov 24(%ebx), %edi
        test %edi, %edi
        jz use_rsdt
        mov $8, %ebp                    /* %ebp: bytes per entry */
        mov $m_xsdt, %esi
        jmp root
use_rsdt:
        mov 16(%ebx), %edi
        mov $4, %ebp
        mov $m_rsdt, %esi
root:   call puts                       /* %edi: the root table */
        mov %edi, %eax
        call puthex32
        mov %edi, %esi
        mov 4(%edi), %ecx
        call sum
        mov $m_ok, %esi
        test %al, %al
        jz 1f
        mov $m_bad, %esi
1:      call puts
        mov $m_crlf, %esi
        call puts

        mov $m_tables, %esi
        call puts
        mov 4(%edi), %edx
        add %edi, %edx                  /* %edx: the root table's end */
        lea 36(%edi), %ebx              /* %ebx: the entry */
entry:  cmp %edx, %ebx
        jae listed
        cmp $8, %ebp
        jne 1f
        cmpl $0, 4(%ebx)                /* a table above 4 GiB: skipped */
        jne 3f
1:      mov $' ', %al
        call putc
        mov (%ebx), %esi
        cmpl $0x50434146, (%esi)        /* "FACP" */
        jne 2f
        mov %esi, fadt
2:      mov $4, %ecx
        call putn
        mov (%ebx), %esi
        call tblok
3:      add %ebp, %ebx
        jmp entry
listed: mov $m_crlf, %esi
        call puts

        mov fadt, %ebx
        test %ebx, %ebx
        jz done
        mov $m_dsdt, %esi
        call puts
        mov 40(%ebx), %esi              /* the FADT's 32-bit DSDT address */
        mov $4, %ecx
        call putn
        mov 40(%ebx), %esi
        call tblok
        mov $m_pmtmr, %esi
        call puts
        mov 76(%ebx), %eax              /* PM_TMR_BLK */
        shr $8, %eax
        call puthex8
        mov 76(%ebx), %eax
        call puthex8
        mov 76(%ebx), %edx
        in %dx, %eax
        mov %eax, %edi
        mov $1000, %ecx
1:      in %dx, %eax
        cmp %eax, %edi
        jne 2f
        loop 1b
        mov $m_stopped, %esi
        jmp 3f
2:      mov $m_ticking, %esi
3:      call puts
        mov $m_crlf, %esi
        call puts
done:   mov $m_done, %esi
        call puts
        mov $0x31, %al
        out %al, $0xf4
halt:   hlt
        jmp halt

/* tblok: prints "!" when the table at %esi does not sum to zero over its Length */
tblok:  mov 4(%esi), %ecx
        call sum
        test %al, %al
        jz 1f
        mov $'!', %al
        call putc
1:      ret

/* sum: %al = the 8-bit sum of %ecx bytes at %esi (%esi and %ecx kept) */
sum:    push %esi
        push %ecx
        xor %eax, %eax
        jecxz 2f
1:      add (%esi), %al
        inc %esi
        loop 1b
2:      pop %ecx
        pop %esi
        ret

/* putc: %al to COM1, waiting for the transmitter */
putc:   push %edx
        push %eax
        mov $0x3fd, %dx
1:      in %dx, %al
        test $0x20, %al
        jz 1b
        pop %eax
        mov $0x3f8, %dx
        out %al, %dx
        pop %edx
        ret

/* puts: the NUL-terminated string at %esi */
puts:   lodsb
        test %al, %al
        jz 1f
        call putc
        jmp puts
1:      ret

/* putn: %ecx characters at %esi, unprintable ones as "?" */
putn:   lodsb
        cmp $0x20, %al
        jb 1f
        cmp $0x7e, %al
        jbe 2f
1:      mov $'?', %al
2:      call putc
        loop putn
        ret

/* puthex32: %eax as eight hex digits */
puthex32:
        push %ecx
        mov $8, %ecx
1:      rol $4, %eax
        push %eax
        call nibble
        pop %eax
        loop 1b
        pop %ecx
        ret

/* puthex8: %al as two hex digits */
puthex8:
        push %eax
        shr $4, %al
        call nibble
        pop %eax
nibble: and $0xf, %al
        add $'0', %al
        cmp $'9', %al
        jbe 1f
        add $('a' - '9' - 1), %al
1:      jmp putc

fadt:   .long 0
m_none: .asciz "ACPI-PROBE no RSDP\r\n"
m_rsdp: .asciz "ACPI-PROBE rsdp="
m_oem:  .asciz " oem="
m_rev:  .asciz " rev="
m_xsdt: .asciz " xsdt="
m_rsdt: .asciz " rsdt="
m_ok:   .asciz " ok"
m_bad:  .asciz " bad"
m_tables: .asciz "ACPI-PROBE tables:"
m_dsdt: .asciz "ACPI-PROBE dsdt="
m_pmtmr: .asciz " pmtmr="
m_ticking: .asciz " ticking"
m_stopped: .asciz " stopped"
m_done: .asciz "ACPI-PROBE done\r\n"
m_crlf: .asciz "\r\n"
