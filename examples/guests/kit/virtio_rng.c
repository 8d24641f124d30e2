/* virtio-rng through the kit driver: 4 KiB of entropy in one buffer, checked not to be constant. Exit 0x21. */
#include "kit.h"
#include "virtio.h"

static struct virtq_desc desc[VQ_SIZE] __attribute__((aligned(16)));
static struct virtq_avail avail __attribute__((aligned(4)));
static struct virtq_used used __attribute__((aligned(8)));
static uint8_t buf[4096];
static struct virtio_dev dev;

uint32_t kmain(const struct hvm_start_info *info) {
	(void)info;
	uart_init();
	if (!virtio_find(0x1044, 0, &dev)) {
		printf("virtio_rng: no device\n");
		return 1;
	}
	uint8_t st = virtio_init(&dev, 0, desc, &avail, &used);
	printf("virtio_rng: status 0x%x\n", st);
	uint32_t total = 0;
	/* a device may fill less than asked: ask until 4 KiB arrived */
	for (int round = 0; round < 64 && total < sizeof(buf); round++) {
		desc[0].addr = (uint32_t)(buf + total);
		desc[0].len = sizeof(buf) - total;
		desc[0].flags = VIRTQ_DESC_F_WRITE;
		uint16_t base = dev.used_seen;
		virtio_submit(&dev, 0);
		virtio_kick(&dev);
		if (virtio_wait(&dev, 1, 50000000) != 1) break;
		total += virtio_used(&dev, base).len;
	}
	static uint8_t seen[256];
	int distinct = 0;
	for (uint32_t i = 0; i < total; i++) {
		if (!seen[buf[i]]) distinct++;
		seen[buf[i]] = 1;
	}
	printf("virtio_rng: %u bytes, %s\n", total, distinct > 128 ? "not constant" : "suspicious");
	return 0x21;
}
