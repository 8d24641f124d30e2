/*
 * A small printf on the UART. 64-bit decimal conversion uses repeated subtraction of powers of ten, so the
 * kit needs no libgcc (a 32-bit build would otherwise call __udivdi3).
 */
#include "kit.h"

static const uint64_t pow10[20] = {
	1ull,
	10ull,
	100ull,
	1000ull,
	10000ull,
	100000ull,
	1000000ull,
	10000000ull,
	100000000ull,
	1000000000ull,
	10000000000ull,
	100000000000ull,
	1000000000000ull,
	10000000000000ull,
	100000000000000ull,
	1000000000000000ull,
	10000000000000000ull,
	100000000000000000ull,
	1000000000000000000ull,
	10000000000000000000ull,
};

/* Writes the digits of v into buf (most significant first); returns how many. buf holds >= 20 chars. */
static int format_decimal(uint64_t v, char *buf) {
	int n = 0;
	int started = 0;
	for (int i = 19; i >= 0; i--) {
		char digit = '0';
		while (v >= pow10[i]) {
			v -= pow10[i];
			digit++;
		}
		if (digit != '0' || started || i == 0) {
			buf[n++] = digit;
			started = 1;
		}
	}
	return n;
}

static int format_hex(uint64_t v, char *buf) {
	static const char digits[] = "0123456789abcdef";
	char tmp[16];
	int n = 0;
	do {
		tmp[n++] = digits[v & 0xf];
		v >>= 4;
	} while (v != 0);
	for (int i = 0; i < n; i++) buf[i] = tmp[n - 1 - i];
	return n;
}

/* Emits body (len chars) after sign, padded to width with pad; returns chars written. */
static int emit(const char *sign, const char *body, int len, int width, char pad) {
	int written = 0;
	int total = len + (int)strlen(sign);
	if (pad == '0') {
		for (const char *s = sign; *s != '\0'; s++, written++) uart_putc(*s);
	}
	for (; total < width; total++, written++) uart_putc(pad);
	if (pad != '0') {
		for (const char *s = sign; *s != '\0'; s++, written++) uart_putc(*s);
	}
	for (int i = 0; i < len; i++, written++) uart_putc(body[i]);
	return written;
}

int vprintf(const char *fmt, va_list ap) {
	int written = 0;
	char buf[24];
	for (; *fmt != '\0'; fmt++) {
		if (*fmt != '%') {
			uart_putc(*fmt);
			written++;
			continue;
		}
		fmt++;
		char pad = ' ';
		int width = 0;
		int is64 = 0;
		if (*fmt == '0') {
			pad = '0';
			fmt++;
		}
		while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (*fmt++ - '0');
		while (*fmt == 'l') {
			is64 = 1;
			fmt++;
		}
		switch (*fmt) {
		case 'd': {
			int64_t v = is64 ? va_arg(ap, int64_t) : va_arg(ap, int32_t);
			uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
			written += emit(v < 0 ? "-" : "", buf, format_decimal(mag, buf), width, pad);
			break;
		}
		case 'u': {
			uint64_t v = is64 ? va_arg(ap, uint64_t) : va_arg(ap, uint32_t);
			written += emit("", buf, format_decimal(v, buf), width, pad);
			break;
		}
		case 'x': {
			uint64_t v = is64 ? va_arg(ap, uint64_t) : va_arg(ap, uint32_t);
			written += emit("", buf, format_hex(v, buf), width, pad);
			break;
		}
		case 'p': {
			uint32_t v = (uint32_t)(uintptr_t)va_arg(ap, void *);
			written += emit("0x", buf, format_hex(v, buf), width, pad);
			break;
		}
		case 'c':
			buf[0] = (char)va_arg(ap, int);
			written += emit("", buf, 1, width, pad);
			break;
		case 's': {
			const char *s = va_arg(ap, const char *);
			if (s == NULL) s = "(null)";
			written += emit("", s, (int)strlen(s), width, ' ');
			break;
		}
		case '%':
			uart_putc('%');
			written++;
			break;
		case '\0':
			return written;
		default:
			uart_putc('%');
			uart_putc(*fmt);
			written += 2;
			break;
		}
	}
	return written;
}

int printf(const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	int n = vprintf(fmt, ap);
	va_end(ap);
	return n;
}
