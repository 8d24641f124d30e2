/* The kit's virtio-PCI modern driver (see virtio.h). */
#include "kit.h"
#include "virtio.h"

#define barrier() __asm__ volatile("" ::: "memory")

/* Common configuration register offsets. */
#define C_DFSELECT 0
#define C_DF 4
#define C_GFSELECT 8
#define C_GF 12
#define C_STATUS 20
#define C_QSELECT 22
#define C_QSIZE 24
#define C_QENABLE 28
#define C_QNOTIFYOFF 30
#define C_QDESC 32
#define C_QDRIVER 40
#define C_QDEVICE 48

static inline void w8(volatile uint8_t *b, int off, uint8_t v) { *(volatile uint8_t *)(b + off) = v; }
static inline void w16(volatile uint8_t *b, int off, uint16_t v) { *(volatile uint16_t *)(b + off) = v; }
static inline void w32(volatile uint8_t *b, int off, uint32_t v) { *(volatile uint32_t *)(b + off) = v; }
static inline uint8_t r8(volatile uint8_t *b, int off) { return *(volatile uint8_t *)(b + off); }
static inline uint16_t r16(volatile uint8_t *b, int off) { return *(volatile uint16_t *)(b + off); }
static inline uint32_t r32(volatile uint8_t *b, int off) { return *(volatile uint32_t *)(b + off); }

static uint32_t bar_address(uint8_t slot, uint8_t bar) {
	uint8_t off = 0x10 + 4 * bar;
	uint32_t lo = pci_read32(0, slot, 0, off);
	uint32_t hi = (lo & 6) == 4 ? pci_read32(0, slot, 0, off + 4) : 0;
	if ((lo & ~0xfu) == 0 || hi != 0) {
		/* unassigned or above 4 GiB (unreachable without paging): place it ourselves */
		lo = 0xe0000000u + ((uint32_t)slot << 20) + ((uint32_t)bar << 16);
		pci_write32(0, slot, 0, off, lo);
		if ((pci_read32(0, slot, 0, off) & 6) == 4) pci_write32(0, slot, 0, off + 4, 0);
	}
	return pci_read32(0, slot, 0, off) & ~0xfu;
}

int virtio_find(uint16_t device_id, int nth, struct virtio_dev *d) {
	for (uint8_t slot = 0; slot < 32; slot++) {
		uint32_t id = pci_read32(0, slot, 0, 0);
		if ((id & 0xffff) != 0x1af4 || (id >> 16) != device_id) continue;
		if (nth-- > 0) continue;
		memset(d, 0, sizeof(*d));
		d->slot = slot;
		uint8_t cap = pci_read8(0, slot, 0, 0x34);
		while (cap != 0) {
			if (pci_read8(0, slot, 0, cap) == 0x09) {
				uint8_t type = pci_read8(0, slot, 0, cap + 3);
				uint8_t bar = pci_read8(0, slot, 0, cap + 4);
				uint32_t off = pci_read32(0, slot, 0, cap + 8);
				volatile uint8_t *p = (volatile uint8_t *)(bar_address(slot, bar) + off);
				if (type == 1) d->common = p;
				else if (type == 2) {
					d->notify = p;
					d->notify_mult = pci_read32(0, slot, 0, cap + 16);
				} else if (type == 3) d->isr = p;
				else if (type == 4) d->device = p;
			}
			cap = pci_read8(0, slot, 0, cap + 1);
		}
		/* memory decoding and bus mastering */
		pci_write16(0, slot, 0, 0x04, pci_read16(0, slot, 0, 0x04) | 0x6);
		return d->common != 0 && d->notify != 0 && d->isr != 0;
	}
	return 0;
}

uint8_t virtio_status(struct virtio_dev *d) { return r8(d->common, C_STATUS); }

uint8_t virtio_init(struct virtio_dev *d, uint64_t features, struct virtq_desc *desc, struct virtq_avail *avail,
		    struct virtq_used *used) {
	volatile uint8_t *c = d->common;
	w8(c, C_STATUS, 0);
	while (r8(c, C_STATUS) != 0) {
	}
	w8(c, C_STATUS, VIRTIO_STATUS_ACK);
	w8(c, C_STATUS, VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER);
	features |= 1ull << VIRTIO_F_VERSION_1;
	w32(c, C_DFSELECT, 0);
	uint64_t offered = r32(c, C_DF);
	w32(c, C_DFSELECT, 1);
	offered |= (uint64_t)r32(c, C_DF) << 32;
	features &= offered;
	w32(c, C_GFSELECT, 0);
	w32(c, C_GF, (uint32_t)features);
	w32(c, C_GFSELECT, 1);
	w32(c, C_GF, (uint32_t)(features >> 32));
	w8(c, C_STATUS, VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	if ((r8(c, C_STATUS) & VIRTIO_STATUS_FEATURES_OK) == 0) return r8(c, C_STATUS);
	w16(c, C_QSELECT, 0);
	uint16_t max = r16(c, C_QSIZE);
	d->qsize = max < VQ_SIZE ? max : VQ_SIZE;
	w16(c, C_QSIZE, d->qsize);
	uint16_t notify_off = r16(c, C_QNOTIFYOFF);
	d->notify += notify_off * d->notify_mult;
	memset(desc, 0, sizeof(struct virtq_desc) * VQ_SIZE);
	memset(avail, 0, sizeof(*avail));
	memset(used, 0, sizeof(*used));
	d->desc = desc;
	d->avail = avail;
	d->used = used;
	d->avail_idx = 0;
	d->used_seen = 0;
	w32(c, C_QDESC, (uint32_t)desc);
	w32(c, C_QDESC + 4, 0);
	w32(c, C_QDRIVER, (uint32_t)avail);
	w32(c, C_QDRIVER + 4, 0);
	w32(c, C_QDEVICE, (uint32_t)used);
	w32(c, C_QDEVICE + 4, 0);
	w16(c, C_QENABLE, 1);
	w8(c, C_STATUS,
	   VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	return r8(c, C_STATUS);
}

void virtio_submit(struct virtio_dev *d, uint16_t head) {
	/* the ring has qsize slots; the driver uses the first qsize of VQ_SIZE */
	d->avail->ring[d->avail_idx % d->qsize] = head;
	d->avail_idx++;
}

void virtio_kick(struct virtio_dev *d) {
	barrier();
	d->avail->idx = d->avail_idx;
	barrier();
	w16(d->notify, 0, 0);
}

int virtio_wait(struct virtio_dev *d, int n, uint32_t spins) {
	uint16_t want = (uint16_t)(d->used_seen + n);
	for (uint32_t i = 0; i < spins; i++) {
		barrier();
		if ((uint16_t)(*(volatile uint16_t *)&d->used->idx - want) < 0x8000) break;
		__asm__ volatile("pause");
	}
	barrier();
	int got = (uint16_t)(*(volatile uint16_t *)&d->used->idx - d->used_seen);
	d->used_seen = *(volatile uint16_t *)&d->used->idx;
	return got;
}

struct virtq_used_elem virtio_used(struct virtio_dev *d, uint16_t idx) {
	return d->used->ring[idx % d->qsize];
}
