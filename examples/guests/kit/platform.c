/*
 * The PC platform devices, from the guest's side (exit status 0x14):
 *  - the CMOS RTC: prints the date and time it reads (BCD, 24-hour) and the memory-size bytes;
 *  - the i8042: its self-test answers 0x55;
 *  - COM1's receive interrupt: with the local APIC and the 8259 PIC programmed as a BIOS-less OS would,
 *    it prints "waiting for input", halts, and prints the byte that the IRQ 4 handler read.
 */
#include "io.h"
#include "kit.h"

static uint8_t cmos(uint8_t reg) {
	outb(0x70, reg);
	return inb(0x71);
}

static unsigned bcd(uint8_t v) { return (v >> 4) * 10 + (v & 0x0f); }

static volatile int received = -1;
static volatile unsigned irqs;

/* Called from the interrupt stub: drain the receiver, acknowledge the PIC. */
void irq4_handler(void) {
	irqs++;
	(void)inb(COM1_BASE + 2); /* IIR */
	while (inb(COM1_BASE + 5) & 0x01) received = inb(COM1_BASE);
	outb(0x20, 0x20); /* EOI to the master PIC */
}

/*
 * The stub does not return with iret (the instruction emulator of some KVM hosts, PVM among them, cannot
 * emulate a 32-bit iret): it drops the interrupt frame and continues in after_irq(), which is all this test
 * needs — the interrupt arrived while the CPU was halted.
 */
__asm__(".text\n.globl irq4_stub\nirq4_stub:\n\tcld\n\tcall irq4_handler\n\taddl $12, %esp\n\tjmp after_irq\n");
extern void irq4_stub(void);

void after_irq(void) __attribute__((noreturn));
void after_irq(void) {
	printf("irq4: got '%c' after %u interrupt(s)\n", received, irqs);
	exit(0x14);
}

uint32_t kmain(const struct hvm_start_info *info) {
	(void)info;
	uart_init();

	/* RTC: wait while an update is in progress, then read the clock. */
	while (cmos(0x0a) & 0x80) {
	}
	printf("rtc: %u%02u-%02u-%02u %02u:%02u status-b 0x%x\n", bcd(cmos(0x32)), bcd(cmos(0x09)), bcd(cmos(0x08)),
	       bcd(cmos(0x07)), bcd(cmos(0x04)), bcd(cmos(0x02)), cmos(0x0b));
	printf("cmos: base %u KiB, ext %u KiB, above 16M %u x 64 KiB\n", cmos(0x15) | (cmos(0x16) << 8),
	       cmos(0x17) | (cmos(0x18) << 8), cmos(0x34) | (cmos(0x35) << 8));

	/* i8042 self-test. */
	outb(0x64, 0xaa);
	while (!(inb(0x64) & 0x01)) {
	}
	printf("i8042: self-test 0x%x\n", inb(0x60));

	/* Interrupts: IRQ 4 through the PIC and LINT0 (vector 0x24), COM1 receive interrupt on. */
	irq_route_isa(4, irq4_stub);
	uart_enable_rx_irq();
	printf("waiting for input\n");
	for (;;) __asm__ volatile("sti; hlt; cli");
}
