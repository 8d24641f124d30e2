/*
 * A console guest that keeps running (for the daemon's tests): prints "echo: ready <cmdline>", then sleeps
 * in HLT and, on each COM1 receive interrupt (IRQ 4 through the 8259 PIC), echoes what arrived in upper
 * case, with "\r" turned into "\r\n". It never exits by itself: vmd stops it.
 *
 * Like platform.c, the interrupt stub does not return with iret (some KVM hosts cannot emulate a 32-bit
 * iret): it starts over on a fresh stack in the idle loop, which is all an idle guest needs.
 */
#include "io.h"
#include "kit.h"

unsigned char echo_stack[4096] __attribute__((aligned(16)));

void echo_idle(void) __attribute__((noreturn));
void echo_idle(void) {
	for (;;) __asm__ volatile("sti; hlt; cli");
}

void echo_handler(void) {
	(void)inb(COM1_BASE + 2); /* IIR */
	while (inb(COM1_BASE + 5) & 0x01) {
		char c = (char)inb(COM1_BASE);
		if (c >= 'a' && c <= 'z') c = (char)(c - 'a' + 'A');
		uart_putc(c);
		if (c == '\r') uart_putc('\n');
	}
	outb(0x20, 0x20); /* EOI to the master PIC */
}

__asm__(".text\n.globl echo_stub\necho_stub:\n\tcld\n\tmovl $echo_stack+4096, %esp\n\tcall echo_handler\n"
	"\tjmp echo_idle\n");
extern void echo_stub(void);

uint32_t kmain(const struct hvm_start_info *info) {
	uart_init();
	const char *cmdline = info->cmdline_paddr ? (const char *)(uint32_t)info->cmdline_paddr : "";
	printf("echo: ready %s\n", cmdline);

	irq_route_isa(4, echo_stub);
	uart_enable_rx_irq();
	echo_idle();
}
