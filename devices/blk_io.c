/* SPDX-License-Identifier: MIT */
/* devices/blk_io.c - the virtio-blk data path on io_uring (blk_io.h). */
#include "devices/blk_io.h"
#include "vmm/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "devices/blk_copy.h"
#include "vdpa/vdpa.h"
#include "vmm/dirty.h"
#include "vmm/memory.h"

struct blk_slot {
	struct blk_queue *q;
	bool busy;
	uint16_t head;
	struct vring_chain chain;
	struct blk_req req;
	void *bounce;                /* O_DIRECT copy of unaligned data, or NULL */
};

/* user_data of the ring's entries: a slot's address for its I/O, small
 * numbers for the polls (no slot lives that low) */
#define TAG_CTL 1u
#define TAG_KICK(q) (2u + (q))
#define TAG_MAX (2u + DISK_MAX_QUEUES)

static struct io_uring_sqe *get_sqe(struct blk_engine *b)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&b->uring);

	if (!sqe) { /* full: hand what is queued to the kernel first */
		io_uring_submit(&b->uring);
		sqe = io_uring_get_sqe(&b->uring);
	}
	return sqe;
}

/* A multishot poll: one completion per wake-up of fd, without re-arming
 * (and without reading the eventfd: its count only says that something
 * happened, the rings say what). Re-armed only when the kernel ends it
 * (a completion without IORING_CQE_F_MORE). */
static void arm_poll(struct blk_engine *b, int fd, uint64_t tag)
{
	struct io_uring_sqe *sqe = get_sqe(b);

	if (!sqe)
		return; /* cannot happen with the ring sized for every slot and poll */
	io_uring_prep_poll_multishot(sqe, fd, POLLIN);
	io_uring_sqe_set_data64(sqe, tag);
}

/* Marks what tern wrote into guest memory for this chain: its writable
 * buffers (read data, the ID, the status). */
static void mark_chain(struct blk_engine *b, const struct vring_chain *c)
{
	for (unsigned i = 0; b->log && i < c->nseg; i++)
		if (c->seg[i].write)
			dirty_mark(b->log, c->seg[i].iova, c->seg[i].len);
}

static void mark_used_ring(struct blk_engine *b, const struct vring_dev *v)
{
	if (b->log) /* flags, idx, the elements and avail_event */
		dirty_mark(b->log, v->used_iova, 4 + 8ull * v->num + 2);
}

static void complete(struct blk_engine *b, struct blk_slot *s, uint8_t status)
{
	struct blk_queue *q = s->q;
	uint16_t old = q->ring.used_idx;

	if (status != VIRTIO_BLK_S_OK)
		b->stats.errors++;
	*(volatile uint8_t *)s->req.status_byte = status;
	free(s->bounce);
	s->bounce = NULL;
	pthread_mutex_lock(&b->lock);
	if (b->copy && (s->req.op == BLK_OP_WRITE || s->req.op == BLK_OP_DISCARD || s->req.op == BLK_OP_WRITE_ZEROES))
		blk_copy_mark(b->copy, s->req.offset, s->req.len);
	mark_chain(b, &s->chain);
	/* the status and data are in memory before the used entry that
	 * publishes them (vring_dev_push orders its own stores) */
	vring_dev_push(&q->ring, s->head, status == VIRTIO_BLK_S_OK ? s->req.used_len : 1);
	mark_used_ring(b, &q->ring);
	pthread_mutex_unlock(&b->lock);
	s->busy = false;
	q->inflight--;
	if (vring_dev_need_notify(&q->ring, old))
		eventfd_signal(q->call_fd, "virtio-blk interrupt");
}

/* O_DIRECT needs aligned offsets, lengths and buffers: data that is not is
 * copied through an aligned bounce buffer. */
static bool aligned(const struct blk_engine *b, const struct blk_req *r)
{
	uint64_t a = b->img->align;

	if (!b->img->direct)
		return true;
	if (r->offset % a || r->len % a)
		return false;
	for (unsigned i = 0; i < r->niov; i++)
		if ((uintptr_t)r->iov[i].iov_base % a || r->iov[i].iov_len % a)
			return false;
	return true;
}

