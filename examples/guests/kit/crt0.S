/*
 * Start-of-day for the test-guest kit: a PVH entry note and the 32-bit entry point.
 *
 * The PVH boot ABI enters here in 32-bit protected mode, paging off, with flat 4 GiB code and data
 * segments, interrupts off, and %ebx holding the physical address of struct hvm_start_info. We set up our
 * own stack, clear .bss, call kmain(info) and write its result to the exit port.
 */
#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define EXIT_PORT 0xf4
#define STACK_SIZE 16384

	/* ELF note: namesz, descsz, type, name "Xen\0", desc = 32-bit physical entry address. */
	.section .note.Xen, "a", @note
	.balign 4
	.long 4
	.long 4
	.long XEN_ELFNOTE_PHYS32_ENTRY
	.asciz "Xen"
	.balign 4
	.long _start
	.balign 4

	.text
	.code32
	.globl _start
	.type _start, @function
_start:
	cld
	movl $stack_top, %esp
	xorl %ebp, %ebp
	/* Zero .bss (the loader should already have, but the kit does not rely on it). */
	movl $__bss_start, %edi
	movl $__bss_end, %ecx
	subl %edi, %ecx
	xorl %eax, %eax
	rep stosb
	pushl %ebx
	call kmain
	addl $4, %esp
	pushl %eax
	call exit
	/* exit() does not return; if the exit port is missing, stop here. */
1:	cli
	hlt
	jmp 1b
	.size _start, . - _start

	.bss
	.balign 16
stack_bottom:
	.skip STACK_SIZE
stack_top:

	.section .note.GNU-stack, "", @progbits
