/* Polled output on the 16550 UART at COM1. */
#include "io.h"
#include "kit.h"

#define UART_THR 0 /* transmit holding register (DLAB=0) */
#define UART_DLL 0 /* divisor latch low (DLAB=1) */
#define UART_IER 1 /* interrupt enable (DLAB=0) */
#define UART_DLM 1 /* divisor latch high (DLAB=1) */
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define LCR_DLAB 0x80
#define LCR_8N1 0x03
#define LSR_THRE 0x20

/* 115200 baud, 8N1, FIFOs on, no interrupts. */
void uart_init(void) {
	outb(COM1_BASE + UART_IER, 0);
	outb(COM1_BASE + UART_LCR, LCR_DLAB);
	outb(COM1_BASE + UART_DLL, 1);
	outb(COM1_BASE + UART_DLM, 0);
	outb(COM1_BASE + UART_LCR, LCR_8N1);
	outb(COM1_BASE + UART_FCR, 0x07);
	outb(COM1_BASE + UART_MCR, 0x03);
}

void uart_putc(char c) {
	while ((inb(COM1_BASE + UART_LSR) & LSR_THRE) == 0) {
	}
	outb(COM1_BASE + UART_THR, (uint8_t)c);
}

void uart_puts(const char *s) {
	while (*s != '\0') uart_putc(*s++);
}
