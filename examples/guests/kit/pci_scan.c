/* Lists every function present on PCI bus 0 through configuration mechanism #1; exit status 0x13. */
#include "kit.h"

static void show(const struct pci_function *f, void *ctx) {
	(void)ctx;
	printf("pci %02x:%02x.%u %04x:%04x class %02x\n", f->bus, f->dev, f->fn, f->vendor, f->device,
	       f->class_code);
}

uint32_t kmain(const struct hvm_start_info *info) {
	(void)info;
	uart_init();
	int n = pci_scan_bus(0, show, NULL);
	printf("pci_scan: %d functions\n", n);
	return 0x13;
}
