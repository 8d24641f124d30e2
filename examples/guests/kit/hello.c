/* The smallest kit guest: a fixed banner, one formatted line, exit status 0x10. */
#include "kit.h"

uint32_t kmain(const struct hvm_start_info *info) {
	(void)info;
	uart_init();
	printf("kit hello: ok\n");
	printf("printf: %d %u %x %lx %lu %c %s %04x|%5d|\n", -42, 4000000000u, 0xbeefu, 0x123456789abcdef0ull,
	       18446744073709551615ull, 'Z', "str", 0x2au, 7);
	return 0x10;
}
