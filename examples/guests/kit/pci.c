/* PCI configuration mechanism #1: an address dword at 0xcf8, the data window at 0xcfc..0xcff. */
#include "io.h"
#include "kit.h"

static void select(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off) {
	uint32_t addr = 0x80000000u | ((uint32_t)bus << 16) | ((uint32_t)(dev & 0x1f) << 11) |
			((uint32_t)(fn & 0x7) << 8) | (off & 0xfc);
	outl(PCI_CONFIG_ADDRESS, addr);
}

uint8_t pci_read8(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off) {
	select(bus, dev, fn, off);
	return inb(PCI_CONFIG_DATA + (off & 3));
}

uint16_t pci_read16(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off) {
	select(bus, dev, fn, off);
	return inw(PCI_CONFIG_DATA + (off & 2));
}

uint32_t pci_read32(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off) {
	select(bus, dev, fn, off);
	return inl(PCI_CONFIG_DATA);
}

void pci_write8(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off, uint8_t v) {
	select(bus, dev, fn, off);
	outb(PCI_CONFIG_DATA + (off & 3), v);
}

void pci_write16(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off, uint16_t v) {
	select(bus, dev, fn, off);
	outw(PCI_CONFIG_DATA + (off & 2), v);
}

void pci_write32(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off, uint32_t v) {
	select(bus, dev, fn, off);
	outl(PCI_CONFIG_DATA, v);
}

static int probe(uint8_t bus, uint8_t dev, uint8_t fn, struct pci_function *f) {
	uint32_t id = pci_read32(bus, dev, fn, 0x00);
	if ((id & 0xffff) == 0xffff || (id & 0xffff) == 0) return 0;
	uint32_t class_rev = pci_read32(bus, dev, fn, 0x08);
	f->bus = bus;
	f->dev = dev;
	f->fn = fn;
	f->vendor = (uint16_t)id;
	f->device = (uint16_t)(id >> 16);
	f->class_code = (uint8_t)(class_rev >> 24);
	f->subclass = (uint8_t)(class_rev >> 16);
	f->prog_if = (uint8_t)(class_rev >> 8);
	f->header_type = pci_read8(bus, dev, fn, 0x0e);
	return 1;
}

int pci_scan_bus(uint8_t bus, void (*visit)(const struct pci_function *f, void *ctx), void *ctx) {
	int found = 0;
	struct pci_function f;
	for (uint8_t dev = 0; dev < 32; dev++) {
		if (!probe(bus, dev, 0, &f)) continue;
		visit(&f, ctx);
		found++;
		if ((f.header_type & 0x80) == 0) continue;
		for (uint8_t fn = 1; fn < 8; fn++) {
			if (!probe(bus, dev, fn, &f)) continue;
			visit(&f, ctx);
			found++;
		}
	}
	return found;
}
