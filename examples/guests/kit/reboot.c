/*
 * A guest that asks for a reboot (0xFE to the i8042 command port), for vmd's reboot-loop limit: at once, or
 * after `delay_ms=N` milliseconds given on the command line (timed with PIT channel 2, gated through port
 * 0x61, which KVM's in-kernel PIT emulates: wall-clock time, whatever the vCPU's speed).
 */
#include "io.h"
#include "kit.h"

#define PIT_HZ 1193182u

/* Counts `ticks` (at most 0xffff) of the PIT's 1.193182 MHz clock on channel 2, mode 0, polling its output. */
static void pit_wait_ticks(uint16_t ticks) {
	outb(0x61, (uint8_t)((inb(0x61) & ~0x02) | 0x01)); /* gate channel 2 on, speaker off */
	outb(0x43, 0xb0);                                  /* channel 2, low then high byte, mode 0, binary */
	outb(0x42, (uint8_t)(ticks & 0xff));
	outb(0x42, (uint8_t)(ticks >> 8));
	while (!(inb(0x61) & 0x20)) {
	}
}

static void wait_ms(uint32_t ms) {
	for (; ms >= 50; ms -= 50) pit_wait_ticks((uint16_t)(PIT_HZ / 20));
	if (ms > 0) pit_wait_ticks((uint16_t)(PIT_HZ / 1000 * ms));
}

/* The number after "delay_ms=" on the command line, or 0. */
static uint32_t delay_ms(const struct hvm_start_info *info) {
	if (info->cmdline_paddr == 0) return 0;
	const char *c = (const char *)(uint32_t)info->cmdline_paddr;
	static const char key[] = "delay_ms=";
	for (; *c != '\0'; c++) {
		size_t n = sizeof(key) - 1;
		if (memcmp(c, key, n) != 0) continue;
		uint32_t v = 0;
		for (c += n; *c >= '0' && *c <= '9'; c++) v = v * 10 + (uint32_t)(*c - '0');
		return v;
	}
	return 0;
}

uint32_t kmain(const struct hvm_start_info *info) {
	uart_init();
	uint32_t ms = delay_ms(info);
	if (ms > 0) {
		printf("reboot: in %u ms\n", ms);
		wait_ms(ms);
	}
	printf("reboot: going down\n");
	outb(0x64, 0xfe);
	for (;;) __asm__ volatile("cli; hlt");
}