static int prep_rw(struct blk_engine *b, struct blk_slot *s, struct io_uring_sqe *sqe)
{
	struct blk_req *r = &s->req;
	bool read = r->op == BLK_OP_READ;

	if (aligned(b, r)) {
		if (read)
			io_uring_prep_readv(sqe, b->img->fd, r->iov, r->niov, r->offset);
		else
			io_uring_prep_writev(sqe, b->img->fd, r->iov, r->niov, r->offset);
		return 0;
	}
	if (posix_memalign(&s->bounce, b->img->align, r->len))
		return -ENOMEM;
	b->stats.bounced++;
	if (!read) {
		uint8_t *p = s->bounce;
		for (unsigned i = 0; i < r->niov; p += r->iov[i].iov_len, i++)
			memcpy(p, r->iov[i].iov_base, r->iov[i].iov_len);
	}
	if (read)
		io_uring_prep_read(sqe, b->img->fd, s->bounce, (unsigned)r->len, r->offset);
	else
		io_uring_prep_write(sqe, b->img->fd, s->bounce, (unsigned)r->len, r->offset);
	return 0;
}

/* Queues the I/O of a checked request; false when it was answered at
 * once instead. */
static bool submit(struct blk_engine *b, struct blk_slot *s)
{
	struct blk_req *r = &s->req;
	struct io_uring_sqe *sqe;

	if (r->op == BLK_OP_ANSWER || !(sqe = get_sqe(b))) {
		complete(b, s, r->op == BLK_OP_ANSWER ? r->status : VIRTIO_BLK_S_IOERR);
		return false;
	}
	switch (r->op) {
	case BLK_OP_READ:
	case BLK_OP_WRITE:
		if (prep_rw(b, s, sqe) < 0) {
			io_uring_prep_nop(sqe); /* the entry is taken: make it harmless */
			io_uring_sqe_set_data64(sqe, 0);
			complete(b, s, VIRTIO_BLK_S_IOERR);
			return false;
		}
		r->op == BLK_OP_READ ? b->stats.reads++ : b->stats.writes++;
		break;
	case BLK_OP_FLUSH:
		io_uring_prep_fsync(sqe, b->img->fd, IORING_FSYNC_DATASYNC);
		b->stats.flushes++;
		break;
	case BLK_OP_DISCARD:
		io_uring_prep_fallocate(sqe, b->img->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, r->offset, r->len);
		break;
	case BLK_OP_WRITE_ZEROES:
		io_uring_prep_fallocate(sqe, b->img->fd,
					r->unmap ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE : FALLOC_FL_ZERO_RANGE,
					r->offset, r->len);
		break;
	case BLK_OP_ANSWER:
		break;
	}
	io_uring_sqe_set_data(sqe, s);
	return true;
}

static void io_done(struct blk_engine *b, struct blk_slot *s, int res)
{
	struct blk_req *r = &s->req;
	bool whole = r->op == BLK_OP_READ || r->op == BLK_OP_WRITE ? res >= 0 && (uint64_t)res == r->len : res >= 0;

	if (whole && r->op == BLK_OP_READ && s->bounce) {
		const uint8_t *p = s->bounce;
		for (unsigned i = 0; i < r->niov; p += r->iov[i].iov_len, i++)
			memcpy(r->iov[i].iov_base, p, r->iov[i].iov_len);
	}
	if (!whole)
		pr_warn("disk '%s': %s at byte %llu failed: %s", b->img->path, r->op == BLK_OP_READ ? "read" : "I/O",
			(unsigned long long)r->offset, res < 0 ? strerror(-res) : "short transfer");
	complete(b, s, whole ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR);
}

