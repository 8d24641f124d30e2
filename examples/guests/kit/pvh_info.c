/*
 * Reports what the VMM put in struct hvm_start_info: header fields, the command line, the memory map and the
 * first module. Exits 0x11 when the magic and version are right, 0x12 otherwise.
 */
#include "kit.h"

#define MODULE_PEEK 16

static const void *phys(uint64_t paddr) { return (const void *)(uintptr_t)(uint32_t)paddr; }

static void show_module(const struct hvm_modlist_entry *m) {
	printf("module 0: addr 0x%lx size %lu\n", m->paddr, m->size);
	if (m->paddr >> 32 != 0) {
		printf("module 0: above 4 GiB, not read\n");
		return;
	}
	const uint8_t *p = phys(m->paddr);
	uint64_t n = m->size < MODULE_PEEK ? m->size : MODULE_PEEK;
	printf("module 0 bytes:");
	for (uint32_t i = 0; i < (uint32_t)n; i++) printf(" %02x", p[i]);
	printf("\n");
	if (m->cmdline_paddr != 0) printf("module 0 cmdline: %s\n", (const char *)phys(m->cmdline_paddr));
}

uint32_t kmain(const struct hvm_start_info *info) {
	uart_init();
	printf("start_info at %p\n", (const void *)info);
	printf("magic 0x%x version %u flags 0x%x\n", info->magic, info->version, info->flags);
	if (info->magic != HVM_START_MAGIC) {
		printf("pvh_info: bad magic\n");
		return 0x12;
	}
	printf("nr_modules %u\n", info->nr_modules);
	if (info->cmdline_paddr != 0) {
		printf("cmdline: %s\n", (const char *)phys(info->cmdline_paddr));
	} else {
		printf("cmdline: (none)\n");
	}
	printf("rsdp 0x%lx\n", info->rsdp_paddr);
	if (info->version < 1) {
		printf("pvh_info: version %u has no memory map\n", info->version);
		return 0x12;
	}
	uint64_t ram = 0;
	const struct hvm_memmap_table_entry *e = phys(info->memmap_paddr);
	printf("memmap entries %u\n", info->memmap_entries);
	for (uint32_t i = 0; i < info->memmap_entries; i++) {
		printf("memmap: 0x%lx 0x%lx %u\n", e[i].addr, e[i].size, e[i].type);
		if (e[i].type == HVM_MEMMAP_RAM) ram += e[i].size;
	}
	printf("ram %lu KiB\n", ram >> 10);
	if (info->nr_modules > 0 && info->modlist_paddr != 0) {
		show_module(phys(info->modlist_paddr));
	}
	printf("pvh_info: ok\n");
	return 0x11;
}
