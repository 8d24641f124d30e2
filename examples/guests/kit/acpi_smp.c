/*
 * ACPI and SMP from the guest's side, the way an OS finds them (exit status 0x28):
 *  - the RSDP, from hvm_start_info.rsdp_paddr and by scanning the EBDA and 0xe0000-0xfffff (both must agree),
 *    its checksums, then the XSDT (or the RSDT of a revision 0 RSDP) and every table's checksum;
 *  - the MADT: enabled local APICs, the I/O APIC, the LINT1 NMI; the FADT: SCI, PM blocks, the fixed power
 *    button, the DSDT it points at; the DSDT: checksum and the devices an OS looks for;
 *  - the PM timer counts;
 *  - every AP listed in the MADT is started with INIT-SIPI-SIPI: a real-mode trampoline at 0x10000 takes
 *    it to 32-bit protected mode, where it prints its APIC id and increments a counter.
 * Every line it prints is a fact both vmd's tables and QEMU's (SeaBIOS's) give, so the output is the same.
 */
#include "acpi.h"
#include "io.h"
#include "kit.h"

#define TRAMPOLINE 0x10000u
#define LAPIC 0xfee00000u
#define LAPIC_ID 0x20
#define LAPIC_SVR 0xf0
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define MAX_CPUS 64

static int failures;

static void fail(const char *what) {
	printf("FAIL: %s\n", what);
	failures++;
}

#define rd16 acpi_rd16
#define rd32 acpi_rd32
#define rd64 acpi_rd64

static const struct acpi_sdt *tables[32];
static int ntables;

static const struct acpi_sdt *find(const char *sig) {
	for (int i = 0; i < ntables; i++)
		if (memcmp(tables[i]->signature, sig, 4) == 0) return tables[i];
	return 0;
}

/* Whether the AML holds `n` bytes equal to `pat`. */
static int aml_has(const struct acpi_sdt *t, const uint8_t *pat, uint32_t n) {
	const uint8_t *b = (const uint8_t *)t;
	for (uint32_t i = sizeof(struct acpi_sdt); i + n <= t->length; i++)
		if (memcmp(b + i, pat, n) == 0) return 1;
	return 0;
}

/* A Name(_HID, EisaId("PNPxxxx")) as compiled AML: DWordPrefix and the compressed id. */
static int has_eisa(const struct acpi_sdt *dsdt, uint32_t id) {
	uint8_t pat[5] = {0x0c, (uint8_t)id, (uint8_t)(id >> 8), (uint8_t)(id >> 16), (uint8_t)(id >> 24)};
	return aml_has(dsdt, pat, 5);
}

static uint32_t madt_ids[MAX_CPUS];
static int ncpus;

static void walk_madt(const struct acpi_sdt *madt) {
	const uint8_t *b = (const uint8_t *)madt;
	int ioapics = 0, nmi_lint1 = 0;
	printf("madt: local apic at 0x%x\n", rd32(b + 36));
	for (uint32_t off = 44; off + 2 <= madt->length && b[off + 1] >= 2; off += b[off + 1]) {
		const uint8_t *e = b + off;
		if (e[0] == 0 && (rd32(e + 4) & 1) && ncpus < MAX_CPUS) madt_ids[ncpus++] = e[3];
		if (e[0] == 1) {
			printf("madt: io apic at 0x%x, gsi base %u\n", rd32(e + 4), rd32(e + 8));
			ioapics++;
		}
		if (e[0] == 4 && e[5] == 1) nmi_lint1 = 1;
	}
	printf("madt: %d enabled cpus, apic ids", ncpus);
	for (int i = 0; i < ncpus; i++) printf(" %u", madt_ids[i]);
	printf("\n");
	if (ioapics != 1) fail("one io apic");
	printf("madt: nmi on lint1: %s\n", nmi_lint1 ? "yes" : "no");
}

static uint16_t pm_tmr_port;

static const struct acpi_sdt *walk_fadt(const struct acpi_sdt *fadt) {
	const uint8_t *b = (const uint8_t *)fadt;
	uint32_t flags = rd32(b + 112);
	pm_tmr_port = (uint16_t)rd32(b + 76);
	printf("fadt: sci irq %u, pm1a event block %s (%u bytes), pm1a control block %s (%u bytes)\n", rd16(b + 46),
	       rd32(b + 56) ? "present" : "absent", b[88], rd32(b + 64) ? "present" : "absent", b[89]);
	printf("fadt: pm timer %s (%u bytes), power button %s\n", pm_tmr_port ? "present" : "absent", b[91],
	       (flags & (1u << 4)) ? "a control method" : "fixed");
	uint64_t dsdt = fadt->length >= 148 ? rd64(b + 140) : 0;
	if (dsdt == 0) dsdt = rd32(b + 40);
	if (fadt->length >= 148 && rd64(b + 140) && rd32(b + 40) && rd64(b + 140) != rd32(b + 40))
		fail("FADT DSDT and X_DSDT differ");
	return (const struct acpi_sdt *)(uint32_t)dsdt;
}