/* Takes every available chain of queue i (unless pausing). */
static void take_requests(struct blk_engine *b, unsigned i)
{
	struct blk_queue *q = &b->q[i];
	struct vring_chain c;

	while (!q->broken && b->state == BLK_RUNNING) {
		int r = vring_dev_pop(&q->ring, &c);
		if (r == 0)
			break;
		if (r < 0) {
			/* the guest broke the ring: the queue stops (NEEDS_RESET) */
			q->broken = true;
			b->stats.bad_chains++;
			if (b->on_broken)
				b->on_broken(b->opaque, i, r);
			break;
		}
		struct blk_slot *s = &q->slots[c.head];
		if (s->busy) { /* a head that is already in flight: a broken driver */
			q->broken = true;
			if (b->on_broken)
				b->on_broken(b->opaque, i, -EINVAL);
			break;
		}
		s->busy = true;
		s->head = c.head;
		s->chain = c;
		q->inflight++;
		b->stats.requests++;
		if (blk_request_parse(&s->chain, &b->ram, b->lim, &s->req) < 0) {
			/* no status byte to answer in: used length 0 */
			uint16_t old = q->ring.used_idx;
			b->stats.bad_chains++;
			s->busy = false;
			q->inflight--;
			pthread_mutex_lock(&b->lock);
			vring_dev_push(&q->ring, c.head, 0);
			mark_used_ring(b, &q->ring);
			pthread_mutex_unlock(&b->lock);
			if (vring_dev_need_notify(&q->ring, old))
				eventfd_signal(q->call_fd, "virtio-blk interrupt");
			continue;
		}
		submit(b, s);
	}
}

static unsigned inflight(const struct blk_engine *b)
{
	unsigned n = 0;

	for (unsigned i = 0; i < b->nq; i++)
		n += b->q[i].inflight;
	return n;
}

static bool set_kicks(struct blk_engine *b, bool on);

/* A state change was asked for: settles it as far as it can now. A paused
 * disk has kicks on: its rings may be saved now, and a guest restored
 * from them must kick the next device. */
static void control(struct blk_engine *b)
{
	pthread_mutex_lock(&b->lock);
	if (b->state == BLK_PAUSING && !inflight(b)) {
		set_kicks(b, true);
		b->state = BLK_PAUSED;
		pthread_cond_broadcast(&b->cond);
	}
	pthread_mutex_unlock(&b->lock);
}

static void handle(struct blk_engine *b, uint64_t tag, int res, unsigned flags, bool *resume)
{
	bool rearm = !(flags & IORING_CQE_F_MORE);

	if (tag == TAG_CTL) {
		if (rearm)
			arm_poll(b, b->ctl_fd, TAG_CTL);
		pthread_mutex_lock(&b->lock);
		*resume = b->state == BLK_RUNNING;
		pthread_mutex_unlock(&b->lock);
		return;
	}
	if (tag >= TAG_KICK(0) && tag < TAG_MAX) {
		unsigned i = (unsigned)(tag - TAG_KICK(0));
		if (rearm) {
			eventfd_drain(b->q[i].kick_fd, "virtio-blk kick"); /* a new poll starts from a quiet fd */
			arm_poll(b, b->q[i].kick_fd, tag);
		}
		take_requests(b, i);
		return;
	}
	if (tag)
		io_done(b, (struct blk_slot *)(uintptr_t)tag, res);
}

/* After a burst of work, with nothing in flight, the guest's next request
 * often follows within microseconds: looking for it briefly costs less
 * than sleeping in the kernel and being woken (what QEMU's adaptive
 * polling does too). true when there is work; bounded by POLL_NS. */
#define POLL_NS 16000

static bool work_seen(struct blk_engine *b)
{
	if (io_uring_cq_ready(&b->uring))
		return true;
	for (unsigned i = 0; i < b->nq; i++)
		if (!b->q[i].broken && vring_dev_pending(&b->q[i].ring) > 0)
			return true;
	return false;
}

/* Asks the driver to kick every queue, or none; true if a queue holds
 * requests right after (they came before the driver saw the change). */
static bool set_kicks(struct blk_engine *b, bool on)
{
	bool pending = false;

	for (unsigned i = 0; i < b->nq; i++)
		if (!b->q[i].broken && b->q[i].ring.kicks_off == on)
			pending |= vring_dev_kicks(&b->q[i].ring, on) > 0;
	return pending;
}

