/*
 * virtio INTx end to end: the guest routes its virtio-rng's Interrupt Line through the I/O APIC (level
 * triggered, active high, vector 0x30), posts one buffer and halts; the handler reads ISR (which lowers the
 * line) and reports. Exit status 0x23.
 */
#include "io.h"
#include "kit.h"
#include "virtio.h"

static struct virtq_desc desc[VQ_SIZE] __attribute__((aligned(16)));
static struct virtq_avail avail __attribute__((aligned(4)));
static struct virtq_used used __attribute__((aligned(8)));
static uint8_t buf[64];
static struct virtio_dev dev;
static volatile uint8_t isr;

static void mmio_write32(uint32_t addr, uint32_t v) { *(volatile uint32_t *)addr = v; }

static void ioapic_write(uint32_t reg, uint32_t v) {
	mmio_write32(0xfec00000, reg);
	mmio_write32(0xfec00010, v);
}

void virtio_irq_handler(void) {
	isr = *dev.isr;
	mmio_write32(0xfee000b0, 0); /* LAPIC EOI */
}

/* As in platform.c: no iret (PVM cannot emulate a 32-bit one); continue in after_irq. */
__asm__(".text\n.globl virtio_irq_stub\nvirtio_irq_stub:\n\tcld\n\tcall virtio_irq_handler\n\taddl $12, %esp\n"
	"\tjmp after_irq\n");
extern void virtio_irq_stub(void);

void after_irq(void) __attribute__((noreturn));
void after_irq(void) {
	printf("virtio_irq: interrupt, isr 0x%x, used idx %u, len %u\n", isr, used.idx, used.ring[0].len);
	exit(0x23);
}

struct __attribute__((packed)) idt_ptr {
	uint16_t limit;
	uint32_t base;
};

static uint64_t idt[256];

uint32_t kmain(const struct hvm_start_info *info) {
	(void)info;
	uart_init();
	if (!virtio_find(0x1044, 0, &dev)) {
		printf("virtio_irq: no device\n");
		return 1;
	}
	uint8_t line = pci_read8(0, dev.slot, 0, 0x3c);
	uint8_t pin = pci_read8(0, dev.slot, 0, 0x3d);
	printf("virtio_irq: pin %u, line %s\n", pin, line > 0 && line < 24 ? "routed" : "missing");

	uint16_t cs;
	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	uint32_t off = (uint32_t)virtio_irq_stub;
	idt[0x30] = (uint64_t)(off & 0xffff) | ((uint64_t)cs << 16) | ((uint64_t)0x8e00 << 32) |
		    ((uint64_t)(off >> 16) << 48);
	struct idt_ptr p = {sizeof(idt) - 1, (uint32_t)idt};
	__asm__ volatile("lidt %0" : : "m"(p));
	outb(0x21, 0xff); /* the 8259s stay masked: the I/O APIC delivers */
	outb(0xa1, 0xff);
	mmio_write32(0xfee000f0, 0x1ff); /* LAPIC software-enabled, spurious vector 0xff */
	ioapic_write(0x11 + 2 * line, 0); /* destination: APIC 0 */
	ioapic_write(0x10 + 2 * line, 0x30 | (1u << 15)); /* vector 0x30, fixed, active high, level, unmasked */

	virtio_init(&dev, 0, desc, &avail, &used);
	desc[0].addr = (uint32_t)buf;
	desc[0].len = sizeof(buf);
	desc[0].flags = VIRTQ_DESC_F_WRITE;
	virtio_submit(&dev, 0);
	virtio_kick(&dev);
	for (;;) __asm__ volatile("sti; hlt; cli");
}
