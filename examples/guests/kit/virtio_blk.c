/*
 * virtio-blk through the kit driver: capacity, GET_ID, 8 batched 4 KiB reads checked against the pattern the
 * host wrote (byte at offset o is (o >> 9) ^ (o & 0xff)), 8 sectors written at sector 100 then a flush, and a
 * read past the end (IOERR). Exit status 0x20.
 */
#include "kit.h"
#include "virtio.h"

static struct virtq_desc desc[VQ_SIZE] __attribute__((aligned(16)));
static struct virtq_avail avail __attribute__((aligned(4)));
static struct virtq_used used __attribute__((aligned(8)));
static struct req_hdr hdr[16];
static uint8_t status[16];
static uint8_t data[8][4096] __attribute__((aligned(4096)));
static struct virtio_dev dev;

/* Chain i uses descriptors 3i..3i+2: header, data, status. */
static void prepare(int i, uint32_t type, uint64_t sector, void *buf, uint32_t len, int device_writes) {
	hdr[i].type = type;
	hdr[i].reserved = 0;
	hdr[i].sector = sector;
	status[i] = 0xff;
	int d = 3 * i;
	desc[d].addr = (uint32_t)&hdr[i];
	desc[d].len = sizeof(hdr[i]);
	desc[d].flags = VIRTQ_DESC_F_NEXT;
	if (len > 0) {
		desc[d].next = d + 1;
		desc[d + 1].addr = (uint32_t)buf;
		desc[d + 1].len = len;
		desc[d + 1].flags = VIRTQ_DESC_F_NEXT | (device_writes ? VIRTQ_DESC_F_WRITE : 0);
		desc[d + 1].next = d + 2;
	} else {
		desc[d].next = d + 2;
	}
	desc[d + 2].addr = (uint32_t)&status[i];
	desc[d + 2].len = 1;
	desc[d + 2].flags = VIRTQ_DESC_F_WRITE;
	virtio_submit(&dev, d);
}

static int run_batch(int n) {
	virtio_kick(&dev);
	return virtio_wait(&dev, n, 50000000);
}

uint32_t kmain(const struct hvm_start_info *info) {
	(void)info;
	uart_init();
	if (!virtio_find(0x1042, 0, &dev)) {
		printf("virtio_blk: no device\n");
		return 1;
	}
	uint8_t st = virtio_init(&dev, 1ull << BLK_F_FLUSH, desc, &avail, &used);
	uint64_t capacity = *(volatile uint32_t *)dev.device | ((uint64_t) * (volatile uint32_t *)(dev.device + 4) << 32);
	printf("virtio_blk: status 0x%x capacity %lu sectors\n", st, capacity);

	static char id[21];
	prepare(0, T_GET_ID, 0, id, 20, 1);
	int got = run_batch(1);
	printf("get_id: %d done, status %u, id '%s'\n", got, status[0], id);

	for (int i = 0; i < 8; i++) prepare(i, T_IN, (uint64_t)i * 8, data[i], 4096, 1);
	got = run_batch(8);
	int bad = 0, nok = 0;
	for (int i = 0; i < 8; i++) {
		if (status[i] == 0) nok++;
		for (uint32_t j = 0; j < 4096; j++) {
			uint32_t o = (uint32_t)i * 4096 + j;
			if (data[i][j] != (uint8_t)((o >> 9) ^ (o & 0xff))) bad++;
		}
	}
	printf("read: %d done, %d ok, %d bad bytes\n", got, nok, bad);

	for (uint32_t j = 0; j < 4096; j++) data[0][j] = (uint8_t)(0xa5 ^ j);
	prepare(0, T_OUT, 100, data[0], 4096, 0);
	got = run_batch(1);
	printf("write: %d done, status %u\n", got, status[0]);
	prepare(0, T_FLUSH, 0, 0, 0, 0);
	got = run_batch(1);
	printf("flush: %d done, status %u\n", got, status[0]);

	memset(data[1], 0, 4096);
	prepare(0, T_IN, 100, data[1], 4096, 1);
	prepare(1, T_IN, capacity, data[2], 512, 1);
	got = run_batch(2);
	printf("read back: %d done, status %u, %s; past the end: status %u\n", got, status[0],
	       memcmp(data[0], data[1], 4096) == 0 ? "same" : "different", status[1]);
	printf("virtio_blk: done\n");
	return 0x20;
}
