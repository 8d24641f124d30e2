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

struct __attribute__((packed)) idt_ptr {
	uint16_t limit;
	uint32_t base;
};

static uint64_t idt[256];

static void set_gate(int vector, void (*handler)(void)) {
	uint16_t cs;
	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	uint32_t off = (uint32_t)handler;
	idt[vector] = (uint64_t)(off & 0xffff) | ((uint64_t)cs << 16) | ((uint64_t)0x8e00 << 32) |
		      ((uint64_t)(off >> 16) << 48);
}

static void mmio_write32(uint32_t addr, uint32_t v) { *(volatile uint32_t *)addr = v; }

uint32_t kmain(const struct hvm_start_info *info) {
	uart_init();
	const char *cmdline = info->cmdline_paddr ? (const char *)(uint32_t)info->cmdline_paddr : "";
	printf("echo: ready %s\n", cmdline);

	set_gate(0x24, echo_stub);
	struct idt_ptr p = {sizeof(idt) - 1, (uint32_t)idt};
	__asm__ volatile("lidt %0" : : "m"(p));
	mmio_write32(0xfee000f0, 0x1ff); /* spurious vector 0xff, APIC software-enabled */
	mmio_write32(0xfee00350, 0x700); /* LVT LINT0: ExtINT, unmasked */
	outb(0x20, 0x11);
	outb(0x21, 0x20);
	outb(0x21, 0x04);
	outb(0x21, 0x01);
	outb(0xa0, 0x11);
	outb(0xa1, 0x28);
	outb(0xa1, 0x02);
	outb(0xa1, 0x01);
	outb(0x21, 0xef); /* unmask IRQ 4 only */
	outb(0xa1, 0xff);
	outb(COM1_BASE + 4, 0x0b); /* MCR: DTR, RTS, OUT2 */
	outb(COM1_BASE + 1, 0x01); /* IER: received-data interrupt */
	echo_idle();
}
