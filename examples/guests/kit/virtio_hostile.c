/*
 * A hostile virtio-blk driver: a looping chain, buffers past RAM, an oversized length, descriptors in the
 * wrong direction, an oversized indirect table, a write to a read-only disk and an available index that jumps
 * past the queue size. After each, a good request must still succeed; after the jump, the device must ask for
 * a reset and work again once reset. Disk 0 is writable, disk 1 read-only; a virtio-rng must keep working.
 * Exit status 0x22.
 */
#include "kit.h"
#include "virtio.h"

#define F_INDIRECT 28

static struct virtq_desc desc[VQ_SIZE] __attribute__((aligned(16)));
static struct virtq_avail avail __attribute__((aligned(4)));
static struct virtq_used used __attribute__((aligned(8)));
static struct virtq_desc desc1[VQ_SIZE] __attribute__((aligned(16)));
static struct virtq_avail avail1 __attribute__((aligned(4)));
static struct virtq_used used1 __attribute__((aligned(8)));
static struct virtq_desc desc2[VQ_SIZE] __attribute__((aligned(16)));
static struct virtq_avail avail2 __attribute__((aligned(4)));
static struct virtq_used used2 __attribute__((aligned(8)));
static struct virtq_desc table[80] __attribute__((aligned(16)));
static struct req_hdr hdr[8];
static uint8_t status[8];
static uint8_t data[2][4096] __attribute__((aligned(4096)));
static struct virtio_dev blk, ro, rng;

static void set(struct virtq_desc *t, int i, uint32_t addr, uint32_t len, uint16_t flags, uint16_t next) {
	t[i].addr = addr;
	t[i].len = len;
	t[i].flags = flags;
	t[i].next = next;
}

/* A good request at descriptors d..d+2 using hdr/status slot s: header, data, status. */
static void request(struct virtq_desc *t, int d, int s, uint32_t type, uint64_t sector, void *buf) {
	hdr[s].type = type;
	hdr[s].sector = sector;
	status[s] = 0xff;
	set(t, d, (uint32_t)&hdr[s], 16, VIRTQ_DESC_F_NEXT, d + 1);
	set(t, d + 1, (uint32_t)buf, 512, VIRTQ_DESC_F_NEXT | (type == T_IN ? VIRTQ_DESC_F_WRITE : 0), d + 2);
	set(t, d + 2, (uint32_t)&status[s], 1, VIRTQ_DESC_F_WRITE, 0);
}

static int sector_ok(const uint8_t *b, uint32_t sector) {
	for (uint32_t j = 0; j < 512; j++)
		if (b[j] != (uint8_t)(sector ^ j)) return 0;
	return 1;
}

/* Submits a bad chain at head 0 and a good read at head 10, both in one notify; reports both. */
static void bad_then_good(const char *what) {
	uint16_t base = blk.used_seen;
	virtio_submit(&blk, 0);
	memset(data[1], 0, 512);
	request(desc, 10, 1, T_IN, 3, data[1]);
	virtio_submit(&blk, 10);
	virtio_kick(&blk);
	int got = virtio_wait(&blk, 2, 50000000);
	struct virtq_used_elem e = virtio_used(&blk, base);
	printf("%s: %d done, bad head %u len %u status 0x%x; good read status %u %s\n", what, got, e.id, e.len,
	       status[0], status[1], sector_ok(data[1], 3) ? "data ok" : "data BAD");
}

