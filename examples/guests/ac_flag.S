/*
 * A 64-bit guest that sets RFLAGS.AC with STAC and clears it with CLAC, checking the flag after each through
 * PUSHF, then writes 0x66 to the exit port (0x77 if a check fails). On PVM, KVM cannot emulate STAC and CLAC
 * and vmd completes them (src/vcpu/pvm_assist.ts); on hardware KVM the CPU runs them (the guest's CPUID has
 * SMAP whenever the host's has).
 */
        .code64
        .text
        .globl _start
_start:
        mov     $0x77, %eax
        stac
        pushfq
        pop     %rbx
        bt      $18, %rbx               /* AC must be set */
        jnc     exit
        clac
        pushfq
        pop     %rbx
        bt      $18, %rbx               /* and clear again */
        jc      exit
        mov     $0x66, %eax
exit:   mov     $0xf4, %dx
        out     %eax, %dx
        hlt
