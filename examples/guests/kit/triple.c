/* A guest that triple-faults: with an empty IDT, ud2 raises #UD, which cannot be delivered (#GP), nor can
 * that (#DF), so the CPU shuts down. For `vmd run`'s exit status and register dump after a triple fault. */
#include "io.h"
#include "kit.h"

struct idt_pointer {
	uint16_t limit;
	uint32_t base;
} __attribute__((packed));

static const struct idt_pointer empty_idt = { 0, 0 };

uint32_t kmain(const struct hvm_start_info *info) {
	(void)info;
	uart_init();
	printf("triple: faulting\n");
	__asm__ volatile("lidt %0\n\tud2" : : "m"(empty_idt));
	for (;;) __asm__ volatile("cli; hlt");
}
