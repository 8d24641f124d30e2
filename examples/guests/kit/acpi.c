/* ACPI table discovery for kit guests (see acpi.h). */
#include "acpi.h"
#include "kit.h"

/* The empty asm hides a constant address from the compiler's bounds checks. */
uint32_t acpi_rd32(const void *p) {
	__asm__("" : "+r"(p));
	return *(const volatile uint32_t *)p;
}

uint16_t acpi_rd16(const void *p) {
	__asm__("" : "+r"(p));
	return *(const volatile uint16_t *)p;
}

uint64_t acpi_rd64(const void *p) {
	return acpi_rd32(p) | ((uint64_t)acpi_rd32((const uint8_t *)p + 4) << 32);
}

uint8_t acpi_sum(const void *p, uint32_t n) {
	const uint8_t *b = p;
	uint8_t s = 0;
	while (n--) s += *b++;
	return s;
}

int acpi_rsdp_valid(const uint8_t *p) {
	if (memcmp(p, "RSD PTR ", 8) != 0 || acpi_sum(p, 20) != 0) return 0;
	return p[15] < 2 || acpi_sum(p, acpi_rd32(p + 20)) == 0;
}

static const uint8_t *scan(uint32_t from, uint32_t to) {
	for (uint32_t a = from; a < to; a += 16)
		if (acpi_rsdp_valid((const uint8_t *)a)) return (const uint8_t *)a;
	return 0;
}

const uint8_t *acpi_scan_rsdp(void) {
	uint32_t ebda = (uint32_t)acpi_rd16((const void *)0x40e) << 4;
	const uint8_t *p = ebda >= 0x80000 && ebda < 0xa0000 ? scan(ebda, ebda + 1024) : 0;
	return p ? p : scan(0xe0000, 0x100000);
}

int acpi_table_ok(const struct acpi_sdt *t) {
	return t->length >= sizeof(struct acpi_sdt) && acpi_sum(t, t->length) == 0;
}

int acpi_root_tables(const uint8_t *rsdp, const struct acpi_sdt **tables, int max) {
	uint64_t xsdt = rsdp[15] >= 2 ? acpi_rd64(rsdp + 24) : 0;
	const struct acpi_sdt *root = (const struct acpi_sdt *)(uint32_t)(xsdt ? xsdt : acpi_rd32(rsdp + 16));
	if (!acpi_table_ok(root)) printf("FAIL: root table checksum\n");
	uint32_t width = xsdt ? 8 : 4;
	int n = 0;
	for (uint32_t off = sizeof(struct acpi_sdt); off + width <= root->length && n < max; off += width) {
		const uint8_t *e = (const uint8_t *)root + off;
		const struct acpi_sdt *t = (const struct acpi_sdt *)(uint32_t)(width == 8 ? acpi_rd64(e) : acpi_rd32(e));
		if (!acpi_table_ok(t)) printf("FAIL: table %d of the root table: bad checksum\n", n);
		tables[n++] = t;
	}
	return n;
}

/* One AML integer: ZeroOp, OneOp, BytePrefix or WordPrefix; -1 for anything else. */
static int aml_small_int(const uint8_t *p) {
	if (p[0] == 0x00 || p[0] == 0x01) return p[0];
	if (p[0] == 0x0a) return p[1];
	if (p[0] == 0x0b) return p[1] | (p[2] << 8);
	return -1;
}

int acpi_s5_slp_typ(const struct acpi_sdt *dsdt) {
	const uint8_t *b = (const uint8_t *)dsdt;
	for (uint32_t i = sizeof(struct acpi_sdt); i + 8 <= dsdt->length; i++) {
		if (b[i] != 0x08 || memcmp(b + i + 1, "_S5_", 4) != 0 || b[i + 5] != 0x12) continue;
		const uint8_t *p = b + i + 6;
		p += 1 + (*p >> 6); /* PkgLength: lead byte plus (bits 7:6) more bytes */
		p += 1;             /* NumElements */
		return aml_small_int(p);
	}
	return -1;
}
