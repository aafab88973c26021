/* SPDX-License-Identifier: MIT */
/*
 * vdpa/vring.c - device-side split ring. Ordering: the driver writes a
 * descriptor and its avail entry before it bumps avail->idx (a release); we
 * load avail->idx with acquire semantics before reading anything it covers.
 * We write the used element before bumping used->idx (release). Before
 * reading the driver's event index or flags to decide on an interrupt, a
 * full fence orders our used->idx store against that load (store-load, the
 * one x86 reorders).
 */
#include "vdpa/vring.h"

#include <errno.h>
#include <string.h>

#include "vdpa/vdpa.h"

#define INDIRECT_MAX (VRING_MAX_NUM) /* entries in one indirect table */

static size_t avail_size(uint16_t num)
{
	return 6 + 2 * (size_t)num;
}

static size_t used_size(uint16_t num)
{
	return 6 + 8 * (size_t)num;
}

int vring_dev_attach(struct vring_dev *v, const struct iotlb *desc_tlb, const struct iotlb *buf_tlb)
{
	uint16_t n = v->num;

	if (!n || n > VRING_MAX_NUM || (n & (n - 1)))
		return -EINVAL;
	if ((v->desc_iova & 15) || (v->avail_iova & 1) || (v->used_iova & 3))
		return -EINVAL;
	v->desc = iotlb_ptr(desc_tlb, v->desc_iova, 16 * (size_t)n, VDPA_PERM_RO);
	v->avail = iotlb_ptr(desc_tlb, v->avail_iova, avail_size(n), VDPA_PERM_RO);
	v->used = iotlb_ptr(desc_tlb, v->used_iova, used_size(n), VDPA_PERM_WO);
	v->buf_tlb = buf_tlb;
	if (!v->desc || !v->avail || !v->used)
		return -EFAULT;
	return 0;
}

static uint16_t avail_idx(const struct vring_dev *v)
{
	return __atomic_load_n(&v->avail[1], __ATOMIC_ACQUIRE);
}

int vring_dev_pending(const struct vring_dev *v)
{
	uint16_t d = (uint16_t)(avail_idx(v) - v->last_avail);

	return d > v->num ? -EPROTO : d;
}

/* Adds one descriptor's buffer to the chain after checking it. */
static int add_seg(const struct vring_dev *v, struct vring_chain *c, const struct vring_desc *d)
{
	uint64_t end;
	bool w = d->flags & VRING_DESC_F_WRITE;

	if (add_overflows(d->addr, d->len, &end))
		return -EINVAL;
	if (!w && c->in_len)
		return -EINVAL; /* readable after writable */
	if (!d->len)
		return 0;       /* allowed, and moves nothing */
	if (c->nseg == VRING_MAX_SEGS)
		return -E2BIG;
	if (!iotlb_access_ok(v->buf_tlb, d->addr, d->len, w ? VDPA_PERM_WO : VDPA_PERM_RO))
		return -EFAULT;
	c->seg[c->nseg++] = (struct vring_seg){ .iova = d->addr, .len = d->len, .write = w };
	if (w)
		c->in_len += d->len;
	else
		c->out_len += d->len;
	return 0;
}

static int walk_indirect(const struct vring_dev *v, struct vring_chain *c, const struct vring_desc *ind)
{
	uint32_t n;
	uint16_t i = 0;

	if (ind->flags & VRING_DESC_F_NEXT)
		return -EINVAL; /* INDIRECT together with NEXT */
	if (!ind->len || ind->len % sizeof(struct vring_desc) || ind->len / sizeof(struct vring_desc) > INDIRECT_MAX)
		return -EINVAL;
	n = ind->len / (uint32_t)sizeof(struct vring_desc);
	if (!iotlb_access_ok(v->buf_tlb, ind->addr, ind->len, VDPA_PERM_RO))
		return -EFAULT; /* the whole table, not just the entries we reach */
	for (uint32_t count = 0;; count++) {
		struct vring_desc d;
		int r;
		if (count >= n)
			return -ELOOP;
		if (iotlb_read(v->buf_tlb, ind->addr + (uint64_t)i * sizeof(d), &d, sizeof(d)) < 0)
			return -EFAULT;
		if (d.flags & VRING_DESC_F_INDIRECT)
			return -EINVAL; /* nested */
		r = add_seg(v, c, &d);
		if (r < 0)
			return r;
		if (!(d.flags & VRING_DESC_F_NEXT))
			return 0;
		if (d.next >= n)
			return -EINVAL;
		i = d.next;
	}
}

