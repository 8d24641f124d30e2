/* A 64-bit guest that raises #UD with an empty IDT: #UD → #GP → #DF → triple fault (KVM_EXIT_SHUTDOWN). */
        .code64
        .text
        .globl _start
_start:
        ud2
