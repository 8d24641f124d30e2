/* The test-guest kit's helper library: console, formatted output, exit port, PCI config, string routines. */
#ifndef KIT_H
#define KIT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "pvh.h"

/* uart.c: the 16550 at COM1, polled. */
#define COM1_BASE 0x3f8
void uart_init(void);
void uart_putc(char c);
void uart_puts(const char *s);

/*
 * printf.c: a small printf on the UART. Conversions: %s %c %d %u %x %p %%, with an optional '0' flag and
 * width; the 'l' (or 'll') modifier means a 64-bit argument (uint64_t / int64_t), e.g. %lx, %lu, %ld.
 * That differs from the C library's 32-bit `long` on i386, so there is no format attribute to check calls.
 */
int printf(const char *fmt, ...);
int vprintf(const char *fmt, va_list ap);

/* exit.c: the isa-debug-exit port; QEMU then exits with (status << 1) | 1. Never returns. */
#define EXIT_PORT 0xf4
void exit(uint32_t status) __attribute__((noreturn));

/* pci.c: PCI configuration mechanism #1 (ports 0xcf8 / 0xcfc). */
#define PCI_CONFIG_ADDRESS 0xcf8
#define PCI_CONFIG_DATA 0xcfc
uint8_t pci_read8(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off);
uint16_t pci_read16(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off);
uint32_t pci_read32(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off);
void pci_write8(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off, uint8_t v);
void pci_write16(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off, uint16_t v);
void pci_write32(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off, uint32_t v);

/* One function found on a bus. */
struct pci_function {
	uint8_t bus, dev, fn;
	uint16_t vendor, device;
	uint8_t class_code, subclass, prog_if, header_type;
};

/* Calls visit for each present function on `bus` (all 8 functions of multi-function devices); returns the count. */
int pci_scan_bus(uint8_t bus, void (*visit)(const struct pci_function *f, void *ctx), void *ctx);

/*
 * irq.c: legacy interrupts. irq_route_isa points vector 0x20 + irq (irq < 8) at `stub`, loads the IDT,
 * software-enables the local APIC with LINT0 as ExtINT, remaps the PICs and unmasks only that line.
 * uart_enable_rx_irq turns on COM1's received-data interrupt (and OUT2, which gates IRQ 4 on PCs).
 */
void irq_route_isa(int irq, void (*stub)(void));
void uart_enable_rx_irq(void);

/* string.c */
void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

/* Each guest defines this; crt0.S calls it with %ebx from the PVH entry and exits with its result. */
uint32_t kmain(const struct hvm_start_info *info);

#endif
