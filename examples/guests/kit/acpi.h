/* ACPI table discovery for kit guests: the RSDP (given or found by scanning), the root table, checksums. */
#ifndef KIT_ACPI_H
#define KIT_ACPI_H

#include <stdint.h>

/* The common header of every system description table. */
struct acpi_sdt {
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

/* The byte sum of n bytes at p (0 for a table with a good checksum). */
uint8_t acpi_sum(const void *p, uint32_t n);
/* Whether p holds a valid RSDP: signature, the ACPI 1.0 checksum and, for revision 2+, the extended one. */
int acpi_rsdp_valid(const uint8_t *p);
/* The RSDP an OS finds without a pointer: the first KiB of the EBDA, then 0xe0000-0xfffff; 0 if none. */
const uint8_t *acpi_scan_rsdp(void);
/* Whether t has a plausible length and a good checksum. */
int acpi_table_ok(const struct acpi_sdt *t);
/* The tables the root table lists (the XSDT for a revision 2+ RSDP that names one, else the RSDT), at most
 * max of them; returns their count. Reports each table whose checksum is wrong. */
int acpi_root_tables(const uint8_t *rsdp, const struct acpi_sdt **tables, int max);
/* SLP_TYPa of Name(_S5_, Package() {a, ...}) in an AML table; -1 when absent. */
int acpi_s5_slp_typ(const struct acpi_sdt *dsdt);
/* Reads of tables at fixed physical addresses. */
uint32_t acpi_rd32(const void *p);
uint16_t acpi_rd16(const void *p);
uint64_t acpi_rd64(const void *p);

#endif
