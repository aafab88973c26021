/* SPDX-License-Identifier: MIT */
/*
 * vdpa/svq.c - see svq.h. The shadow ring is a split ring (virtio 1.x
 * 2.7) that tern drives: descriptors from a free list, the avail index
 * published with release semantics after the entries it covers, the used
 * index read with acquire semantics before the elements it covers.
 */
#include "vdpa/svq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>


static size_t page_up(size_t n)
{
	return (n + PAGE - 1) & ~(size_t)(PAGE - 1);
}

static size_t used_off(uint16_t num)
{
	return page_up(16 * (size_t)num + 6 + 2 * (size_t)num);
}

size_t svq_ring_size(uint16_t num)
{
	return used_off(num) + page_up(6 + 8 * (size_t)num);
}

int svq_init(struct svq *q, const struct vring_dev *g, const struct iotlb *ram, struct dirty_log *log, void *mem,
	     uint64_t iova, struct err *e)
{
	uint16_t n = g->num;
	int r;

	memset(q, 0, sizeof(*q));
	if (!n || n > VRING_MAX_NUM || (n & (n - 1)))
		return err_set(e, -EINVAL, "shadow queue: ring size %u is not a power of two up to %u", n, VRING_MAX_NUM);
	q->num = n;
	q->guest = *g;
	r = vring_dev_attach(&q->guest, ram, ram);
	if (r < 0)
		return err_errno(e, r, "shadow queue: the guest's ring is not in RAM or misaligned");
	q->ram = ram;
	q->log = log;
	q->mem = mem;
	q->iova = iova;
	q->desc = mem;
	q->avail = (uint16_t *)((uint8_t *)mem + 16 * (size_t)n);
	q->used = (uint8_t *)mem + used_off(n);
	q->inflight = calloc(n, sizeof(*q->inflight));
	q->next_free = calloc(n, sizeof(*q->next_free));
	if (!q->inflight || !q->next_free) {
		svq_exit(q);
		return err_set(e, -ENOMEM, "out of memory for a shadow queue");
	}
	for (uint16_t i = 0; i < n; i++)
		q->next_free[i] = (uint16_t)(i + 1);
	q->free_head = 0;
	q->nfree = n;
	/* the device negotiated what the guest did: event index both ways */
	q->dev_event_idx = g->event_idx;
	return 0;
}

void svq_exit(struct svq *q)
{
	free(q->inflight);
	free(q->next_free);
	q->inflight = NULL;
	q->next_free = NULL;
}

void svq_addrs(const struct svq *q, uint64_t *desc, uint64_t *avail, uint64_t *used)
{
	*desc = q->iova;
	*avail = q->iova + 16 * (uint64_t)q->num;
	*used = q->iova + used_off(q->num);
}

static int fail(struct svq *q, int err)
{
	if (!q->error)
		q->error = err;
	return q->error;
}

/* Puts one chain on the shadow ring; false when there is no room. */
static bool place(struct svq *q, const struct vring_chain *c)
{
	if (c->nseg > q->nfree)
		return false;
	uint16_t head = q->free_head;
	struct svq_inflight *f = &q->inflight[head];
	for (unsigned i = 0; i < c->nseg; i++) {
		uint16_t d = q->free_head;
		q->free_head = q->next_free[d];
		f->descs[i] = d;
		q->desc[d] = (struct vring_desc){
			.addr = c->seg[i].iova, /* IOVA = GPA: the buffer is the guest's */
			.len = c->seg[i].len,
			.flags = (uint16_t)((c->seg[i].write ? VRING_DESC_F_WRITE : 0) |
					    (i + 1 < c->nseg ? VRING_DESC_F_NEXT : 0)),
			.next = i + 1 < c->nseg ? q->free_head : 0,
		};
	}
	q->nfree = (uint16_t)(q->nfree - c->nseg);
	f->busy = true;
	f->guest_head = c->head;
	f->ndesc = c->nseg;
	f->chain = *c;
	q->avail[2 + (q->avail_idx & (q->num - 1))] = head;
	q->avail_idx++;
	/* the entry, and the descriptors before it, are visible first */
	__atomic_store_n(&q->avail[1], q->avail_idx, __ATOMIC_RELEASE);
	return true;
}

/* Marks [gpa, gpa + len) dirty, when a log is on. */
static void mark(struct svq *q, uint64_t gpa, uint64_t len)
{
	if (q->log && len)
		dirty_mark(q->log, gpa, len);
}

static void to_guest(struct svq *q, uint16_t head, uint32_t len)
{
	uint16_t idx = q->guest.used_idx;

	vring_dev_push(&q->guest, head, len);
	/* tern wrote the guest's used ring: its element and its index */
	mark(q, q->guest.used_iova + 4 + 8 * (uint64_t)(idx & (q->num - 1)), 8);
	mark(q, q->guest.used_iova + 2, 2);
}

/* Whether the device asked for a kick now that the shadow avail index
 * moved from old (virtio 1.x 2.7.10: avail_event after the used ring, or
 * the used ring's NO_NOTIFY flag). The fence orders our avail index store
 * before the load of the device's request (store-load). */
