/* A guest that asks for a reboot at once (0xFE to the i8042 command port), for vmd's reboot-loop limit. */
#include "io.h"
#include "kit.h"

uint32_t kmain(const struct hvm_start_info *info) {
	(void)info;
	uart_init();
	printf("reboot: going down\n");
	outb(0x64, 0xfe);
	for (;;) __asm__ volatile("cli; hlt");
}
