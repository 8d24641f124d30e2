/* A guest that KVM cannot run on: it jumps to a guest-physical address with no memory behind it (above RAM,
 * below the PCI hole's BARs), so the instruction fetch has nothing to emulate: KVM_EXIT_INTERNAL_ERROR
 * (emulation failure). For the report vmd gives then: the exit named, RIP and a register dump. */
#include "io.h"
#include "kit.h"

uint32_t kmain(const struct hvm_start_info *info) {
	(void)info;
	uart_init();
	printf("internal_error: jumping to unbacked memory\n");
	__asm__ volatile("jmp *%0" : : "r"(0xd0000000u));
	for (;;) __asm__ volatile("cli; hlt");
}
