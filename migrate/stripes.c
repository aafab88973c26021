/* SPDX-License-Identifier: MIT */
/* migrate/stripes.c - a pass's pages over one or more connections (stripes.h). */
#include "migrate/stripes.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/sandbox.h"

enum run_kind { RUN_NONE, RUN_DATA, RUN_ZERO };

struct run {
	enum run_kind kind;
	uint64_t first;
	unsigned n;
};

static int lane_stopped(struct mig_lane *l, struct err *e)
{
	if (atomic_load(l->set->cancel))
		return err_set(e, -ECANCELED, "migration cancelled");
	/* another lane failed: its error is the pass's, this one just ends */
	if (atomic_load(&l->set->failed))
		return err_set(e, -ECANCELED, "another connection of the migration failed");
	return 0;
}

static int flush(struct mig_lane *l, struct run *run, struct err *e)
{
	struct mig_pages h = { .first = run->first, .count = run->n };
	struct iovec v[2] = { { &h, sizeof(h) }, { l->buf, (size_t)run->n * PAGE } };
	int r = 0;

	if (run->kind == RUN_DATA)
		r = mig_sendv(l->s, MIG_RAM, v, 2, e);
	else if (run->kind == RUN_ZERO)
		r = mig_sendv(l->s, MIG_ZERO, v, 1, e);
	run->kind = RUN_NONE;
	run->n = 0;
	return r < 0 ? r : lane_stopped(l, e);
}

/* One page into the lane's run, flushing the run when the page does not
 * extend it. */
static int add_page(struct mig_lane *l, struct run *run, uint64_t p, bool first, struct err *e)
{
	const uint8_t *page = l->set->ram + p * PAGE;
	bool zero = page_is_zero(page);
	enum run_kind k = zero ? (first ? RUN_NONE : RUN_ZERO) : RUN_DATA;
	int r;

	if (run->kind != RUN_NONE && (run->kind != k || p != run->first + run->n || run->n == MIG_RUN_MAX) &&
	    (r = flush(l, run, e)) < 0)
		return r;
	if (k == RUN_NONE)
		return 0;
	if (run->kind == RUN_NONE)
		*run = (struct run){ k, p, 0 };
	if (k == RUN_DATA)
		memcpy(l->buf + (size_t)run->n * PAGE, page, PAGE);
	run->n++;
	l->pages++;
	return 0;
}

/* Sends (and clears) the lane's stripes of the bitmap. Zero pages go as
 * ZERO records, or not at all on the first pass (the destination's RAM
 * starts zeroed). A page is tested for zero in guest memory and then
 * copied: if the guest writes it in between, the dirty log has it for the
 * next pass, and the CRC covers the copy that is sent. */
static int send_share(struct mig_lane *l, bool first, struct err *e)
{
	struct mig_sender *set = l->set;
	const uint64_t stripe_words = MIG_STRIPE_PAGES / 64;
	struct run run = { RUN_NONE, 0, 0 };
	int r;

	l->pages = 0;
	for (uint64_t w0 = (uint64_t)l->index * stripe_words; w0 < set->words; w0 += (uint64_t)set->n * stripe_words)
		for (uint64_t w = w0; w < w0 + stripe_words && w < set->words; w++) {
			uint64_t bits = set->bm[w];
			set->bm[w] = 0;
			while (bits) {
				uint64_t p = w * 64 + (uint64_t)__builtin_ctzll(bits);
				bits &= bits - 1;
				if (p >= set->npages)
					break;
				if ((r = add_page(l, &run, p, first, e)) < 0)
					return r;
			}
		}
	return run.kind != RUN_NONE ? flush(l, &run, e) : 0;
}

static void lane_pass(struct mig_lane *l, bool first)
{
	memset(&l->e, 0, sizeof(l->e));
	l->r = send_share(l, first, &l->e);
	if (l->r < 0)
		atomic_store(&l->set->failed, true);
}

