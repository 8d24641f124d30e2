/*
 * Legacy interrupt routing for kit guests: an IDT, the local APIC software-enabled with LINT0 as ExtINT, and
 * the 8259 PICs remapped to vectors 0x20.. with one ISA line unmasked — what an OS without ACPI sets up.
 */
#include "io.h"
#include "kit.h"

struct __attribute__((packed)) idt_ptr {
	uint16_t limit;
	uint32_t base;
};

static uint64_t idt[256];

static void mmio_write32(uint32_t addr, uint32_t v) { *(volatile uint32_t *)addr = v; }

void irq_route_isa(int irq, void (*stub)(void)) {
	uint16_t cs;
	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	uint32_t off = (uint32_t)stub;
	/* a 32-bit interrupt gate, present, ring 0 */
	idt[0x20 + irq] = (uint64_t)(off & 0xffff) | ((uint64_t)cs << 16) | ((uint64_t)0x8e00 << 32) |
			  ((uint64_t)(off >> 16) << 48);
	struct idt_ptr p = {sizeof(idt) - 1, (uint32_t)idt};
	__asm__ volatile("lidt %0" : : "m"(p));
	mmio_write32(0xfee000f0, 0x1ff); /* spurious vector 0xff, APIC software-enabled */
	mmio_write32(0xfee00350, 0x700); /* LVT LINT0: ExtINT, unmasked */
	outb(0x20, 0x11);                /* ICW1: edge, cascade, ICW4 */
	outb(0x21, 0x20);                /* ICW2: vectors 0x20.. */
	outb(0x21, 0x04);                /* ICW3: slave on IRQ 2 */
	outb(0x21, 0x01);                /* ICW4: 8086 mode */
	outb(0xa0, 0x11);
	outb(0xa1, 0x28);
	outb(0xa1, 0x02);
	outb(0xa1, 0x01);
	outb(0x21, (uint8_t)~(1u << irq)); /* unmask this line only (irq < 8) */
	outb(0xa1, 0xff);
}

void uart_enable_rx_irq(void) {
	outb(COM1_BASE + 4, 0x0b); /* MCR: DTR, RTS, OUT2 (the IRQ gate on PCs) */
	outb(COM1_BASE + 1, 0x01); /* IER: received-data interrupt */
}