static void walk_dsdt(const struct acpi_sdt *dsdt) {
	if (memcmp(dsdt->signature, "DSDT", 4) != 0 || !acpi_table_ok(dsdt)) {
		fail("DSDT signature and checksum");
		return;
	}
	printf("dsdt: checksum ok\n");
	static const struct {
		const char *name;
		uint32_t id;
	} ids[] = {
	    {"PNP0A03 pci host bridge", 0x030ad041},
	    {"PNP0501 serial port", 0x0105d041},
	    {"PNP0303 keyboard controller", 0x0303d041},
	    {"PNP0B00 rtc", 0x000bd041},
	};
	for (unsigned i = 0; i < sizeof ids / sizeof ids[0]; i++)
		printf("dsdt: %s: %s\n", ids[i].name, has_eisa(dsdt, ids[i].id) ? "yes" : "no");
	static const uint8_t prt[] = {'_', 'P', 'R', 'T'};
	printf("dsdt: _PRT: %s, _S5_: %s\n", aml_has(dsdt, prt, 4) ? "yes" : "no",
	       acpi_s5_slp_typ(dsdt) >= 0 ? "yes" : "no");
}

/* --- time: PIT channel 2, gated through port 0x61, counting down at 1.193182 MHz --- */

static void pit_wait_us(uint32_t us) {
	while (us > 0) {
		uint32_t chunk = us > 50000 ? 50000 : us;
		uint32_t ticks = chunk * 1193 / 1000 + 1;
		outb(0x61, (inb(0x61) & ~0x02) | 0x01); /* gate on, speaker off */
		outb(0x43, 0xb0);                        /* channel 2, lo/hi, mode 0 */
		outb(0x42, ticks & 0xff);
		outb(0x42, ticks >> 8);
		while (!(inb(0x61) & 0x20)) {
		}
		us -= chunk;
	}
}

/* --- SMP --- */

static volatile uint32_t ap_count;
static volatile uint32_t print_lock;
uint8_t ap_stacks[MAX_CPUS][1024] __attribute__((aligned(16), used));

static void lapic_write(uint32_t reg, uint32_t v) { *(volatile uint32_t *)(LAPIC + reg) = v; }
static uint32_t lapic_read(uint32_t reg) { return *(volatile uint32_t *)(LAPIC + reg); }

/* Each AP lands here in 32-bit protected mode, on its own stack (see ap_entry32). */
void ap_main(uint32_t apic_id) {
	while (__atomic_exchange_n(&print_lock, 1, __ATOMIC_ACQUIRE)) __asm__ volatile("pause");
	printf("ap: apic id %u running\n", apic_id);
	__atomic_add_fetch(&ap_count, 1, __ATOMIC_SEQ_CST);
	__atomic_store_n(&print_lock, 0, __ATOMIC_RELEASE);
	for (;;) __asm__ volatile("cli; hlt");
}

/*
 * The trampoline, copied to TRAMPOLINE: real mode with CS = TRAMPOLINE >> 4, IP = 0. It loads the GDT
 * through a descriptor inside itself, sets CR0.PE and far-jumps (through a 16:32 pointer also inside it)
 * to ap_entry32 at its link address. ap_entry32 takes the APIC id from the local APIC and a stack by it.
 */
__asm__(".section .rodata\n"
        ".globl tramp_start, tramp_end, tramp_gdtr, tramp_far\n"
        ".code16\n"
        "tramp_start:\n"
        "\tcli\n"
        "\tmovw %cs, %ax\n"
        "\tmovw %ax, %ds\n"
        "\tlgdtl tramp_gdtr - tramp_start\n"
        "\tmovl %cr0, %eax\n"
        "\torl $1, %eax\n"
        "\tmovl %eax, %cr0\n"
        "\tljmpl *(tramp_far - tramp_start)\n"
        "\t.balign 4\n"
        "tramp_gdtr: .word 0\n\t.long 0\n"
        "tramp_far: .long 0\n\t.word 0\n"
        "tramp_end:\n"
        ".code32\n"
        ".text\n"
        ".globl ap_entry32\n"
        "ap_entry32:\n"
        "\tmovw $0x10, %ax\n"
        "\tmovw %ax, %ds\n"
        "\tmovw %ax, %es\n"
        "\tmovw %ax, %ss\n"
        "\tmovw %ax, %fs\n"
        "\tmovw %ax, %gs\n"
        "\tmovl 0xfee00020, %eax\n"
        "\tshrl $24, %eax\n"
        "\tmovl %eax, %esp\n"
        "\tandl $63, %esp\n"
        "\tincl %esp\n"
        "\tshll $10, %esp\n"
        "\taddl $ap_stacks, %esp\n"
        "\tpushl %eax\n"
        "\tcall ap_main\n"
        "1:\tcli\n\thlt\n\tjmp 1b\n");
