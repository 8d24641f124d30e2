/* A small virtio 1.x PCI "modern" driver for kit guests: one split queue per device, polled completion. */
#ifndef KIT_VIRTIO_H
#define KIT_VIRTIO_H

#include <stdint.h>

#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTIO_STATUS_ACK 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 64
#define VIRTIO_F_VERSION_1 32
#define VQ_SIZE 64

/* virtio-blk: request types, the flush feature bit, and the header every request starts with */
#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define T_GET_ID 8
#define BLK_F_FLUSH 9

struct req_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct virtq_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[VQ_SIZE];
	uint16_t used_event;
};

struct virtq_used_elem {
	uint32_t id;
	uint32_t len;
};

struct virtq_used {
	uint16_t flags;
	uint16_t idx;
	struct virtq_used_elem ring[VQ_SIZE];
	uint16_t avail_event;
};

struct virtio_dev {
	uint8_t slot;
	volatile uint8_t *common;
	volatile uint8_t *isr;
	volatile uint8_t *device;
	volatile uint8_t *notify;
	uint32_t notify_mult;
	uint16_t qsize;
	uint16_t avail_idx;
	uint16_t used_seen;
	struct virtq_desc *desc;
	struct virtq_avail *avail;
	struct virtq_used *used;
};

/*
 * Finds the `nth` (from 0) virtio function with PCI device id `device_id` on bus 0, maps its capabilities and
 * turns on memory decoding and bus mastering; 0 if absent.
 */
int virtio_find(uint16_t device_id, int nth, struct virtio_dev *d);
/*
 * Resets the device, negotiates `features` (VERSION_1 is added), sets up queue 0 over the given rings and
 * sets DRIVER_OK. Returns the device status read back (has FEATURES_OK and DRIVER_OK when all went well).
 */
uint8_t virtio_init(struct virtio_dev *d, uint64_t features, struct virtq_desc *desc, struct virtq_avail *avail,
		    struct virtq_used *used);
/* Reads the device status. */
uint8_t virtio_status(struct virtio_dev *d);
/* Makes descriptor chain `head` available (no notify). */
void virtio_submit(struct virtio_dev *d, uint16_t head);
/* Notifies queue 0. */
void virtio_kick(struct virtio_dev *d);
/* Waits (polling, up to ~`spins` checks) until `n` more used entries appeared; returns how many did. */
int virtio_wait(struct virtio_dev *d, int n, uint32_t spins);
/* The used element `i` places after the last one seen before the previous wait. */
struct virtq_used_elem virtio_used(struct virtio_dev *d, uint16_t idx);

#endif
