/* SPDX-License-Identifier: MIT */
/*
 * firmware/virtio_net.h - a polling virtio-net driver for the test guest:
 * virtio-pci modern transport (virtio 1.x), split virtqueues, no interrupts
 * (every MSI-X vector is VIRTIO_MSI_NO_VECTOR, avail->flags asks for none).
 *
 * Contracts:
 *   - RX: every RX descriptor is posted with one device-writable 2048-byte
 *     buffer (12-byte virtio_net_hdr + frame; no MRG_RXBUF). A buffer handed
 *     back by vnet_rx_poll() is the caller's until vnet_rx_release().
 *   - TX: one device-readable descriptor per frame (header + frame), from a
 *     per-descriptor 2048-byte buffer; reclaimed by vnet_tx_reclaim().
 *   - CVQ: one command at a time, synchronously (header, data, ack chain).
 *   - Everything the device hands back is checked (used id in range and
 *     outstanding, used len within the buffer, used idx not running ahead);
 *     violations are counted in vnet.dev_errors and the entry is ignored.
 */
#ifndef TERN_FIRMWARE_VIRTIO_NET_H
#define TERN_FIRMWARE_VIRTIO_NET_H

#include <stddef.h>
#include <stdint.h>

#include "pci.h"

#define VIRTIO_PCI_VENDOR 0x1af4
#define VIRTIO_PCI_DEVICE_NET 0x1041 /* 0x1040 + device ID 1 */

/* Device status bits. */
#define VIRTIO_STATUS_ACKNOWLEDGE 0x01
#define VIRTIO_STATUS_DRIVER 0x02
#define VIRTIO_STATUS_DRIVER_OK 0x04
#define VIRTIO_STATUS_FEATURES_OK 0x08
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED 0x80

/* Feature bits (bit numbers). */
#define VIRTIO_NET_F_CSUM 0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_CTRL_GUEST_OFFLOADS 2
#define VIRTIO_NET_F_MTU 3
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_MRG_RXBUF 15
#define VIRTIO_NET_F_STATUS 16
#define VIRTIO_NET_F_CTRL_VQ 17
#define VIRTIO_NET_F_CTRL_RX 18
#define VIRTIO_NET_F_CTRL_VLAN 19
#define VIRTIO_NET_F_CTRL_RX_EXTRA 20
#define VIRTIO_NET_F_GUEST_ANNOUNCE 21
#define VIRTIO_NET_F_MQ 22
#define VIRTIO_NET_F_CTRL_MAC_ADDR 23
#define VIRTIO_NET_F_HASH_REPORT 57
#define VIRTIO_NET_F_RSS 60
#define VIRTIO_F_VERSION_1 32
#define VIRTIO_F_ACCESS_PLATFORM 33
#define VIRTIO_F_ORDER_PLATFORM 36
#define VBIT(b) (1ull << (b))

/* virtio_net_config.status bits. */
#define VIRTIO_NET_S_LINK_UP 1
#define VIRTIO_NET_S_ANNOUNCE 2

/* Control virtqueue classes and commands. */
#define VIRTIO_NET_CTRL_RX 0
#define VIRTIO_NET_CTRL_RX_PROMISC 0
#define VIRTIO_NET_CTRL_RX_ALLMULTI 1
#define VIRTIO_NET_CTRL_RX_NOBCAST 5
#define VIRTIO_NET_CTRL_MAC 1
#define VIRTIO_NET_CTRL_MAC_TABLE_SET 0
#define VIRTIO_NET_CTRL_MAC_ADDR_SET 1
#define VIRTIO_NET_CTRL_VLAN 2
#define VIRTIO_NET_CTRL_VLAN_ADD 0
#define VIRTIO_NET_CTRL_VLAN_DEL 1
#define VIRTIO_NET_CTRL_ANNOUNCE 3
#define VIRTIO_NET_CTRL_ANNOUNCE_ACK 0
#define VIRTIO_NET_CTRL_MQ 4
#define VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET 0
#define VIRTIO_NET_CTRL_GUEST_OFFLOADS 5
#define VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET 0
#define VIRTIO_NET_OK 0
#define VIRTIO_NET_ERR 1

#define VNET_HDR_LEN 12       /* struct virtio_net_hdr with VERSION_1 */
#define VNET_HDR_HASH_LEN 20  /* ... with HASH_REPORT (virtio_net_hdr_v1_hash), both ways */
#define VNET_BUF_LEN 2048     /* every RX and TX buffer */
#define VNET_MAX_QSIZE 256    /* queue size = min(device max, this) */
#define VNET_MAX_PAIRS 16     /* queue pairs this driver sets up at most */
#define VNET_FRAME_MAX (VNET_BUF_LEN - VNET_HDR_LEN) /* with HASH_REPORT, 8 less */

struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};
#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2

struct vring_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[]; /* then used_event, unused without EVENT_IDX */
};
#define VRING_AVAIL_F_NO_INTERRUPT 1

struct vring_used_elem {
	uint32_t id;
	uint32_t len;
};
struct vring_used {
	uint16_t flags;
	uint16_t idx;
	struct vring_used_elem ring[];
};
#define VRING_USED_F_NO_NOTIFY 1

struct vq {
	uint16_t index;  /* virtqueue number on the device */
	uint16_t size;   /* 0: not set up */
	uint16_t avail_idx;   /* next avail->idx to publish (shadow) */
	uint16_t published;   /* avail->idx as last written */
	uint16_t last_used;   /* used entries consumed so far */
	uint16_t nfree;
	uint16_t free[VNET_MAX_QSIZE];  /* stack of free descriptor heads */
	uint8_t busy[VNET_MAX_QSIZE];   /* head is the device's (0/1) */
	uint16_t chain[VNET_MAX_QSIZE]; /* descriptors in the chain at head */
	struct vring_desc *desc;
	struct vring_avail *avail;
	volatile struct vring_used *used;
	uint8_t *bufs;        /* size * VNET_BUF_LEN (RX/TX), or NULL */
	uint64_t notify;      /* GPA to write the queue index to */
	uint64_t kicks;
};

struct vnet {
	struct pci_dev pci;
	uint64_t common, notify_base, isr, devcfg; /* capability GPAs */
	uint32_t notify_mult, notify_len, devcfg_len;
	uint64_t dev_features, features;
	uint8_t mac[6];
	uint16_t max_pairs; /* from config (1 without MQ) */
	uint16_t pairs;     /* pairs set up */
	uint16_t num_queues;
	uint64_t want_extra; /* more features to take (with a control queue), if offered */
	unsigned hdr_len;    /* VNET_HDR_LEN, or VNET_HDR_HASH_LEN with HASH_REPORT */
	struct vq rx[VNET_MAX_PAIRS], tx[VNET_MAX_PAIRS], cvq;
	uint8_t *cmd;       /* one page for CVQ command header/data/ack */
	uint64_t dev_errors; /* hostile or broken device responses seen */
	const char *error;   /* what went wrong last, for reports */
};

/* Guest RAM the driver may take rings and buffers from: [start, end). */
void vnet_mem_init(uint64_t start, uint64_t end);
struct bootinfo;
/* The same range from the boot info: from the end of the image to the end
 * of its RAM range below 4 GiB, short of an initrd (net_tests.c). */
void vnet_mem_from_bootinfo(const struct bootinfo *bi);
/* Page-aligned guest RAM from that range, never freed; NULL when used up. */
void *vnet_mem_alloc(uint64_t n);

/* The transport, for any virtio-pci device (virtio_blk.c uses it too):
 * probe the index-th function with PCI device id device; set status bits;
 * write the driver's features and set FEATURES_OK (0, or -1 if refused);
 * set up queue index (bufs: a 2048-byte buffer per descriptor), enabled
 * with nothing posted; take the next used entry, checked (1, 0 if none). */
int vnet_probe_device(struct vnet *v, uint16_t device, unsigned index, int reassign);
void vnet_set_status(struct vnet *v, uint8_t bits);
int vnet_write_features(struct vnet *v, uint64_t features);
int vnet_vq_setup(struct vnet *v, struct vq *q, uint16_t index, int bufs);
int vnet_vq_pop(struct vnet *v, struct vq *q, uint32_t max_len, uint16_t *id, uint32_t *len);

/* Finds the index-th virtio-net (modern) function, enables it (placing its
 * BARs ourselves if reassign), reads its virtio capabilities, device
 * features, MAC and max_pairs. Resets it. Returns 0 or -1 (v->error). */
int vnet_probe(struct vnet *v, unsigned index, int reassign);

/* Negotiates and brings the device to DRIVER_OK with "pairs" queue pairs
 * set up (and the CVQ if want_cvq or pairs > 1), RX fully posted. Does not
 * send VQ_PAIRS_SET; see vnet_set_pairs(). Returns 0 or -1. */
int vnet_up(struct vnet *v, unsigned pairs, int want_cvq);
void vnet_reset(struct vnet *v);
uint8_t vnet_status(const struct vnet *v);
/* virtio_net_config.status (0 if VIRTIO_NET_F_STATUS is not negotiated). */
uint16_t vnet_link_status(const struct vnet *v);

