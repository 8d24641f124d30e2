/*
 * The PVH direct-boot start-of-day structures (version 1, with a memory map), as laid out by the Xen
 * public interface: every field is little-endian and naturally aligned, so the layout is the same for a
 * 32-bit and a 64-bit compiler. The static assertions pin each offset.
 */
#ifndef KIT_PVH_H
#define KIT_PVH_H

#include <stdint.h>

/* The value of hvm_start_info.magic ("xEn3" with the top bit of the last byte set). */
#define HVM_START_MAGIC 0x336ec578u

/* E820-style memory types used in hvm_memmap_table_entry.type. */
#define HVM_MEMMAP_RAM 1
#define HVM_MEMMAP_RESERVED 2
#define HVM_MEMMAP_ACPI 3
#define HVM_MEMMAP_NVS 4
#define HVM_MEMMAP_UNUSABLE 5

struct hvm_start_info {
	uint32_t magic;          /* HVM_START_MAGIC */
	uint32_t version;        /* 0: up to rsdp_paddr; 1: adds the memory map */
	uint32_t flags;
	uint32_t nr_modules;     /* entries at modlist_paddr */
	uint64_t modlist_paddr;  /* array of struct hvm_modlist_entry */
	uint64_t cmdline_paddr;  /* NUL-terminated command line, 0 if none */
	uint64_t rsdp_paddr;     /* ACPI RSDP, 0 if none */
	uint64_t memmap_paddr;   /* version >= 1: array of struct hvm_memmap_table_entry */
	uint32_t memmap_entries; /* version >= 1 */
	uint32_t reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};

struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};

_Static_assert(__builtin_offsetof(struct hvm_start_info, nr_modules) == 12, "nr_modules");
_Static_assert(__builtin_offsetof(struct hvm_start_info, modlist_paddr) == 16, "modlist_paddr");
_Static_assert(__builtin_offsetof(struct hvm_start_info, cmdline_paddr) == 24, "cmdline_paddr");
_Static_assert(__builtin_offsetof(struct hvm_start_info, rsdp_paddr) == 32, "rsdp_paddr");
_Static_assert(__builtin_offsetof(struct hvm_start_info, memmap_paddr) == 40, "memmap_paddr");
_Static_assert(__builtin_offsetof(struct hvm_start_info, memmap_entries) == 48, "memmap_entries");
_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info size");
_Static_assert(sizeof(struct hvm_modlist_entry) == 32, "hvm_modlist_entry size");
_Static_assert(__builtin_offsetof(struct hvm_memmap_table_entry, type) == 16, "memmap type");
_Static_assert(sizeof(struct hvm_memmap_table_entry) == 24, "hvm_memmap_table_entry size");

#endif