/* While it polls, the driver is asked not to kick (each kick is an exit);
 * kicks are asked for again before the thread sleeps. */
static bool poll_briefly(struct blk_engine *b)
{
	uint64_t until = now_ns() + POLL_NS;
	bool seen = false;

	set_kicks(b, false);
	do {
		seen = work_seen(b);
		if (!seen)
			__builtin_ia32_pause();
	} while (!seen && now_ns() < until);
	return set_kicks(b, true) || seen;
}

/* Before the thread waits: with requests in flight, their completions
 * wake it and every queue is looked at then, so the driver need not kick
 * (each kick is an exit); idle, it polls briefly after a burst, and kicks
 * are on before it sleeps. true: there is work, do not sleep. */
static bool before_wait(struct blk_engine *b)
{
	if (b->state != BLK_RUNNING) {
		set_kicks(b, true); /* paused or stopping: kicks on, as a snapshot must save them */
		return false;
	}
	if (inflight(b)) {
		set_kicks(b, false);
		return false;
	}
	return b->busy ? poll_briefly(b) : set_kicks(b, true);
}

static void *engine_thread(void *arg)
{
	struct blk_engine *b = arg;

	sandbox_enter_thread(b->sandbox, SANDBOX_DEVICE, "disk");
	arm_poll(b, b->ctl_fd, TAG_CTL);
	for (unsigned i = 0; i < b->nq; i++) {
		/* rings restored from a snapshot or a migration say what the
		 * last device asked for: kicks on, whatever it was */
		vring_dev_kicks(&b->q[i].ring, true);
		arm_poll(b, b->q[i].kick_fd, TAG_KICK(i));
		take_requests(b, i); /* what was made available before DRIVER_OK's kick */
	}
	for (;;) {
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		bool resume = false;

		uint64_t before = b->stats.requests;
		io_uring_submit(&b->uring);
		if (!before_wait(b))
			io_uring_submit_and_wait(&b->uring, 1);
		for (unsigned i = 0; b->state == BLK_RUNNING && i < b->nq; i++)
			take_requests(b, i); /* what the poll saw (a kick for it may follow: harmless) */
		io_uring_for_each_cqe(&b->uring, head, cqe) {
			handle(b, io_uring_cqe_get_data64(cqe), cqe->res, cqe->flags, &resume);
			seen++;
		}
		io_uring_cq_advance(&b->uring, seen);
		b->busy = b->stats.requests != before || seen;
		if (resume) /* kicks drained while paused are not lost */
			for (unsigned i = 0; i < b->nq; i++)
				take_requests(b, i);
		control(b);
		pthread_mutex_lock(&b->lock);
		bool done = b->state == BLK_STOPPING && !inflight(b);
		pthread_mutex_unlock(&b->lock);
		if (done)
			break;
	}
	return NULL;
}

static int setup_queue(struct blk_engine *b, unsigned i, const struct blk_queue_setup *s, struct err *e)
{
	struct blk_queue *q = &b->q[i];

	q->ring = (struct vring_dev){ .num = s->num, .desc_iova = s->desc, .avail_iova = s->avail,
				      .used_iova = s->used, .last_avail = s->last_avail, .used_idx = s->used_idx,
				      .event_idx = s->event_idx };
	q->kick_fd = s->kick_fd;
	q->call_fd = s->call_fd;
	int r = vring_dev_attach(&q->ring, &b->ram, &b->ram);
	if (r < 0)
		return err_errno(e, r, "disk '%s': queue %u: its rings are not in guest RAM", b->img->path, i);
	q->slots = calloc(s->num, sizeof(*q->slots));
	if (!q->slots)
		return err_set(e, -ENOMEM, "out of memory for disk queue %u", i);
	for (unsigned k = 0; k < s->num; k++)
		q->slots[k].q = q;
	return 0;
}

