/*
 * virtio-net through a small two-queue driver: reads its MAC, gets an address by DHCP (DISCOVER, OFFER,
 * REQUEST, ACK) unless the cmdline gives one ("ip=a.b.c.d"), then answers ARP requests and ICMP echo
 * requests for that address until it has answered "pings=N" echoes (default 3); with "listen" it also prints
 * the source of each frame of ethertype 0x88b5 it hears. "hostile" first sends frames the device must drop;
 * "bench=N" sends N full-size frames instead of serving. Exit 0x26; 1 when no device or no lease.
 */
#include "kit.h"
#include "virtio.h"

#define barrier() __asm__ volatile("" ::: "memory")
#define NET_HDR 12
#define BUF 2048
#define NRX 16

struct queue {
	struct virtq_desc desc[VQ_SIZE] __attribute__((aligned(16)));
	struct virtq_avail avail __attribute__((aligned(4)));
	struct virtq_used used __attribute__((aligned(8)));
	volatile uint8_t *notify;
	uint16_t qsize, avail_idx, used_seen;
};

static struct queue rxq __attribute__((aligned(4096))), txq __attribute__((aligned(4096)));
static uint8_t rxbuf[NRX][BUF];
static uint8_t txbuf[BUF];
static struct virtio_dev dev;
static uint8_t mac[6];
static uint32_t my_ip, router_ip, server_ip;
static uint32_t xid = 0x766d6431;

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static void put16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v & 0xff; }
static void put32(uint8_t *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }

