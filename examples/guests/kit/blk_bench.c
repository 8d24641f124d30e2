/*
 * virtio-blk throughput for bench/blk.ts: writes then reads the whole disk in 64 KiB requests, 16 per notify,
 * then reads 4 KiB requests (16 per notify) for 8 MiB. Prints the TSC cycles of each phase. Exit 0x24.
 */
#include "kit.h"
#include "virtio.h"

#define BATCH 16

static struct virtq_desc desc[VQ_SIZE] __attribute__((aligned(16)));
static struct virtq_avail avail __attribute__((aligned(4)));
static struct virtq_used used __attribute__((aligned(8)));
static struct req_hdr hdr[BATCH];
static uint8_t status[BATCH];
static uint8_t data[BATCH][65536] __attribute__((aligned(4096)));
static struct virtio_dev dev;

static inline uint64_t rdtsc(void) {
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

/* Runs `count` requests of `bytes` each from sector 0 on, BATCH per notify; returns the failures. */
static uint32_t phase(uint32_t type, uint32_t bytes, uint32_t count) {
	uint32_t failed = 0;
	uint64_t sector = 0;
	for (uint32_t done = 0; done < count;) {
		uint32_t n = count - done < BATCH ? count - done : BATCH;
		for (uint32_t i = 0; i < n; i++) {
			hdr[i].type = type;
			hdr[i].sector = sector;
			sector += bytes / 512;
			status[i] = 0xff;
			int d = 3 * i;
			desc[d].addr = (uint32_t)&hdr[i];
			desc[d].len = 16;
			desc[d].flags = VIRTQ_DESC_F_NEXT;
			desc[d].next = d + 1;
			desc[d + 1].addr = (uint32_t)data[i];
			desc[d + 1].len = bytes;
			desc[d + 1].flags = VIRTQ_DESC_F_NEXT | (type == 0 ? VIRTQ_DESC_F_WRITE : 0);
			desc[d + 1].next = d + 2;
			desc[d + 2].addr = (uint32_t)&status[i];
			desc[d + 2].len = 1;
			desc[d + 2].flags = VIRTQ_DESC_F_WRITE;
			virtio_submit(&dev, d);
		}
		virtio_kick(&dev);
		virtio_wait(&dev, n, 0xffffffffu);
		for (uint32_t i = 0; i < n; i++) failed += status[i] != 0;
		done += n;
	}
	return failed;
}

uint32_t kmain(const struct hvm_start_info *info) {
	(void)info;
	uart_init();
	if (!virtio_find(0x1042, 0, &dev)) return 1;
	virtio_init(&dev, 0, desc, &avail, &used);
	uint64_t capacity = *(volatile uint32_t *)dev.device;
	uint32_t big = (uint32_t)(capacity * 512 / 65536);
	uint64_t t0 = rdtsc();
	uint32_t f1 = phase(1, 65536, big);
	uint64_t t1 = rdtsc();
	uint32_t f2 = phase(0, 65536, big);
	uint64_t t2 = rdtsc();
	uint32_t f3 = phase(0, 4096, 2048);
	uint64_t t3 = rdtsc();
	printf("bench: write64k %u reqs %lu cycles, read64k %u reqs %lu cycles, read4k 2048 reqs %lu cycles, %u failed\n",
	       big, t1 - t0, big, t2 - t1, t3 - t2, f1 + f2 + f3);
	return 0x24;
}
