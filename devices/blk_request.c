/* SPDX-License-Identifier: MIT */
/* devices/blk_request.c - checking one virtio-blk request (blk_request.h). */
#include "devices/blk_request.h"

#include <errno.h>
#include <string.h>

#include "devices/blk_image.h"
#include "vdpa/vdpa.h"

static int answer(struct blk_req *r, uint8_t status)
{
	r->op = BLK_OP_ANSWER;
	r->status = status;
	r->niov = 0;
	r->used_len = 1;
	return 0;
}

/* The chain's data as host iovecs: skip bytes of the segments with
 * direction write, then take len bytes. Each segment must lie in one
 * mapping of guest RAM with the permission the device needs. */
static int data_iovecs(const struct vring_chain *c, const struct iotlb *t, bool write, uint64_t skip, uint64_t len,
		       struct blk_req *r)
{
	r->niov = 0;
	for (unsigned i = 0; i < c->nseg && len; i++) {
		const struct vring_seg *s = &c->seg[i];
		if (s->write != write)
			continue;
		if (skip >= s->len) {
			skip -= s->len;
			continue;
		}
		uint64_t take = s->len - skip < len ? s->len - skip : len;
		void *p = iotlb_ptr(t, s->iova + skip, take, write ? VDPA_PERM_WO : VDPA_PERM_RO);
		if (!p)
			return -EFAULT;
		r->iov[r->niov++] = (struct iovec){ p, take };
		len -= take;
		skip = 0;
	}
	return len ? -EFAULT : 0;
}

/* The last byte of the chain, if it is device-writable: the status. */
static uint8_t *status_byte(const struct vring_chain *c, const struct iotlb *t)
{
	if (!c->nseg || !c->seg[c->nseg - 1].write || !c->seg[c->nseg - 1].len)
		return NULL;
	const struct vring_seg *s = &c->seg[c->nseg - 1];
	return iotlb_ptr(t, s->iova + s->len - 1, 1, VDPA_PERM_WO);
}

/* Whether [sector, sector + count) lies on the disk. */
static bool on_disk(const struct blk_limits *lim, uint64_t sector, uint64_t count)
{
	return sector <= lim->capacity && count <= lim->capacity - sector;
}

static int parse_rw(const struct vring_chain *c, const struct iotlb *t, const struct blk_limits *lim,
		    const struct virtio_blk_outhdr *h, struct blk_req *r)
{
	bool read = h->type == VIRTIO_BLK_T_IN;
	/* a read's data is writable (all but the status), a write's readable
	 * (all after the header); nothing else may be in the chain */
	uint64_t len = read ? c->in_len - 1 : c->out_len - sizeof(*h);

	if ((read && c->out_len != sizeof(*h)) || (!read && c->in_len != 1))
		return answer(r, VIRTIO_BLK_S_IOERR);
	if (!read && lim->readonly)
		return answer(r, VIRTIO_BLK_S_IOERR);
	if (len % BLK_SECTOR || len > lim->max_bytes || !on_disk(lim, h->sector, len / BLK_SECTOR))
		return answer(r, VIRTIO_BLK_S_IOERR);
	if (data_iovecs(c, t, read, read ? 0 : sizeof(*h), len, r) < 0 || r->niov > lim->seg_max)
		return answer(r, VIRTIO_BLK_S_IOERR);
	r->op = read ? BLK_OP_READ : BLK_OP_WRITE;
	r->offset = h->sector * BLK_SECTOR;
	r->len = len;
	r->used_len = (uint32_t)(read ? len : 0) + 1;
	return 0;
}

/* One range (MAX_DISCARD_SEG and MAX_WRITE_ZEROES_SEG are 1). */
static int parse_range(const struct vring_chain *c, const struct iotlb *t, const struct blk_limits *lim,
		       const struct virtio_blk_outhdr *h, struct blk_req *r)
{
	bool zeroes = h->type == VIRTIO_BLK_T_WRITE_ZEROES;
	struct virtio_blk_range range;

	if (!zeroes && !lim->discard)
		return answer(r, VIRTIO_BLK_S_UNSUPP);
	if (lim->readonly)
		return answer(r, VIRTIO_BLK_S_IOERR);
	if (c->out_len != sizeof(*h) + sizeof(range) || c->in_len != 1 ||
	    vring_chain_read(c, t, sizeof(*h), &range, sizeof(range)) != sizeof(range))
		return answer(r, VIRTIO_BLK_S_IOERR);
	/* flags other than UNMAP (on write-zeroes) are reserved: UNSUPP */
	if ((range.flags & ~(uint32_t)(zeroes ? VIRTIO_BLK_WZ_F_UNMAP : 0)))
		return answer(r, VIRTIO_BLK_S_UNSUPP);
	if (!range.num_sectors || range.num_sectors > lim->max_range || !on_disk(lim, range.sector, range.num_sectors))
		return answer(r, VIRTIO_BLK_S_IOERR);
	r->op = zeroes ? BLK_OP_WRITE_ZEROES : BLK_OP_DISCARD;
	r->offset = range.sector * BLK_SECTOR;
	r->len = (uint64_t)range.num_sectors * BLK_SECTOR;
	r->unmap = zeroes && (range.flags & VIRTIO_BLK_WZ_F_UNMAP) && lim->discard;
	r->niov = 0;
	r->used_len = 1;
	return 0;
}

static int answer_get_id(const struct vring_chain *c, const struct iotlb *t, const struct blk_limits *lim,
			 struct blk_req *r)
{
	char id[DISK_SERIAL_LEN] = { 0 };

	/* the driver gives 20 bytes; a shorter serial is NUL-padded */
	if (c->in_len < DISK_SERIAL_LEN + 1)
		return answer(r, VIRTIO_BLK_S_IOERR);
	size_t n = strlen(lim->serial);
	memcpy(id, lim->serial, n < sizeof(id) ? n : sizeof(id));
	if (vring_chain_write(c, t, 0, id, sizeof(id)) != sizeof(id))
		return answer(r, VIRTIO_BLK_S_IOERR);
	answer(r, VIRTIO_BLK_S_OK);
	r->used_len = DISK_SERIAL_LEN + 1;
	return 0;
}

int blk_request_parse(const struct vring_chain *c, const struct iotlb *t, const struct blk_limits *lim,
		      struct blk_req *r)
{
	struct virtio_blk_outhdr h;

	memset(r, 0, offsetof(struct blk_req, iov));
	r->status_byte = status_byte(c, t);
	if (!r->status_byte)
		return -EINVAL;
	if (c->out_len < sizeof(h) || vring_chain_read(c, t, 0, &h, sizeof(h)) != sizeof(h))
		return answer(r, VIRTIO_BLK_S_IOERR);
	switch (h.type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		return parse_rw(c, t, lim, &h, r);
	case VIRTIO_BLK_T_FLUSH:
		if (c->out_len != sizeof(h) || c->in_len != 1)
			return answer(r, VIRTIO_BLK_S_IOERR);
		answer(r, VIRTIO_BLK_S_OK);
		r->op = BLK_OP_FLUSH;
		return 0;
	case VIRTIO_BLK_T_GET_ID:
		return answer_get_id(c, t, lim, r);
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		return parse_range(c, t, lim, &h, r);
	default:
		return answer(r, VIRTIO_BLK_S_UNSUPP);
	}
}