static uint16_t csum(const uint8_t *p, uint32_t n) {
	uint32_t s = 0;
	for (uint32_t i = 0; i + 1 < n; i += 2) s += get16(p + i);
	if (n & 1) s += (uint32_t)p[n - 1] << 8;
	while (s >> 16) s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static void print_ip(const char *what, uint32_t ip) {
	printf("%s %u.%u.%u.%u", what, ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
}

static int setup_queue(struct queue *q, uint16_t index) {
	volatile uint8_t *c = dev.common;
	*(volatile uint16_t *)(c + 22) = index;
	uint16_t max = *(volatile uint16_t *)(c + 24);
	if (max == 0) return 0;
	q->qsize = max < VQ_SIZE ? max : VQ_SIZE;
	*(volatile uint16_t *)(c + 24) = q->qsize;
	q->notify = dev.notify + *(volatile uint16_t *)(c + 30) * dev.notify_mult;
	*(volatile uint32_t *)(c + 32) = (uint32_t)q->desc;
	*(volatile uint32_t *)(c + 36) = 0;
	*(volatile uint32_t *)(c + 40) = (uint32_t)&q->avail;
	*(volatile uint32_t *)(c + 44) = 0;
	*(volatile uint32_t *)(c + 48) = (uint32_t)&q->used;
	*(volatile uint32_t *)(c + 52) = 0;
	*(volatile uint16_t *)(c + 28) = 1;
	return 1;
}

static void submit(struct queue *q, uint16_t head, uint16_t index) {
	q->avail.ring[q->avail_idx % q->qsize] = head;
	q->avail_idx++;
	barrier();
	q->avail.idx = q->avail_idx;
	barrier();
	*(volatile uint16_t *)q->notify = index;
}

static int init(void) {
	volatile uint8_t *c = dev.common;
	c[20] = 0;
	while (c[20] != 0) {
	}
	c[20] = VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER;
	*(volatile uint32_t *)(c + 8) = 0;
	*(volatile uint32_t *)(c + 12) = (1u << 5) | (1u << 16); /* MAC, STATUS */
	*(volatile uint32_t *)(c + 8) = 1;
	*(volatile uint32_t *)(c + 12) = 1; /* VERSION_1 */
	c[20] = VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK;
	if ((c[20] & VIRTIO_STATUS_FEATURES_OK) == 0) return 0;
	if (!setup_queue(&rxq, 0) || !setup_queue(&txq, 1)) return 0;
	c[20] = VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK;
	for (int i = 0; i < 6; i++) mac[i] = dev.device[i];
	for (uint16_t i = 0; i < NRX; i++) {
		rxq.desc[i].addr = (uint32_t)rxbuf[i];
		rxq.desc[i].len = BUF;
		rxq.desc[i].flags = VIRTQ_DESC_F_WRITE;
		rxq.avail.ring[rxq.avail_idx++ % rxq.qsize] = i;
	}
	barrier();
	rxq.avail.idx = rxq.avail_idx;
	barrier();
	*(volatile uint16_t *)rxq.notify = 0;
	return (c[20] & VIRTIO_STATUS_DRIVER_OK) != 0;
}

/* Sends the frame in txbuf + NET_HDR (len bytes) and waits for the device to take it. */
static void send(uint32_t len) {
	memset(txbuf, 0, NET_HDR);
	txq.desc[0].addr = (uint32_t)txbuf;
	txq.desc[0].len = NET_HDR + len;
	txq.desc[0].flags = 0;
	submit(&txq, 0, 1);
	for (uint32_t i = 0; i < 100000000; i++) {
		barrier();
		if (*(volatile uint16_t *)&txq.used.idx != txq.used_seen) break;
		__asm__ volatile("pause");
	}
	txq.used_seen = *(volatile uint16_t *)&txq.used.idx;
}

/* Waits up to `spins` for a received frame; returns its buffer index (frame at +NET_HDR), or -1. */
static int receive(uint32_t spins, uint32_t *len) {
	for (uint32_t i = 0; i < spins; i++) {
		barrier();
		if (*(volatile uint16_t *)&rxq.used.idx != rxq.used_seen) {
			struct virtq_used_elem e = rxq.used.ring[rxq.used_seen % rxq.qsize];
			rxq.used_seen++;
			*len = e.len < NET_HDR ? 0 : e.len - NET_HDR;
			return (int)e.id;
		}
		__asm__ volatile("pause");
	}
	return -1;
}

static void give_back(int id) { submit(&rxq, (uint16_t)id, 0); }

/* Builds a DHCP request of `type` in txbuf; returns its length. */
static uint32_t dhcp_build(uint8_t type) {
	uint8_t *f = txbuf + NET_HDR;
	memset(f, 0, 342);
	memset(f, 0xff, 6);
	memcpy(f + 6, mac, 6);
	put16(f + 12, 0x0800);
	uint8_t *ip = f + 14, *udp = ip + 20, *b = udp + 8;
	ip[0] = 0x45;
	put16(ip + 2, 328);
	ip[8] = 64;
	ip[9] = 17;
	put32(ip + 16, 0xffffffff);
	put16(ip + 10, csum(ip, 20));
	put16(udp, 68);
	put16(udp + 2, 67);
	put16(udp + 4, 308);
	b[0] = 1;
	b[1] = 1;
	b[2] = 6;
	put32(b + 4, xid);
	memcpy(b + 28, mac, 6);
	put32(b + 236, 0x63825363);
	uint8_t *o = b + 240;
	*o++ = 53, *o++ = 1, *o++ = type;
	if (type == 3) {
		*o++ = 50, *o++ = 4, put32(o, my_ip), o += 4;
		*o++ = 54, *o++ = 4, put32(o, server_ip), o += 4;
	}
	*o++ = 255;
	return 342;
}

static void dhcp_send(uint8_t type) { send(dhcp_build(type)); }

/* Waits for a DHCP answer of `want` type to our xid; fills my_ip, router_ip, server_ip. */
static int dhcp_wait(uint8_t want) {
	for (int tries = 0; tries < 64; tries++) {
		uint32_t len;
		int id = receive(20000000, &len);
		if (id < 0) return 0;
		uint8_t *f = rxbuf[id] + NET_HDR;
		int ok = 0;
		if (len >= 14 + 20 + 8 + 240 && get16(f + 12) == 0x0800 && f[23] == 17 && get16(f + 36) == 68) {
			uint8_t *b = f + 42;
			if (b[0] == 2 && get32(b + 4) == xid) {
				uint8_t type = 0;
				uint32_t router = 0, server = 0;
				for (uint32_t i = 240; i + 1 < len - 42;) {
					uint8_t code = b[i];
					if (code == 255) break;
					if (code == 0) { i++; continue; }
					uint8_t l = b[i + 1];
					if (code == 53 && l == 1) type = b[i + 2];
					if (code == 3 && l >= 4) router = get32(b + i + 2);
					if (code == 54 && l == 4) server = get32(b + i + 2);
					i += 2 + l;
				}
				if (type == want) {
					my_ip = get32(b + 16);
					router_ip = router;
					server_ip = server;
					ok = 1;
				} else if (type == 6) {
					printf("virtio_net: NAK\n");
				}
			}
		}
		give_back(id);
		if (ok) return 1;
	}
	return 0;
}

/* Answers one ARP request or ICMP echo request in the frame; returns 1 for an echo. */
static int answer(uint8_t *f, uint32_t len) {
	uint8_t *o = txbuf + NET_HDR;
	if (len >= 42 && get16(f + 12) == 0x0806 && get16(f + 20) == 1 && get32(f + 38) == my_ip) {
		memcpy(o, f + 6, 6);
		memcpy(o + 6, mac, 6);
		memcpy(o + 12, f + 12, 8);
		put16(o + 20, 2);
		memcpy(o + 22, mac, 6);
		put32(o + 28, my_ip);
		memcpy(o + 32, f + 22, 10);
		send(42);
		return 0;
	}
	if (len >= 42 && len <= 1514 && get16(f + 12) == 0x0800 && (f[14] & 0x0f) == 5 && f[23] == 1 &&
	    get32(f + 30) == my_ip && f[34] == 8) {
		uint32_t iplen = get16(f + 16);
		if (iplen < 28 || 14 + iplen > len) return 0;
		memcpy(o, f + 6, 6);
		memcpy(o + 6, mac, 6);
		memcpy(o + 12, f + 12, 14 + iplen - 12);
		memcpy(o + 26, f + 30, 4);
		memcpy(o + 30, f + 26, 4);
		o[22] = 64;
		put16(o + 24, 0);
		put16(o + 24, csum(o + 14, 20));
		o[34] = 0;
		put16(o + 36, 0);
		put16(o + 36, csum(o + 34, iplen - 20));
		send(14 + iplen);
		return 1;
	}
	return 0;
}

/*
 * "hostile" on the cmdline: frames the device must drop without harm — too short, too long, a spoofed source
 * MAC, a DHCP request whose options overrun it — then two good broadcast frames (ethertype 0x88b5).
 */
static void hostile(void) {
	uint8_t *f = txbuf + NET_HDR;
	memset(f, 0, 1600);
	memset(f, 0xff, 6);
	memcpy(f + 6, mac, 6);
	put16(f + 12, 0x88b5);
	send(8);
	send(1600);
	f[11] ^= 0x55;
	send(60);
	f[11] ^= 0x55;
	dhcp_build(1);
	uint8_t *o = f + 14 + 20 + 8 + 240;
	o[0] = 53, o[1] = 200, o[2] = 1;
	memset(o + 3, 0, 50);
	send(342);
	memset(f + 12, 0, 330);
	memset(f, 0xff, 6);
	put16(f + 12, 0x88b5);
	send(60);
	send(60);
	printf("virtio_net: hostile frames sent\n");
}

static inline uint64_t rdtsc(void) {
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

/* "bench=N": sends N 1514-byte frames (UDP, 1472 bytes of payload) to the router's port 5555. */
static void bench(uint32_t n) {
	uint8_t *f = txbuf + NET_HDR;
	memset(f, 0xff, 6); /* broadcast: the host accepts unicast IP in it, and no ARP is needed */
	memcpy(f + 6, mac, 6);
	put16(f + 12, 0x0800);
	uint8_t *ip = f + 14, *udp = ip + 20;
	memset(ip, 0, 28);
	ip[0] = 0x45;
	put16(ip + 2, 1500);
	ip[8] = 64;
	ip[9] = 17;
	put32(ip + 12, my_ip);
	put32(ip + 16, router_ip);
	put16(ip + 10, csum(ip, 20));
	put16(udp, 5555);
	put16(udp + 2, 5555);
	put16(udp + 4, 1480);
	for (uint32_t i = 0; i < 1472; i++) udp[8 + i] = (uint8_t)i;
	/* batch: fill the ring, notify once, reclaim, repeat */
	uint16_t batch = txq.qsize;
	for (uint16_t i = 0; i < batch; i++) {
		txq.desc[i].addr = (uint32_t)txbuf;
		txq.desc[i].len = NET_HDR + 1514;
		txq.desc[i].flags = 0;
	}
	uint32_t sent = 0;
	uint64_t t0 = rdtsc();
	while (sent < n) {
		uint16_t k = (uint16_t)(n - sent < batch ? n - sent : batch);
		for (uint16_t i = 0; i < k; i++) txq.avail.ring[txq.avail_idx++ % txq.qsize] = i;
		barrier();
		txq.avail.idx = txq.avail_idx;
		barrier();
		*(volatile uint16_t *)txq.notify = 1;
		uint16_t want = (uint16_t)(txq.used_seen + k);
		while ((uint16_t)(*(volatile uint16_t *)&txq.used.idx - want) >= 0x8000) __asm__ volatile("pause");
		txq.used_seen = want;
		sent += k;
	}
	printf("virtio_net: bench sent %u in %lu cycles\n", sent, rdtsc() - t0);
}

static uint32_t parse_ip(const char *s) {
	uint32_t ip = 0, part = 0;
	int dots = 0;
	for (; *s && *s != ' '; s++) {
		if (*s == '.') { ip = ip << 8 | part; part = 0; dots++; }
		else if (*s >= '0' && *s <= '9') part = part * 10 + (uint32_t)(*s - '0');
		else return 0;
	}
	return dots == 3 ? ip << 8 | part : 0;
}

static const char *arg(const char *cmdline, const char *key) {
	size_t k = strlen(key);
	for (const char *p = cmdline; *p; p++) {
		if ((p == cmdline || p[-1] == ' ') && memcmp(p, key, k) == 0) return p + k;
	}
	return 0;
}

uint32_t kmain(const struct hvm_start_info *info) {
	uart_init();
	const char *cmdline = info->cmdline_paddr ? (const char *)(uint32_t)info->cmdline_paddr : "";
	if (!virtio_find(0x1041, 0, &dev) || dev.device == 0) {
		printf("virtio_net: no device\n");
		return 1;
	}
	if (!init()) {
		printf("virtio_net: init failed, status 0x%x\n", virtio_status(&dev));
		return 1;
	}
	printf("virtio_net: mac %02x:%02x:%02x:%02x:%02x:%02x link %u\n", mac[0], mac[1], mac[2], mac[3], mac[4],
	       mac[5], dev.device[6] & 1);
	if (arg(cmdline, "hostile") != 0) hostile();
	const char *fixed = arg(cmdline, "ip=");
	if (fixed != 0) {
		my_ip = parse_ip(fixed);
		const char *gw = arg(cmdline, "gw=");
		if (gw != 0) router_ip = parse_ip(gw);
		print_ip("virtio_net: static", my_ip);
		printf("\n");
	} else {
		dhcp_send(1);
		if (!dhcp_wait(2)) {
			printf("virtio_net: no offer\n");
			return 1;
		}
		print_ip("virtio_net: offer", my_ip);
		printf("\n");
		dhcp_send(3);
		if (!dhcp_wait(5)) {
			printf("virtio_net: no ack\n");
			return 1;
		}
		print_ip("virtio_net: lease", my_ip);
		print_ip(" router", router_ip);
		printf("\n");
	}
	const char *b = arg(cmdline, "bench=");
	if (b != 0) {
		uint32_t n = 0;
		for (; *b >= '0' && *b <= '9'; b++) n = n * 10 + (uint32_t)(*b - '0');
		bench(n);
		return 0x26;
	}
	int pings = 3;
	const char *p = arg(cmdline, "pings=");
	if (p != 0 && *p >= '1' && *p <= '9') pings = *p - '0';
	int answered = 0;
	int listen = arg(cmdline, "listen") != 0;
	printf("virtio_net: serving\n");
	while (answered < pings) {
		uint32_t len;
		int id = receive(0xffffffffu, &len);
		if (id < 0) break;
		uint8_t *f = rxbuf[id] + NET_HDR;
		if (listen && len >= 14 && get16(f + 12) == 0x88b5) {
			printf("virtio_net: heard %02x:%02x:%02x:%02x:%02x:%02x\n", f[6], f[7], f[8], f[9], f[10], f[11]);
		}
		if (answer(f, len)) {
			answered++;
			printf("virtio_net: echo %d\n", answered);
		}
		give_back(id);
	}
	printf("virtio_net: done\n");
	return 0x26;
}
