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
#include "io.h"
#include "kit.h"

#define TRAMPOLINE 0x10000u
#define LAPIC 0xfee00000u
#define LAPIC_ID 0x20
#define LAPIC_SVR 0xf0
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define MAX_CPUS 64

struct sdt {
	char signature[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	uint32_t creator_id;
	uint32_t creator_revision;
} __attribute__((packed));

static int failures;

static void fail(const char *what) {
	printf("FAIL: %s\n", what);
	failures++;
}

static uint8_t sum(const void *p, uint32_t n) {
	const uint8_t *b = p;
	uint8_t s = 0;
	while (n--) s += *b++;
	return s;
}

/* Reads at fixed physical addresses; the empty asm hides the constant address from the compiler's bounds checks. */
static uint32_t rd32(const void *p) {
	__asm__("" : "+r"(p));
	return *(const volatile uint32_t *)p;
}
static uint16_t rd16(const void *p) {
	__asm__("" : "+r"(p));
	return *(const volatile uint16_t *)p;
}
static uint64_t rd64(const void *p) { return *(const uint32_t *)p | ((uint64_t) * ((const uint32_t *)p + 1) << 32); }

/* A valid RSDP at p: signature, the ACPI 1.0 checksum, and for revision 2+ the extended one. */
static int rsdp_valid(const uint8_t *p) {
	if (memcmp(p, "RSD PTR ", 8) != 0 || sum(p, 20) != 0) return 0;
	return p[15] < 2 || sum(p, rd32(p + 20)) == 0;
}

static const uint8_t *scan(uint32_t from, uint32_t to) {
	for (uint32_t a = from; a < to; a += 16)
		if (rsdp_valid((const uint8_t *)a)) return (const uint8_t *)a;
	return 0;
}

/* What an OS does without a pointer from its loader: the first KiB of the EBDA, then the BIOS area. */
static const uint8_t *scan_rsdp(void) {
	uint32_t ebda = (uint32_t)rd16((const void *)0x40e) << 4;
	const uint8_t *p = ebda >= 0x80000 && ebda < 0xa0000 ? scan(ebda, ebda + 1024) : 0;
	return p ? p : scan(0xe0000, 0x100000);
}

static const struct sdt *tables[32];
static int ntables;

static const struct sdt *find(const char *sig) {
	for (int i = 0; i < ntables; i++)
		if (memcmp(tables[i]->signature, sig, 4) == 0) return tables[i];
	return 0;
}

static int table_ok(const struct sdt *t) { return t->length >= sizeof(struct sdt) && sum(t, t->length) == 0; }

/* Whether the AML holds `n` bytes equal to `pat`. */
static int aml_has(const struct sdt *t, const uint8_t *pat, uint32_t n) {
	const uint8_t *b = (const uint8_t *)t;
	for (uint32_t i = sizeof(struct sdt); i + n <= t->length; i++)
		if (memcmp(b + i, pat, n) == 0) return 1;
	return 0;
}

/* A Name(_HID, EisaId("PNPxxxx")) as compiled AML: DWordPrefix and the compressed id. */
static int has_eisa(const struct sdt *dsdt, uint32_t id) {
	uint8_t pat[5] = {0x0c, (uint8_t)id, (uint8_t)(id >> 8), (uint8_t)(id >> 16), (uint8_t)(id >> 24)};
	return aml_has(dsdt, pat, 5);
}

/* One AML integer: ZeroOp, OneOp, BytePrefix or WordPrefix; -1 for anything else. */
static int aml_small_int(const uint8_t **pp) {
	const uint8_t *p = *pp;
	int v = -1;
	if (p[0] == 0x00 || p[0] == 0x01) v = p[0], p += 1;
	else if (p[0] == 0x0a) v = p[1], p += 2;
	else if (p[0] == 0x0b) v = p[1] | (p[2] << 8), p += 3;
	*pp = p;
	return v;
}

/* SLP_TYPa from Name(_S5_, Package() {a, b, ...}); -1 when absent. */
static int s5_slp_typ(const struct sdt *dsdt) {
	const uint8_t *b = (const uint8_t *)dsdt;
	for (uint32_t i = sizeof(struct sdt); i + 8 <= dsdt->length; i++) {
		if (b[i] != 0x08 || memcmp(b + i + 1, "_S5_", 4) != 0 || b[i + 5] != 0x12) continue;
		const uint8_t *p = b + i + 6;
		p += 1 + (*p >> 6); /* PkgLength: lead byte plus (bits 7:6) more bytes */
		p += 1;             /* NumElements */
		return aml_small_int(&p);
	}
	return -1;
}

static uint32_t madt_ids[MAX_CPUS];
static int ncpus;

static void walk_madt(const struct sdt *madt) {
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

static const struct sdt *walk_fadt(const struct sdt *fadt) {
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
	return (const struct sdt *)(uint32_t)dsdt;
}

static void walk_dsdt(const struct sdt *dsdt) {
	if (memcmp(dsdt->signature, "DSDT", 4) != 0 || !table_ok(dsdt)) {
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
	       s5_slp_typ(dsdt) >= 0 ? "yes" : "no");
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
	const uint8_t *scanned = scan_rsdp();
	if (given && !rsdp_valid(given)) fail("RSDP at hvm_start_info.rsdp_paddr");
	if (!scanned) fail("RSDP by scanning the EBDA and 0xe0000-0xfffff");
	if (given && scanned && given != scanned) fail("the scan and the start info name different RSDPs");
	const uint8_t *rsdp = given ? given : scanned;
	if (!rsdp) return 0x1;
	printf("rsdp: checksums ok, found by %s\n", given ? "the start info and by scanning" : "scanning");

	/* The root table: the XSDT when the RSDP is revision 2 and names one, else the RSDT. */
	uint64_t xsdt = rsdp[15] >= 2 ? rd64(rsdp + 24) : 0;
	const struct sdt *root = (const struct sdt *)(uint32_t)(xsdt ? xsdt : rd32(rsdp + 16));
	if (!table_ok(root)) fail("root table checksum");
	uint32_t width = xsdt ? 8 : 4;
	for (uint32_t off = sizeof(struct sdt); off + width <= root->length && ntables < 32; off += width) {
		const uint8_t *e = (const uint8_t *)root + off;
		const struct sdt *t = (const struct sdt *)(uint32_t)(width == 8 ? rd64(e) : rd32(e));
		if (!table_ok(t)) {
			printf("FAIL: table %u of the root table: bad checksum\n", (off - sizeof(struct sdt)) / width);
			failures++;
		}
		tables[ntables++] = t;
	}
	printf("root: every table's checksum ok\n");

	const struct sdt *madt = find("APIC"), *fadt = find("FACP");
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
