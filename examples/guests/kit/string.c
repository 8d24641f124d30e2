/* The memory and string routines the compiler and the guests need. */
#include "kit.h"

void *memset(void *dst, int c, size_t n) {
	uint8_t *d = dst;
	while (n-- > 0) *d++ = (uint8_t)c;
	return dst;
}

void *memcpy(void *dst, const void *src, size_t n) {
	uint8_t *d = dst;
	const uint8_t *s = src;
	while (n-- > 0) *d++ = *s++;
	return dst;
}

int memcmp(const void *a, const void *b, size_t n) {
	const uint8_t *x = a, *y = b;
	for (; n > 0; n--, x++, y++) {
		if (*x != *y) return *x < *y ? -1 : 1;
	}
	return 0;
}

size_t strlen(const char *s) {
	size_t n = 0;
	while (s[n] != '\0') n++;
	return n;
}
