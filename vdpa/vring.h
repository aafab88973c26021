/* SPDX-License-Identifier: MIT */
/*
 * vdpa/vring.h - the device side of a split virtqueue (virtio 1.x §2.7),
 * reading and writing the driver's rings only through an IOTLB.
 *
 * The driver (guest) is hostile: every index, length, flag combination and
 * address is checked, and every chain walk is bounded. Errors are distinct:
 *   -EINVAL  a malformed ring or descriptor (bad head, flags, lengths, sizes)
 *   -ELOOP   a chain longer than the table it lives in (a cycle)
 *   -EPROTO  the avail index moved more than the ring size
 *   -EFAULT  a ring or buffer outside the device's mappings, or wrong perm
 *   -E2BIG   a well-formed chain with more than VRING_MAX_SEGS buffers
 * After any of these the device must stop the queue and signal NEEDS_RESET.
 */
#ifndef TERN_VDPA_VRING_H
#define TERN_VDPA_VRING_H

#include "vdpa/iotlb.h"

#define VRING_MAX_NUM 32768
#define VRING_MAX_SEGS 128
#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2
#define VRING_DESC_F_INDIRECT 4
#define VRING_AVAIL_F_NO_INTERRUPT 1
#define VRING_USED_F_NO_NOTIFY 1

struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};
_Static_assert(sizeof(struct vring_desc) == 16, "virtq_desc layout");

struct vring_seg {
	uint64_t iova;
	uint32_t len;
	bool write; /* device-writable */
};

struct vring_chain {
	uint16_t head;     /* what goes back in the used ring */
	unsigned nseg;
	uint64_t out_len;  /* device-readable bytes */
	uint64_t in_len;   /* device-writable bytes */
	struct vring_seg seg[VRING_MAX_SEGS];
};

struct vring_dev {
	uint16_t num;          /* ring size, power of two */
	uint64_t desc_iova, avail_iova, used_iova;
	uint16_t last_avail;   /* next avail entry the device reads */
	uint16_t used_idx;     /* the device's used index */
	bool event_idx;        /* VIRTIO_F_EVENT_IDX negotiated */
	/* Set by vring_dev_pop() when it wrote avail_event into the driver's
	 * used ring; a caller that logs its writes marks it and clears this. */
	bool avail_event_written;
	/* vring_dev_kicks(false): the driver is asked not to kick */
	bool kicks_off;
	/* Resolved by vring_dev_attach(): the rings as host pointers. */
	struct vring_desc *desc;
	uint16_t *avail;       /* flags, idx, ring[num], used_event */
	uint8_t *used;         /* flags, idx, {id, len}[num], avail_event */
	const struct iotlb *buf_tlb; /* where buffers live */
};

/* Checks geometry and maps the three rings (from desc_tlb, which differs
 * from buf_tlb with descriptor-group ASIDs). */
int vring_dev_attach(struct vring_dev *v, const struct iotlb *desc_tlb, const struct iotlb *buf_tlb);
/* Takes the next available chain: 1 with *c filled, 0 if none, or -errno. */
int vring_dev_pop(struct vring_dev *v, struct vring_chain *c);
/* Returns a chain to the driver with len bytes written. */
int vring_dev_push(struct vring_dev *v, uint16_t head, uint32_t len);
/* Asks the driver to kick (on) or not to (off: a device that polls the
 * ring), through VRING_USED_F_NO_NOTIFY or, with EVENT_IDX, avail_event;
 * returns what vring_dev_pending() says right after (a driver that added
 * an entry before it saw the change did not kick for it). */
int vring_dev_kicks(struct vring_dev *v, bool on);
/* Whether the driver wants an interrupt after used moved from old_used. */
bool vring_dev_need_notify(struct vring_dev *v, uint16_t old_used);
/* Number of chains the driver has made available and the device not taken,
 * or -EPROTO. */
int vring_dev_pending(const struct vring_dev *v);

/* Gathers up to len readable bytes from offset off of the chain. */
size_t vring_chain_read(const struct vring_chain *c, const struct iotlb *t, uint64_t off, void *dst, size_t len);
/* Scatters len bytes into the chain's writable buffers from offset off;
 * returns bytes written. */
size_t vring_chain_write(const struct vring_chain *c, const struct iotlb *t, uint64_t off, const void *src,
			 size_t len);

#endif
