/*
 * virtio MSI-X end to end: the guest enables MSI-X on its virtio-rng, points table entry 0 at the local APIC
 * with vector 0x31, maps queue 0 to it (the configuration vector stays masked), posts one buffer and halts;
 * the handler reports. Exit status 0x25.
 */
#include "io.h"
#include "kit.h"
#include "virtio.h"

static struct virtq_desc desc[VQ_SIZE] __attribute__((aligned(16)));
static struct virtq_avail avail __attribute__((aligned(4)));
static struct virtq_used used __attribute__((aligned(8)));
static uint8_t buf[64];
static struct virtio_dev dev;
static volatile uint32_t hits;

static void mmio_write32(uint32_t addr, uint32_t v) { *(volatile uint32_t *)addr = v; }

void virtio_msix_handler(void) {
	hits++;
	mmio_write32(0xfee000b0, 0); /* LAPIC EOI */
}

/* As in platform.c: no iret (PVM cannot emulate a 32-bit one); continue in after_irq. */
__asm__(".text\n.globl virtio_msix_stub\nvirtio_msix_stub:\n\tcld\n\tcall virtio_msix_handler\n\taddl $12, %esp\n"
	"\tjmp after_irq\n");
extern void virtio_msix_stub(void);

void after_irq(void) __attribute__((noreturn));
void after_irq(void) {
	printf("virtio_msix: interrupt on vector 0x31 (%u), used idx %u, len %u\n", hits, used.idx, used.ring[0].len);
	exit(0x25);
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
		printf("virtio_msix: no device\n");
		return 1;
	}
	uint8_t cap = pci_read8(0, dev.slot, 0, 0x34);
	while (cap != 0 && pci_read8(0, dev.slot, 0, cap) != 0x11) cap = pci_read8(0, dev.slot, 0, cap + 1);
	if (cap == 0) {
		printf("virtio_msix: no MSI-X capability\n");
		return 2;
	}
	uint16_t ctrl = pci_read16(0, dev.slot, 0, cap + 2);
	uint32_t table = pci_read32(0, dev.slot, 0, cap + 4);
	uint8_t bir = table & 7;
	uint32_t bar_lo = pci_read32(0, dev.slot, 0, 0x10 + 4 * bir);
	if ((bar_lo & ~0xfu) == 0 || ((bar_lo & 6) == 4 && pci_read32(0, dev.slot, 0, 0x14 + 4 * bir) != 0)) {
		pci_write32(0, dev.slot, 0, 0x10 + 4 * bir, 0xe8000000u);
		if ((bar_lo & 6) == 4) pci_write32(0, dev.slot, 0, 0x14 + 4 * bir, 0);
	}
	volatile uint32_t *t =
	    (volatile uint32_t *)((pci_read32(0, dev.slot, 0, 0x10 + 4 * bir) & ~0xfu) + (table & ~7u));
	printf("virtio_msix: %u vectors\n", (ctrl & 0x7ff) + 1);

	uint16_t cs;
	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	uint32_t off = (uint32_t)virtio_msix_stub;
	idt[0x31] = (uint64_t)(off & 0xffff) | ((uint64_t)cs << 16) | ((uint64_t)0x8e00 << 32) |
		    ((uint64_t)(off >> 16) << 48);
	struct idt_ptr p = {sizeof(idt) - 1, (uint32_t)idt};
	__asm__ volatile("lidt %0" : : "m"(p));
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
	mmio_write32(0xfee000f0, 0x1ff); /* LAPIC software-enabled */

	/* MSI-X on, entry 0 -> APIC 0 vector 0x31, entry 1 masked */
	pci_write16(0, dev.slot, 0, 0x04, pci_read16(0, dev.slot, 0, 0x04) | 0x6);
	pci_write16(0, dev.slot, 0, cap + 2, ctrl | 0x8000);
	t[0] = 0xfee00000u;
	t[1] = 0;
	t[2] = 0x31;
	t[3] = 0;
	t[7] = 1;

	uint8_t st = virtio_init(&dev, 0, desc, &avail, &used);
	*(volatile uint16_t *)(dev.common + 16) = 1;  /* config vector: entry 1 (masked) */
	*(volatile uint16_t *)(dev.common + 22) = 0;  /* queue 0 */
	*(volatile uint16_t *)(dev.common + 26) = 0;  /* queue vector: entry 0 */
	printf("virtio_msix: status 0x%x, config vector %u, queue vector %u\n", st, *(volatile uint16_t *)(dev.common + 16),
	       *(volatile uint16_t *)(dev.common + 26));
	desc[0].addr = (uint32_t)buf;
	desc[0].len = sizeof(buf);
	desc[0].flags = VIRTQ_DESC_F_WRITE;
	virtio_submit(&dev, 0);
	virtio_kick(&dev);
	for (;;) __asm__ volatile("sti; hlt; cli");
}