/* TX: queue one frame (copied); returns 0, or -1 if no descriptor is free.
 * vnet_tx_kick publishes queued frames and notifies unless suppressed. */
int vnet_tx(struct vnet *v, unsigned q, const void *frame, size_t len);
/* Zero-copy variant: a buffer for up to VNET_FRAME_MAX bytes of frame (the
 * header is filled on submit), or NULL if no descriptor is free. */
uint8_t *vnet_tx_alloc(struct vnet *v, unsigned q, uint16_t *id);
void vnet_tx_submit(struct vnet *v, unsigned q, uint16_t id, size_t len);
void vnet_tx_kick(struct vnet *v, unsigned q);
/* Reclaims completed TX descriptors; returns how many. */
unsigned vnet_tx_reclaim(struct vnet *v, unsigned q);
unsigned vnet_tx_inflight(const struct vnet *v, unsigned q);

/* RX: returns 1 with *frame and *len (the frame after the virtio-net header)
 * and *id when a buffer came back, 0 when none. */
int vnet_rx_poll(struct vnet *v, unsigned q, uint8_t **frame, uint32_t *len, uint16_t *id);
/* Reposts buffer id; vnet_rx_kick publishes reposted buffers. */
void vnet_rx_release(struct vnet *v, unsigned q, uint16_t id);
void vnet_rx_kick(struct vnet *v, unsigned q);

/* Control virtqueue: sends class/cmd with data; returns the device's ack
 * byte (VIRTIO_NET_OK 0, VIRTIO_NET_ERR 1, or whatever it wrote), or -1 if
 * there is no CVQ, -2 on timeout, -3 if the device answered badly. */
int vnet_ctrl(struct vnet *v, uint8_t cls, uint8_t cmd, const void *data, size_t len);
int vnet_ctrl_rx(struct vnet *v, uint8_t cmd, int on); /* PROMISC, ALLMULTI */
int vnet_ctrl_mac_addr_set(struct vnet *v, const uint8_t mac[6]);
int vnet_ctrl_mac_table_set(struct vnet *v, const uint8_t (*uc)[6], unsigned nuc, const uint8_t (*mc)[6],
			    unsigned nmc);
int vnet_ctrl_vlan(struct vnet *v, uint8_t cmd, uint16_t vid); /* ADD, DEL */
int vnet_ctrl_mq_pairs(struct vnet *v, uint16_t pairs);
/* MQ.RSS_CONFIG: hash_types, n table entries (a power of two), the
 * unclassified queue, max_tx_vq, and a key of key_len bytes. */
int vnet_ctrl_rss(struct vnet *v, uint32_t hash_types, const uint16_t *table, unsigned n, uint16_t unclassified,
		  uint16_t max_tx, const uint8_t *key, uint8_t key_len);
int vnet_ctrl_guest_offloads(struct vnet *v, uint64_t offloads);
/* MQ_HASH_CONFIG (needs HASH_REPORT): hash types and key, no steering. */
int vnet_ctrl_hash(struct vnet *v, uint32_t hash_types, const uint8_t *key, uint8_t key_len);
/* The hash report of a frame vnet_rx_poll() returned (0 without
 * HASH_REPORT or when the device hashed nothing) and *value its hash. */
unsigned vnet_rx_hash(const struct vnet *v, const uint8_t *frame, uint32_t *value);
int vnet_ctrl_announce_ack(struct vnet *v);
/* VQ_PAIRS_SET to v->pairs when more than one pair is set up: 0 or -1. */
int vnet_set_pairs(struct vnet *v);

/* Raw access for the scribble workload: put head on the avail ring (its
 * descriptors are the caller's business), publish and notify. */
void vnet_vq_push(struct vq *q, uint16_t head, uint16_t ndesc);
void vnet_vq_publish(struct vnet *v, struct vq *q);
void vnet_notify(struct vnet *v, struct vq *q);

/* Workloads (net_tests.c): runs test "name" (net-*) with the boot
 * information; returns the exit status (GUEST_EXIT_USAGE if unknown). */
struct bootinfo;
unsigned net_test(const char *name, const struct bootinfo *bi);
/* test=net-filter (net_filter.c). */
unsigned net_filter_run(struct vnet *v, unsigned timeout_s, unsigned hold, unsigned bigtable, unsigned rss,
			unsigned hash);
/* test=net-echo (net_echo.c). */
unsigned net_echo_run(struct vnet *v);

#endif