static bool dev_wants_kick(struct svq *q, uint16_t old)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!q->dev_event_idx)
		return !(__atomic_load_n((uint16_t *)q->used, __ATOMIC_RELAXED) & VRING_USED_F_NO_NOTIFY);
	uint16_t event = __atomic_load_n((uint16_t *)(q->used + 4 + 8 * (size_t)q->num), __ATOMIC_RELAXED);
	return (uint16_t)(q->avail_idx - event - 1) < (uint16_t)(q->avail_idx - old);
}

/* Takes the guest's next chain. vring_dev_pop() may publish avail_event
 * in the guest's used ring: tern wrote guest memory, so it is logged (from
 * ring size 512 on it has a page of its own, and a destination holding a
 * stale one would wait for a kick the guest never sends). */
static int take(struct svq *q)
{
	int r = vring_dev_pop(&q->guest, &q->parked);

	if (q->guest.avail_event_written) {
		q->guest.avail_event_written = false;
		mark(q, q->guest.used_iova + 4 + 8 * (uint64_t)q->num, 2);
	}
	return r;
}

int svq_kick(struct svq *q, bool *kick, bool *notify)
{
	uint16_t old = q->avail_idx, start = q->guest.used_idx;
	int placed = 0;

	*kick = *notify = false;
	if (q->error)
		return q->error;
	for (;;) {
		if (!q->have_parked) {
			int r = take(q);
			if (r < 0)
				return fail(q, r);
			if (r == 0)
				break;
			q->have_parked = true;
		}
		if (q->parked.nseg > q->num)
			return fail(q, -EINVAL); /* would wait for room that never comes */
		if (q->parked.nseg == 0) {
			/* only empty buffers: nothing for the device. Returned
			 * only once nothing before it is in flight, so that the
			 * guest's used entries stay in avail order (a switch back
			 * to passthrough rewinds to the guest's used index). */
			if (q->nfree != q->num)
				break;
			to_guest(q, q->parked.head, 0);
		} else if (!place(q, &q->parked)) {
			break; /* the shadow ring is full: parked until used frees room */
		} else {
			placed++;
		}
		q->have_parked = false;
	}
	*kick = placed && dev_wants_kick(q, old);
	*notify = q->guest.used_idx != start && vring_dev_need_notify(&q->guest, start);
	return placed;
}

void svq_device_restarted(struct svq *q)
{
	/* avail_event := the next entry tern makes available, so that
	 * dev_wants_kick() says yes to it; the device writes its own again
	 * once it runs */
	__atomic_store_n((uint16_t *)q->used, 0, __ATOMIC_RELAXED);
	__atomic_store_n((uint16_t *)(q->used + 4 + 8 * (size_t)q->num), q->avail_idx, __ATOMIC_RELEASE);
}

int svq_used(struct svq *q, bool *notify)
{
	uint16_t start = q->guest.used_idx, idx;
	int n = 0;

	*notify = false;
	if (q->error)
		return q->error;
again:
	idx = __atomic_load_n((uint16_t *)(q->used + 2), __ATOMIC_ACQUIRE);
	if ((uint16_t)(idx - q->last_used) > q->num)
		return fail(q, -EPROTO); /* the device's index ran past the ring */
	while (q->last_used != idx) {
		const uint8_t *el = q->used + 4 + 8 * (size_t)(q->last_used & (q->num - 1));
		uint32_t id, len;
		memcpy(&id, el, 4);
		memcpy(&len, el + 4, 4);
		if (id >= q->num || !q->inflight[id].busy)
			return fail(q, -EPROTO); /* a descriptor it was never given */
		struct svq_inflight *f = &q->inflight[id];
		if (len > f->chain.in_len)
			return fail(q, -EPROTO); /* more written than the buffer holds */
		/* exactly the bytes written, in the chain's writable order */
		uint64_t left = len;
		for (unsigned i = 0; i < f->chain.nseg && left; i++) {
			const struct vring_seg *s = &f->chain.seg[i];
			if (!s->write)
				continue;
			uint64_t k = left < s->len ? left : s->len;
			mark(q, s->iova, k);
			left -= k;
		}
		for (unsigned i = 0; i < f->ndesc; i++) {
			q->next_free[f->descs[i]] = q->free_head;
			q->free_head = f->descs[i];
		}
		q->nfree = (uint16_t)(q->nfree + f->ndesc);
		f->busy = false;
		to_guest(q, f->guest_head, len);
		q->last_used++;
		n++;
	}
	if (q->dev_event_idx) {
		/* ask for a call at the very next used entry (used_event after
		 * the avail ring), then look again: the device may have used
		 * one before it could see the request (store-load) */
		__atomic_store_n(&q->avail[2 + q->num], q->last_used, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (__atomic_load_n((uint16_t *)(q->used + 2), __ATOMIC_ACQUIRE) != q->last_used)
			goto again;
	}
	*notify = n && vring_dev_need_notify(&q->guest, start);
	return n;
}
