/*
 * A 64-bit guest that executes INT3 with a #BP handler in its IDT. The handler checks that the saved RIP is
 * the address just after the 0xcc (a #BP is a trap) and that CS is the kernel code selector, then writes 0x33
 * to the exit port; 0x44 if either check fails. On PVM, KVM cannot emulate INT3 and vmd completes it by
 * injecting #BP (src/vcpu/pvm_assist.ts); on hardware KVM the CPU does it.
 */
        .code64
        .text
        .globl _start
_start:
        lea     bp_handler(%rip), %rax  /* IDT entry 3: a 64-bit interrupt gate to bp_handler */
        lea     idt(%rip), %rdi
        mov     %ax, 48(%rdi)           /* offset 15:0 */
        movw    $0x10, 50(%rdi)         /* selector: the VMM's 64-bit code segment */
        movw    $0x8e00, 52(%rdi)       /* present, DPL 0, type 0xe (interrupt gate) */
        shr     $16, %rax
        mov     %ax, 54(%rdi)           /* offset 31:16 */
        shr     $16, %rax
        mov     %eax, 56(%rdi)          /* offset 63:32 */
        lidt    idtr(%rip)
        int3
after:  mov     $0x55, %eax             /* not reached: the handler ends the run */
        jmp     exit

bp_handler:
        mov     $0x44, %eax
        lea     after(%rip), %rbx
        cmp     (%rsp), %rbx            /* saved RIP */
        jne     exit
        cmpq    $0x10, 8(%rsp)          /* saved CS */
        jne     exit
        mov     $0x33, %eax
exit:   mov     $0xf4, %dx
        out     %eax, %dx
        hlt

        .balign 16
idt:    .fill   32, 16, 0
idtr:   .word   32 * 16 - 1
        .quad   idt