uint32_t kmain(const struct hvm_start_info *info) {
	(void)info;
	uart_init();
	if (!virtio_find(0x1042, 0, &blk) || !virtio_find(0x1042, 1, &ro) || !virtio_find(0x1044, 0, &rng)) {
		printf("hostile: devices missing\n");
		return 1;
	}
	printf("blk: status 0x%x\n", virtio_init(&blk, 1ull << F_INDIRECT, desc, &avail, &used));

	/* 1. a chain that loops: 0 -> 1 -> 0 */
	hdr[0].type = T_IN;
	hdr[0].sector = 0;
	status[0] = 0xff;
	set(desc, 0, (uint32_t)&hdr[0], 16, VIRTQ_DESC_F_NEXT, 1);
	set(desc, 1, (uint32_t)data[0], 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 0);
	bad_then_good("loop");

	/* 2. a buffer past the end of RAM */
	set(desc, 0, (uint32_t)&hdr[0], 16, VIRTQ_DESC_F_NEXT, 1);
	set(desc, 1, 0x7ff00000u, 4096, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
	set(desc, 2, (uint32_t)&status[0], 1, VIRTQ_DESC_F_WRITE, 0);
	bad_then_good("past-ram");

	/* 3. an oversized length */
	set(desc, 1, (uint32_t)data[0], 0xfffff000u, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
	bad_then_good("oversized");

	/* 4. wrong direction: a device-writable header before a readable buffer */
	set(desc, 0, (uint32_t)&hdr[0], 16, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
	set(desc, 1, (uint32_t)data[0], 512, VIRTQ_DESC_F_NEXT, 2);
	bad_then_good("direction");

	/* 5. an indirect table longer than the queue */
	for (int i = 0; i < 80; i++) set(table, i, (uint32_t)data[0], 8, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, i + 1);
	set(desc, 0, (uint32_t)table, sizeof(table), VIRTQ_DESC_F_INDIRECT, 0);
	bad_then_good("indirect-too-long");

	/* 6. a good request through an indirect table */
	request(table, 0, 2, T_IN, 5, data[0]);
	set(desc, 20, (uint32_t)table, 3 * sizeof(struct virtq_desc), VIRTQ_DESC_F_INDIRECT, 0);
	virtio_submit(&blk, 20);
	virtio_kick(&blk);
	int got = virtio_wait(&blk, 1, 50000000);
	printf("indirect: %d done, status %u %s\n", got, status[2], sector_ok(data[0], 5) ? "data ok" : "data BAD");

	/* 7. a write to the read-only disk */
	printf("ro: status 0x%x\n", virtio_init(&ro, 0, desc1, &avail1, &used1));
	request(desc1, 0, 3, T_OUT, 7, data[0]);
	virtio_submit(&ro, 0);
	virtio_kick(&ro);
	got = virtio_wait(&ro, 1, 50000000);
	printf("read-only write: %d done, status %u\n", got, status[3]);

	/* 8. the available index jumps past the queue size: the device must ask for a reset */
	avail.idx = (uint16_t)(blk.avail_idx + blk.qsize + 5);
	*(volatile uint16_t *)blk.notify = 0;
	uint8_t st = 0;
	for (uint32_t i = 0; i < 50000000 && (st & VIRTIO_STATUS_NEEDS_RESET) == 0; i++) st = virtio_status(&blk);
	printf("avail jump: status 0x%x isr 0x%x\n", st, *blk.isr);
	printf("reset: status 0x%x\n", virtio_init(&blk, 0, desc, &avail, &used));
	memset(data[1], 0, 512);
	request(desc, 0, 4, T_IN, 9, data[1]);
	virtio_submit(&blk, 0);
	virtio_kick(&blk);
	got = virtio_wait(&blk, 1, 50000000);
	printf("after reset: %d done, status %u %s\n", got, status[4], sector_ok(data[1], 9) ? "data ok" : "data BAD");

	/* 9. the guest moves the BAR: the old address goes dead, the new one serves */
	uint32_t old_bar = pci_read32(0, blk.slot, 0, 0x10) & ~0xfu;
	pci_write16(0, blk.slot, 0, 0x04, pci_read16(0, blk.slot, 0, 0x04) & ~0x2);
	uint8_t off_read = *(volatile uint8_t *)(old_bar + 20);
	pci_write32(0, blk.slot, 0, 0x10, 0xd0000000u);
	if (!virtio_find(0x1042, 0, &blk)) return 3;
	uint8_t old_read = *(volatile uint8_t *)(old_bar + 20);
	virtio_init(&blk, 0, desc, &avail, &used);
	memset(data[1], 0, 512);
	request(desc, 0, 4, T_IN, 11, data[1]);
	virtio_submit(&blk, 0);
	virtio_kick(&blk);
	got = virtio_wait(&blk, 1, 50000000);
	printf("moved BAR: decode off reads 0x%x, old address 0x%x, new at 0x%x: %d done, status %u %s\n", off_read,
	       old_read, (uint32_t)blk.common, got, status[4], sector_ok(data[1], 11) ? "data ok" : "data BAD");

	/* 10. the entropy device never noticed */
	virtio_init(&rng, 0, desc2, &avail2, &used2);
	set(desc2, 0, (uint32_t)data[0], 64, VIRTQ_DESC_F_WRITE, 0);
	uint16_t base = rng.used_seen;
	virtio_submit(&rng, 0);
	virtio_kick(&rng);
	got = virtio_wait(&rng, 1, 50000000);
	printf("rng: %d done, %u bytes\n", got, virtio_used(&rng, base).len);
	printf("hostile: done\n");
	return 0x22;
}