int vring_dev_pop(struct vring_dev *v, struct vring_chain *c)
{
	int pending = vring_dev_pending(v);
	uint16_t head, i;

	if (pending == 0 && v->event_idx && !v->kicks_off) {
		/* The ring is empty, so the device will wait for a kick. With
		 * EVENT_IDX the driver kicks only when avail->idx passes the
		 * avail_event we publish after the used ring (virtio 1.x 2.7.10);
		 * left at its initial 0, Linux's virtio_net kicked about once per
		 * 65536 buffers and traffic crawled. Ask for a kick at the very
		 * next entry, then look again: the driver may have added one
		 * before it could see the request (store-load, hence the fence). */
		__atomic_store_n((uint16_t *)(v->used + 4 + 8 * (size_t)v->num), v->last_avail, __ATOMIC_RELAXED);
		v->avail_event_written = true;
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		pending = vring_dev_pending(v);
	}
	if (pending <= 0)
		return pending;
	head = v->avail[2 + (v->last_avail & (v->num - 1))];
	if (head >= v->num)
		return -EINVAL;
	c->head = head;
	c->nseg = 0;
	c->in_len = c->out_len = 0;
	i = head;
	for (unsigned count = 0;; count++) {
		struct vring_desc d;
		int r;
		if (count >= v->num)
			return -ELOOP;
		memcpy(&d, &v->desc[i], sizeof(d)); /* one copy: the driver may change it */
		if (d.flags & VRING_DESC_F_INDIRECT) {
			if (count || c->nseg)
				return -EINVAL; /* only a lone descriptor may be indirect */
			r = walk_indirect(v, c, &d);
			if (r < 0)
				return r;
			break;
		}
		r = add_seg(v, c, &d);
		if (r < 0)
			return r;
		if (!(d.flags & VRING_DESC_F_NEXT))
			break;
		if (d.next >= v->num)
			return -EINVAL;
		i = d.next;
	}
	v->last_avail++;
	return 1;
}

int vring_dev_push(struct vring_dev *v, uint16_t head, uint32_t len)
{
	uint8_t *elem = v->used + 4 + 8 * (size_t)(v->used_idx & (v->num - 1));
	uint32_t id = head;

	memcpy(elem, &id, 4);
	memcpy(elem + 4, &len, 4);
	v->used_idx++;
	/* the element is visible before the index that publishes it */
	__atomic_store_n((uint16_t *)(v->used + 2), v->used_idx, __ATOMIC_RELEASE);
	return 0;
}

int vring_dev_kicks(struct vring_dev *v, bool on)
{
	uint16_t *flags = (uint16_t *)v->used;

	v->kicks_off = !on;
	if (v->event_idx) {
		/* off: avail_event stays where it is, so the driver's next
		 * entries pass it without a kick; on: ask for the next one */
		if (on) {
			__atomic_store_n((uint16_t *)(v->used + 4 + 8 * (size_t)v->num), v->last_avail, __ATOMIC_RELAXED);
			v->avail_event_written = true;
		}
	} else {
		uint16_t f = __atomic_load_n(flags, __ATOMIC_RELAXED);
		__atomic_store_n(flags, (uint16_t)(on ? f & ~VRING_USED_F_NO_NOTIFY : f | VRING_USED_F_NO_NOTIFY),
				 __ATOMIC_RELAXED);
	}
	/* the flag or event before the look at avail->idx (store-load) */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return vring_dev_pending(v);
}

bool vring_dev_need_notify(struct vring_dev *v, uint16_t old_used)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!v->event_idx)
		return !(__atomic_load_n(&v->avail[0], __ATOMIC_RELAXED) & VRING_AVAIL_F_NO_INTERRUPT);
	uint16_t event = __atomic_load_n(&v->avail[2 + v->num], __ATOMIC_RELAXED);
	return (uint16_t)(v->used_idx - event - 1) < (uint16_t)(v->used_idx - old_used);
}

size_t vring_chain_read(const struct vring_chain *c, const struct iotlb *t, uint64_t off, void *dst, size_t len)
{
	size_t done = 0;

	for (unsigned s = 0; s < c->nseg && done < len; s++) {
		const struct vring_seg *g = &c->seg[s];
		if (g->write)
			break;
		if (off >= g->len) {
			off -= g->len;
			continue;
		}
		size_t n = g->len - off < len - done ? g->len - off : len - done;
		if (iotlb_read(t, g->iova + off, (uint8_t *)dst + done, n) < 0)
			break;
		done += n;
		off = 0;
	}
	return done;
}

size_t vring_chain_write(const struct vring_chain *c, const struct iotlb *t, uint64_t off, const void *src,
			 size_t len)
{
	size_t done = 0;

	for (unsigned s = 0; s < c->nseg && done < len; s++) {
		const struct vring_seg *g = &c->seg[s];
		if (!g->write)
			continue;
		if (off >= g->len) {
			off -= g->len;
			continue;
		}
		size_t n = g->len - off < len - done ? g->len - off : len - done;
		if (iotlb_write(t, g->iova + off, (const uint8_t *)src + done, n) < 0)
			break;
		done += n;
		off = 0;
	}
	return done;
}
