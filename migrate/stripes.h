/* SPDX-License-Identifier: MIT */
/*
 * migrate/stripes.h - guest RAM striped over one or more connections
 * (tern migrate --connections N; docs/migration.md, "Parallel
 * connections").
 *
 * The first connection carries everything it always did (configuration,
 * disks, passes, device state, the hand-over); each of the others opens
 * with HELLO and a JOIN record naming the source's session and its place,
 * and then carries only RAM and ZERO records, and END. A page always goes
 * over the same connection, (page / MIG_STRIPE_PAGES) % N, so a later copy
 * of it can never overtake an earlier one: the destination may apply each
 * connection's records as they come. The destination reads END on every
 * connection before it answers READY on the first.
 *
 * The sender sends one pass's pages, each connection's share on a thread
 * of its own (the first on the caller's): with TLS each session encrypts
 * on its own core.
 */
#ifndef TERN_MIGRATE_STRIPES_H
#define TERN_MIGRATE_STRIPES_H

#include <pthread.h>
#include <stdatomic.h>

#include "migrate/migrate.h"
#include "migrate/stream.h"

struct sandbox;

#define MIG_STRIPE_PAGES 512u /* 2 MiB of RAM per stripe */
_Static_assert(MIG_STRIPE_PAGES % 64 == 0, "a word of the dirty bitmap belongs to one stripe");

#define MIG_SESSION_LEN 16

/* The JOIN record's payload: the configuration's "session" and the
 * connection's place, 1..count-1 (the first connection is 0). */
struct mig_join {
	uint8_t session[MIG_SESSION_LEN];
	uint32_t index;
	uint32_t count; /* the configuration's "connections" */
} __attribute__((packed));
_Static_assert(sizeof(struct mig_join) == 24, "mig_join layout");

/* The connection that carries a page. */
static inline unsigned mig_stripe_of(uint64_t page, unsigned connections)
{
	return (unsigned)((page / MIG_STRIPE_PAGES) % connections);
}

struct mig_sender;

/* One connection's share of a pass, on its own thread. */
struct mig_lane {
	struct mig_sender *set;
	unsigned index;
	struct mig_stream *s;
	uint8_t *buf;            /* MIG_RUN_MAX pages being sent */
	pthread_t thread;
	bool thread_live;
	uint64_t pages;          /* sent in the pass */
	int r;
	struct err e;
};

struct mig_sender {
	const uint8_t *ram;
	uint64_t npages, words;
	uint64_t *bm;            /* the pass's pages; each lane clears its words */
	const atomic_bool *cancel;
	const struct sandbox *sandbox; /* the lanes' threads' filter (NULL: none) */
	unsigned n;
	struct mig_lane lane[MIG_CONNECTIONS_MAX];
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned generation;     /* a new pass (under lock) */
	unsigned busy;           /* lanes still sending it (under lock) */
	bool first;              /* the pass is the first: zero pages go free */
	bool quit;
	atomic_bool failed;      /* a lane failed: the others stop early */
};

/* Sets up n lanes over streams[0..n-1] (streams[0] on the caller's
 * thread) for the RAM at ram and the bitmap bm; cancel stops a pass with
 * -ECANCELED. */
int mig_sender_init(struct mig_sender *set, struct mig_stream *const *streams, unsigned n, const uint8_t *ram,
		    uint64_t npages, uint64_t *bm, const atomic_bool *cancel, const struct sandbox *sb, struct err *e);
/* Sends (and clears) every page set in bm, each over its connection;
 * *pages counts them. The first lane's error, in lane order, is e's. */
int mig_sender_pass(struct mig_sender *set, bool first, uint64_t *pages, struct err *e);
/* Bytes sent over all the connections, framing included. */
uint64_t mig_sender_bytes(const struct mig_sender *set);
/* Stops and joins the lanes' threads (the streams stay open). */
void mig_sender_destroy(struct mig_sender *set);

#endif