int blk_engine_start(struct blk_engine *b, const struct blk_image *img, const struct blk_limits *lim,
		     const struct guest_mem *mem, const struct blk_queue_setup *qs, unsigned nq, struct err *e)
{
	unsigned entries = 2 + nq;
	int r;

	b->img = img;
	b->lim = lim;
	b->nq = nq;
	b->state = BLK_RUNNING;
	memset(&b->stats, 0, sizeof(b->stats));
	b->ctl_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (b->ctl_fd < 0)
		return err_errno(e, -errno, "eventfd");
	if ((r = iotlb_init(&b->ram)) < 0)
		return err_errno(e, r, "disk IOTLB");
	for (unsigned i = 0; i < mem->nr_regions; i++)
		if ((r = iotlb_map(&b->ram, mem->regions[i].gpa, mem->regions[i].size, mem->hva + mem->regions[i].offset,
				   VDPA_PERM_RW)) < 0)
			return err_errno(e, r, "disk IOTLB");
	for (unsigned i = 0; i < nq; i++) {
		if ((r = setup_queue(b, i, &qs[i], e)) < 0)
			return r;
		entries += qs[i].num;
	}
	if ((r = io_uring_queue_init(entries < 4096 ? entries : 4096, &b->uring, 0)) < 0)
		return err_errno(e, r, "disk '%s': io_uring", img->path);
	b->uring_live = true;
	if ((r = -pthread_create(&b->thread, NULL, engine_thread, b)) < 0)
		return err_errno(e, r, "disk '%s': its thread", img->path);
	b->thread_live = true;
	return 0;
}

static void ask(struct blk_engine *b, enum blk_engine_state want)
{
	pthread_mutex_lock(&b->lock);
	b->state = want;
	pthread_mutex_unlock(&b->lock);
	eventfd_signal(b->ctl_fd, "virtio-blk control");
}

void blk_engine_stop(struct blk_engine *b)
{
	if (b->thread_live) {
		ask(b, BLK_STOPPING);
		pthread_join(b->thread, NULL);
		b->thread_live = false;
	}
	if (b->uring_live)
		io_uring_queue_exit(&b->uring);
	b->uring_live = false;
	for (unsigned i = 0; i < DISK_MAX_QUEUES; i++) {
		for (unsigned k = 0; b->q[i].slots && k < b->q[i].ring.num; k++)
			free(b->q[i].slots[k].bounce);
		free(b->q[i].slots);
		b->q[i] = (struct blk_queue){ 0 };
	}
	if (b->ram.entries)
		iotlb_exit(&b->ram);
	b->ram = (struct iotlb){ 0 };
	if (b->ctl_fd > 0)
		close(b->ctl_fd);
	b->ctl_fd = -1;
	b->nq = 0;
}

void blk_engine_pause(struct blk_engine *b)
{
	if (!b->thread_live)
		return;
	ask(b, BLK_PAUSING);
	pthread_mutex_lock(&b->lock);
	while (b->state == BLK_PAUSING)
		pthread_cond_wait(&b->cond, &b->lock);
	pthread_mutex_unlock(&b->lock);
}

void blk_engine_resume(struct blk_engine *b)
{
	if (b->thread_live)
		ask(b, BLK_RUNNING);
}

void blk_engine_indices(struct blk_engine *b, unsigned i, uint16_t *last_avail, uint16_t *used_idx)
{
	*last_avail = b->q[i].ring.last_avail;
	*used_idx = b->q[i].ring.used_idx;
}

void blk_engine_set_log(struct blk_engine *b, struct dirty_log *log)
{
	pthread_mutex_lock(&b->lock);
	b->log = log;
	pthread_mutex_unlock(&b->lock);
}

void blk_engine_set_copy(struct blk_engine *b, struct blk_copy_map *copy)
{
	pthread_mutex_lock(&b->lock);
	b->copy = copy;
	pthread_mutex_unlock(&b->lock);
}

void blk_engine_stats(struct blk_engine *b, struct blk_stats *out)
{
	pthread_mutex_lock(&b->lock);
	*out = b->stats;
	pthread_mutex_unlock(&b->lock);
}
