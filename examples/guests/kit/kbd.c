/*
 * A guest with a keyboard driver (for Ctrl-Alt-Del from the host): it sets up the i8042 and its keyboard as
 * an OS driver would — controller self-test, keyboard-port test, aux-port test (there is no mouse), keyboard
 * reset, identify, enable scanning, then the keyboard interrupt in the configuration byte — prints
 * "kbd: ready", and sleeps in HLT. On each IRQ 1 (through the 8259 PIC) it prints every scancode it reads
 * from port 0x60; once Ctrl+Alt+Del has been pressed and every key released again, it resets the machine
 * through the i8042 (0xFE), as Linux does for Ctrl-Alt-Del with reboot=k. It never exits by itself.
 *
 * With `kbd.deaf` on the command line it sets the keyboard up just the same but then sleeps with interrupts
 * off, never reading a key: a guest vmd can ask to shut down that never answers (for the stop timeout).
 *
 * Like echo.c, the interrupt stub does not return with iret (some KVM hosts cannot emulate a 32-bit iret): it
 * starts over on a fresh stack in the idle loop.
 */
#include "io.h"
#include "kit.h"

#define KBC_DATA 0x60
#define KBC_STATUS 0x64
#define KBC_CMD 0x64

unsigned char kbd_stack[4096] __attribute__((aligned(16)));

static int wait_output(void) {
	for (unsigned i = 0; i < 10000000; i++) {
		if (inb(KBC_STATUS) & 0x01) return inb(KBC_DATA);
	}
	return -1;
}

static int command(uint8_t cmd) {
	outb(KBC_CMD, cmd);
	return wait_output();
}

static int keyboard(uint8_t cmd) {
	outb(KBC_DATA, cmd);
	return wait_output();
}

static void fail(const char *what, int got) {
	printf("kbd: %s failed (0x%x)\n", what, got);
	exit(1);
}

void kbd_idle(void) __attribute__((noreturn));
void kbd_idle(void) {
	for (;;) __asm__ volatile("sti; hlt; cli");
}

static int ctrl, alt, armed, extended;

void kbd_handler(void) {
	while (inb(KBC_STATUS) & 0x01) {
		uint8_t b = inb(KBC_DATA);
		printf("scancode 0x%02x\n", b);
		if (b == 0xe0) {
			extended = 1;
			continue;
		}
		int up = (b & 0x80) != 0;
		uint8_t key = b & 0x7f;
		if (key == 0x1d) ctrl = !up;
		else if (key == 0x38) alt = !up;
		else if (key == 0x53 && extended && !up && ctrl && alt) armed = 1;
		extended = 0;
		if (armed && !ctrl && !alt) {
			printf("kbd: ctrl-alt-del, resetting\n");
			outb(KBC_CMD, 0xfe);
			for (;;) __asm__ volatile("cli; hlt");
		}
	}
	outb(0x20, 0x20); /* EOI to the master PIC */
}

__asm__(".text\n.globl kbd_stub\nkbd_stub:\n\tcld\n\tmovl $kbd_stack+4096, %esp\n\tcall kbd_handler\n"
	"\tjmp kbd_idle\n");
extern void kbd_stub(void);

/* True when `word` appears on the command line. */
static int cmdline_has(const struct hvm_start_info *info, const char *word) {
	if (info->cmdline_paddr == 0) return 0;
	size_t n = strlen(word);
	for (const char *c = (const char *)(uint32_t)info->cmdline_paddr; *c != '\0'; c++) {
		if (memcmp(c, word, n) == 0) return 1;
	}
	return 0;
}

uint32_t kmain(const struct hvm_start_info *info) {
	uart_init();
	irq_route_isa(1, kbd_stub); /* the CPU keeps interrupts off until kbd_idle */

	outb(KBC_CMD, 0xad); /* keyboard port off while setting up */
	while (inb(KBC_STATUS) & 0x01) (void)inb(KBC_DATA);
	int ctr = command(0x20);
	if (ctr < 0) fail("read configuration", ctr);
	outb(KBC_CMD, 0x60);
	outb(KBC_DATA, (uint8_t)(ctr & ~0x03)); /* polled while setting up: interrupts off */
	int self = command(0xaa), port = command(0xab), aux = command(0xa9);
	if (self != 0x55) fail("controller self-test", self);
	if (port != 0x00) fail("keyboard port test", port);
	printf("kbd: self-test 0x%x, port test 0x%x, aux test 0x%x\n", self, port, aux);
	outb(KBC_CMD, 0xae);

	int ack = keyboard(0xff), bat = wait_output();
	if (ack != 0xfa || bat != 0xaa) fail("keyboard reset", bat);
	ack = keyboard(0xf2);
	int id0 = wait_output(), id1 = wait_output();
	if (ack != 0xfa) fail("identify", ack);
	if ((ack = keyboard(0xed)) != 0xfa || (ack = keyboard(0x00)) != 0xfa) fail("set leds", ack);
	if ((ack = keyboard(0xf4)) != 0xfa) fail("enable scanning", ack);
	outb(KBC_CMD, 0x60);
	outb(KBC_DATA, (uint8_t)((ctr & ~0x10) | 0x01)); /* keyboard interrupt on */
	printf("kbd: ready, id 0x%x 0x%x\n", id0, id1);
	if (cmdline_has(info, "kbd.deaf")) {
		printf("kbd: deaf: ignoring every key\n");
		for (;;) __asm__ volatile("cli; hlt");
	}
	kbd_idle();
}