static void *lane_thread(void *arg)
{
	struct mig_lane *l = arg;
	struct mig_sender *set = l->set;
	unsigned seen = 0;

	sandbox_enter_thread(set->sandbox, SANDBOX_MIGRATION, "mig-lane");
	pthread_mutex_lock(&set->lock);
	for (;;) {
		while (!set->quit && set->generation == seen)
			pthread_cond_wait(&set->cond, &set->lock);
		if (set->quit)
			break;
		seen = set->generation;
		bool first = set->first;
		pthread_mutex_unlock(&set->lock);
		lane_pass(l, first);
		pthread_mutex_lock(&set->lock);
		if (--set->busy == 0)
			pthread_cond_broadcast(&set->cond);
	}
	pthread_mutex_unlock(&set->lock);
	return NULL;
}

int mig_sender_init(struct mig_sender *set, struct mig_stream *const *streams, unsigned n, const uint8_t *ram,
		    uint64_t npages, uint64_t *bm, const atomic_bool *cancel, const struct sandbox *sb, struct err *e)
{
	int r;

	memset(set, 0, sizeof(*set));
	if (!n || n > MIG_CONNECTIONS_MAX)
		return err_set(e, -EINVAL, "%u connections: 1 to %u", n, MIG_CONNECTIONS_MAX);
	*set = (struct mig_sender){ .ram = ram, .npages = npages, .words = (npages + 63) / 64, .bm = bm,
				    .cancel = cancel, .sandbox = sb, .n = n };
	pthread_mutex_init(&set->lock, NULL);
	pthread_cond_init(&set->cond, NULL);
	for (unsigned i = 0; i < n; i++) {
		struct mig_lane *l = &set->lane[i];
		*l = (struct mig_lane){ .set = set, .index = i, .s = streams[i] };
		if (!(l->buf = malloc((size_t)MIG_RUN_MAX * PAGE))) {
			mig_sender_destroy(set);
			return err_set(e, -ENOMEM, "out of memory for the migration");
		}
		if (i && (r = -pthread_create(&l->thread, NULL, lane_thread, l)) < 0) {
			mig_sender_destroy(set);
			return err_errno(e, r, "cannot start a migration connection's thread");
		}
		l->thread_live = i > 0;
	}
	return 0;
}

int mig_sender_pass(struct mig_sender *set, bool first, uint64_t *pages, struct err *e)
{
	atomic_store(&set->failed, false);
	pthread_mutex_lock(&set->lock);
	set->first = first;
	set->busy = set->n - 1;
	set->generation++;
	pthread_cond_broadcast(&set->cond);
	pthread_mutex_unlock(&set->lock);

	lane_pass(&set->lane[0], first);

	pthread_mutex_lock(&set->lock);
	while (set->busy)
		pthread_cond_wait(&set->cond, &set->lock);
	pthread_mutex_unlock(&set->lock);

	*pages = 0;
	/* the error that is not another lane's echo of it */
	const struct mig_lane *bad = NULL;
	for (unsigned i = 0; i < set->n; i++) {
		const struct mig_lane *l = &set->lane[i];
		*pages += l->pages;
		if (l->r < 0 && (!bad || (bad->r == -ECANCELED && l->r != -ECANCELED)))
			bad = l;
	}
	if (!bad)
		return 0;
	if (atomic_load(set->cancel))
		return err_set(e, -ECANCELED, "migration cancelled");
	*e = bad->e;
	return bad->r;
}

uint64_t mig_sender_bytes(const struct mig_sender *set)
{
	uint64_t b = 0;

	for (unsigned i = 0; i < set->n; i++)
		b += set->lane[i].s->sent;
	return b;
}

void mig_sender_destroy(struct mig_sender *set)
{
	if (!set->n)
		return;
	pthread_mutex_lock(&set->lock);
	set->quit = true;
	pthread_cond_broadcast(&set->cond);
	pthread_mutex_unlock(&set->lock);
	for (unsigned i = 0; i < set->n; i++) {
		struct mig_lane *l = &set->lane[i];
		if (l->thread_live)
			pthread_join(l->thread, NULL);
		l->thread_live = false;
		free(l->buf);
		l->buf = NULL;
	}
	pthread_mutex_destroy(&set->lock);
	pthread_cond_destroy(&set->cond);
	set->n = 0;
}
