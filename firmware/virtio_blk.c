/* SPDX-License-Identifier: MIT */
/* firmware/virtio_blk.c - the test guest's virtio-blk driver (virtio_blk.h). */
#include "lib.h"
#include "virtio_blk.h"

#define CFG_CAPACITY 0
#define CFG_NUM_QUEUES 34
#define STATUS_OFF 64

struct vq *vblk_queue(struct vblk *b, unsigned i)
{
	return i ? &b->more[i - 1] : &b->q;
}

int vblk_up(struct vblk *b, unsigned index, unsigned queues)
{
	struct vnet *t = &b->t;

	memset(b, 0, sizeof(*b));
	if (vnet_probe_device(t, VIRTIO_PCI_DEVICE_BLK, index, 0) < 0)
		return -1;
	if (!(t->dev_features & VBIT(VIRTIO_F_VERSION_1))) {
		t->error = "device does not offer VERSION_1";
		return -1;
	}
	vnet_set_status(t, VIRTIO_STATUS_ACKNOWLEDGE);
	vnet_set_status(t, VIRTIO_STATUS_DRIVER);
	uint64_t want = VBIT(VIRTIO_F_VERSION_1) | VBIT(VIRTIO_BLK_F_RO) | VBIT(VIRTIO_BLK_F_FLUSH) |
			(queues > 1 ? VBIT(VIRTIO_BLK_F_MQ) : 0);
	if (vnet_write_features(t, t->dev_features & want) < 0)
		return -1;
	b->nq = 1;
	if ((t->features & VBIT(VIRTIO_BLK_F_MQ)) && t->devcfg_len >= CFG_NUM_QUEUES + 2) {
		unsigned have = mmio_read16(t->devcfg + CFG_NUM_QUEUES);
		b->nq = queues < have ? queues : have;
		if (b->nq > VBLK_MAX_QUEUES)
			b->nq = VBLK_MAX_QUEUES;
		if (!b->nq)
			b->nq = 1;
	}
	for (unsigned i = 0; i < b->nq; i++)
		if (vnet_vq_setup(t, vblk_queue(b, i), (uint16_t)i, 0) < 0)
			return -1;
	b->hdr = vnet_mem_alloc(4096);
	b->buf = vnet_mem_alloc(VBLK_BUF_MAX);
	if (!b->hdr || !b->buf) {
		t->error = "out of guest memory for requests";
		return -1;
	}
	if (t->devcfg_len >= 8)
		b->capacity = (uint64_t)mmio_read32(t->devcfg + CFG_CAPACITY) |
			      (uint64_t)mmio_read32(t->devcfg + CFG_CAPACITY + 4) << 32;
	vnet_set_status(t, VIRTIO_STATUS_DRIVER_OK);
	return 0;
}

int vblk_request(struct vblk *b, uint32_t type, uint64_t sector, uint32_t len)
{
	struct vq *q = &b->q;
	int in = type == VBLK_T_IN || type == VBLK_T_GET_ID;
	uint16_t n = 0, id, d0 = 0;
	uint32_t used_len;
	struct timeout to;

	if (len > VBLK_BUF_MAX || q->size < 3)
		return -2;
	/* header, then data (if any), then status: descriptors 0, 1, 2 */
	memcpy(b->hdr, &type, 4);
	memset(b->hdr + 4, 0, 4);
	memcpy(b->hdr + 8, &sector, 8);
	b->hdr[STATUS_OFF] = 0xff;
	q->desc[0] = (struct vring_desc){ (uint64_t)(uintptr_t)b->hdr, 16, VRING_DESC_F_NEXT, 1 };
	n = 1;
	if (len) {
		q->desc[1] = (struct vring_desc){ (uint64_t)(uintptr_t)b->buf, len,
						  (uint16_t)(VRING_DESC_F_NEXT | (in ? VRING_DESC_F_WRITE : 0)), 2 };
		n = 2;
	} else {
		q->desc[0].next = 2;
	}
	q->desc[2] = (struct vring_desc){ (uint64_t)(uintptr_t)(b->hdr + STATUS_OFF), 1, VRING_DESC_F_WRITE, 0 };
	n++;
	vnet_vq_push(q, d0, n);
	vnet_vq_publish(&b->t, q);
	timeout_start(&to, 5);
	while (!vnet_vq_pop(&b->t, q, (in ? len : 0) + 1, &id, &used_len)) {
		if (timeout_expired(&to))
			return -1;
		cpu_relax();
	}
	if (id != d0 || used_len == UINT32_MAX)
		return -2;
	return *(volatile uint8_t *)(b->hdr + STATUS_OFF);
}
