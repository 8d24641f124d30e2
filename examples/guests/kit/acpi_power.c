/*
 * The ACPI power button and soft-off, from the guest's side (never exits by the exit port when all goes well):
 * finds the FADT and the DSDT's _S5_, switches to ACPI mode through SMI_CMD if the platform needs that,
 * routes the SCI through the I/O APIC (level triggered, active high), enables the power-button event,
 * prints "waiting for the power button" and halts. On the SCI it reads and clears PWRBTN_STS and writes
 * SLP_TYPa (from _S5_) with SLP_EN to PM1a_CNT: the machine switches off. Exit 0x1 on a missing table.
 */
#include "acpi.h"
#include "io.h"
#include "kit.h"

#define PWRBTN (1u << 8)
#define SCI_EN (1u << 0)
#define SLP_EN (1u << 13)

static uint16_t pm1a_evt, pm1a_cnt;
static int slp_typ;
static volatile uint16_t seen_status;

static void mmio_write32(uint32_t addr, uint32_t v) { *(volatile uint32_t *)addr = v; }

static void ioapic_write(uint32_t reg, uint32_t v) {
	mmio_write32(0xfec00000, reg);
	mmio_write32(0xfec00010, v);
}

void sci_handler(void) {
	seen_status = inw(pm1a_evt);
	outw(pm1a_evt, seen_status & PWRBTN); /* write 1 to clear: the SCI goes down */
	mmio_write32(0xfee000b0, 0);          /* LAPIC EOI */
}

/* As in platform.c: no iret (PVM cannot emulate a 32-bit one); continue in after_sci. */
__asm__(".text\n.globl sci_stub\nsci_stub:\n\tcld\n\tcall sci_handler\n\taddl $12, %esp\n\tjmp after_sci\n");
extern void sci_stub(void);

void after_sci(void) __attribute__((noreturn));
void after_sci(void) {
	printf("acpi_power: sci, power button %s, status now 0x%x\n", (seen_status & PWRBTN) ? "pressed" : "not pressed",
	       inw(pm1a_evt) & PWRBTN);
	printf("acpi_power: entering S5\n");
	outw(pm1a_cnt, (inw(pm1a_cnt) & SCI_EN) | (uint16_t)(slp_typ << 10) | SLP_EN);
	/* Switched off: nothing more runs. (QEMU may let this CPU go on for a moment, so say nothing here.) */
	for (;;) __asm__ volatile("cli; hlt");
}

struct __attribute__((packed)) idt_ptr {
	uint16_t limit;
	uint32_t base;
};

static uint64_t idt[256];

uint32_t kmain(const struct hvm_start_info *info) {
	uart_init();
	const uint8_t *rsdp = info->rsdp_paddr ? (const uint8_t *)(uint32_t)info->rsdp_paddr : acpi_scan_rsdp();
	const struct acpi_sdt *tables[32], *fadt = 0;
	int n = rsdp ? acpi_root_tables(rsdp, tables, 32) : 0;
	for (int i = 0; i < n; i++)
		if (memcmp(tables[i]->signature, "FACP", 4) == 0) fadt = tables[i];
	if (!fadt) {
		printf("FAIL: no FADT\n");
		return 0x1;
	}
	const uint8_t *f = (const uint8_t *)fadt;
	uint16_t sci = acpi_rd16(f + 46);
	uint32_t smi_cmd = acpi_rd32(f + 48);
	pm1a_evt = (uint16_t)acpi_rd32(f + 56);
	pm1a_cnt = (uint16_t)acpi_rd32(f + 64);
	slp_typ = acpi_s5_slp_typ((const struct acpi_sdt *)acpi_rd32(f + 40));
	if (slp_typ < 0 || !pm1a_evt || !pm1a_cnt) {
		printf("FAIL: no _S5_ or PM1a blocks\n");
		return 0x1;
	}
	if (!(inw(pm1a_cnt) & SCI_EN) && smi_cmd) {
		outb(smi_cmd, f[52]); /* ACPI_ENABLE */
		for (int i = 0; i < 1000000 && !(inw(pm1a_cnt) & SCI_EN); i++) __asm__ volatile("pause");
	}
	printf("acpi_power: acpi mode %s, sci irq %u\n", (inw(pm1a_cnt) & SCI_EN) ? "on" : "off", sci);

	uint16_t cs;
	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	uint32_t off = (uint32_t)sci_stub;
	idt[0x31] = (uint64_t)(off & 0xffff) | ((uint64_t)cs << 16) | ((uint64_t)0x8e00 << 32) |
		    ((uint64_t)(off >> 16) << 48);
	struct idt_ptr p = {sizeof(idt) - 1, (uint32_t)idt};
	__asm__ volatile("lidt %0" : : "m"(p));
	outb(0x21, 0xff); /* the 8259s stay masked: the I/O APIC delivers */
	outb(0xa1, 0xff);
	mmio_write32(0xfee000f0, 0x1ff);                          /* LAPIC software-enabled */
	ioapic_write(0x11 + 2 * sci, 0);                          /* destination: APIC 0 */
	ioapic_write(0x10 + 2 * sci, 0x31 | (1u << 15));          /* vector 0x31, active high, level */
	outw(pm1a_evt, 0xffff);                                   /* clear stale status */
	outw(pm1a_evt + 2, PWRBTN);                               /* PWRBTN_EN */
	printf("acpi_power: waiting for the power button\n");
	for (;;) __asm__ volatile("sti; hlt; cli");
}