extern const uint8_t tramp_start[], tramp_end[], tramp_gdtr[], tramp_far[];
extern void ap_entry32(void);

static const uint64_t gdt[3] __attribute__((aligned(8))) = {
    0,
    0x00cf9a000000ffffull, /* 0x08: flat 32-bit code */
    0x00cf92000000ffffull, /* 0x10: flat data */
};

static void icr(uint32_t apic_id, uint32_t lo) {
	lapic_write(LAPIC_ICR_HI, apic_id << 24);
	lapic_write(LAPIC_ICR_LO, lo);
	for (int i = 0; i < 100000 && (lapic_read(LAPIC_ICR_LO) & (1u << 12)); i++) __asm__ volatile("pause");
}

/* Waits up to `ms` for the AP count to reach `want`. */
static int wait_count(uint32_t want, uint32_t ms) {
	for (uint32_t t = 0; t < ms; t++) {
		if (__atomic_load_n(&ap_count, __ATOMIC_SEQ_CST) >= want) return 1;
		pit_wait_us(1000);
	}
	return __atomic_load_n(&ap_count, __ATOMIC_SEQ_CST) >= want;
}

static void start_aps(void) {
	uint32_t bsp = lapic_read(LAPIC_ID) >> 24;
	uint32_t n = tramp_end - tramp_start;
	memcpy((void *)TRAMPOLINE, tramp_start, n);
	uint8_t *t = (uint8_t *)TRAMPOLINE;
	*(uint16_t *)(t + (tramp_gdtr - tramp_start)) = sizeof gdt - 1;
	*(uint32_t *)(t + (tramp_gdtr - tramp_start) + 2) = (uint32_t)gdt;
	*(uint32_t *)(t + (tramp_far - tramp_start)) = (uint32_t)ap_entry32;
	*(uint16_t *)(t + (tramp_far - tramp_start) + 4) = 0x08;
	lapic_write(LAPIC_SVR, lapic_read(LAPIC_SVR) | 0x1ff);
	printf("smp: bsp apic id %u, starting %d aps\n", bsp, ncpus - 1);
	uint32_t started = 0;
	for (int i = 0; i < ncpus; i++) {
		uint32_t id = madt_ids[i];
		if (id == bsp) continue;
		icr(id, 0x00004500); /* INIT, level assert */
		pit_wait_us(10000);
		icr(id, 0x00004600 | (TRAMPOLINE >> 12)); /* STARTUP */
		if (!wait_count(started + 1, 10)) {
			icr(id, 0x00004600 | (TRAMPOLINE >> 12)); /* the second SIPI, when the first did not start it */
			wait_count(started + 1, 1000);
		}
		if (__atomic_load_n(&ap_count, __ATOMIC_SEQ_CST) != started + 1) {
			printf("FAIL: ap apic id %u did not start\n", id);
			failures++;
			break;
		}
		started++;
	}
	printf("smp: %u aps started, counter %u\n", started, ap_count);
}

uint32_t kmain(const struct hvm_start_info *info) {
	uart_init();
	const uint8_t *given = info->rsdp_paddr ? (const uint8_t *)(uint32_t)info->rsdp_paddr : 0;
	const uint8_t *scanned = acpi_scan_rsdp();
	if (given && !acpi_rsdp_valid(given)) fail("RSDP at hvm_start_info.rsdp_paddr");
	if (!scanned) fail("RSDP by scanning the EBDA and 0xe0000-0xfffff");
	if (given && scanned && given != scanned) fail("the scan and the start info name different RSDPs");
	const uint8_t *rsdp = given ? given : scanned;
	if (!rsdp) return 0x1;
	printf("rsdp: checksums ok, found by %s\n", given ? "the start info and by scanning" : "scanning");

	ntables = acpi_root_tables(rsdp, tables, 32);
	int bad = 0;
	for (int i = 0; i < ntables; i++) bad += !acpi_table_ok(tables[i]);
	if (bad) fail("table checksums");
	else printf("root: every table's checksum ok\n");

	const struct acpi_sdt *madt = find("APIC"), *fadt = find("FACP");
	if (!madt || !fadt) {
		fail("MADT (APIC) and FADT (FACP) in the root table");
		return 0x1;
	}
	walk_madt(madt);
	walk_dsdt(walk_fadt(fadt));

	if (pm_tmr_port) {
		uint32_t a = inl(pm_tmr_port) & 0xffffff;
		pit_wait_us(2000);
		uint32_t b = inl(pm_tmr_port) & 0xffffff;
		uint32_t d = (b - a) & 0xffffff; /* 3.579545 MHz: ~7159 ticks in 2 ms */
		printf("pm timer: %s\n", d > 3000 && d < 200000 ? "counts at about 3.58 MHz" : "wrong rate");
		if (!(d > 3000 && d < 200000)) printf("pm timer: %u ticks in 2 ms\n", d);
	}

	start_aps();
	printf("acpi_smp: %s\n", failures ? "FAILED" : "ok");
	return failures ? 0x1 : 0x28;
}
