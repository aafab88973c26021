/* SPDX-License-Identifier: MIT */
/* migrate/listener.c - the destination's wait for its source (listener.h). */
#include "migrate/listener.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migrate/tls.h"
#include "vmm/sandbox.h"
#include "migrate/transport.h"

struct listener;

/* One connection being admitted, on a thread of its own. Only the thread
 * touches s and result until it is done; only the waiting thread closes
 * the connection, after joining it. */
struct candidate {
	struct listener *l;
	pthread_t thread;
	bool used;
	bool done, admitted;   /* under l->lock */
	bool join;             /* admitted as a further connection (under l->lock) */
	bool reaped;           /* its thread is joined */
	uint64_t done_ns;      /* when it was reaped */
	struct mig_stream s;
	void *result;
	char peer[64];
};

struct listener {
	const struct mig_wait *w;
	pthread_mutex_t lock;
	int efd;               /* a candidate is done */
	unsigned refused;
	struct candidate c[MIG_CANDIDATES];
	/* the source's further connections, once it is admitted */
	unsigned need, joined;
	uint64_t join_deadline;
	struct mig_stream *joins;
};

void mig_stream_close(struct mig_stream *s)
{
	mig_tls_free(s->tls);
	s->tls = NULL;
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

/* A plain destination reached by a TLS client sees a handshake record
 * (0x16) where the stream's magic should be: say so. */
static bool looks_like_tls(int fd)
{
	uint8_t b;

	return recv(fd, &b, 1, MSG_PEEK) == 1 && b == 0x16;
}

/* A plain tern source starts with the stream's magic where a TLS client
 * starts with its hello. */
static bool plain_tern(int fd)
{
	char b[sizeof(MIG_MAGIC) - 1];

	return recv(fd, b, sizeof(b), MSG_PEEK | MSG_WAITALL) == (ssize_t)sizeof(b) && !memcmp(b, MIG_MAGIC, sizeof(b));
}

static void *admit_thread(void *arg)
{
	struct candidate *c = arg;
	const struct mig_wait *w = c->l->w;
	struct err e = { { 0 } };
	bool join = false;
	int r = 0;

	sandbox_enter_thread(w->sandbox, SANDBOX_MIGRATION, "mig-admit");
	mig_set_timeout(c->s.fd, MIG_ADMIT_MS);
	if (w->tls && plain_tern(c->s.fd)) {
		/* told in its own language, before any TLS */
		r = err_set(&e, -EACCES, "this destination takes only TLS (tern run --tls-dir): migrate with --tls-dir");
		mig_send_msg(&c->s, MIG_REFUSE, e.msg);
		mig_drain_before_close(c->s.fd, MIG_DRAIN_MS);
		pr_warn("migration: refused a connection from %s: a plain tern source (not TLS)", c->peer);
		goto done;
	}
	if (w->tls)
		r = mig_tls_handshake(&c->s.tls, c->s.fd, w->tls, NULL, MIG_ADMIT_MS, &e);
	else if (looks_like_tls(c->s.fd))
		r = err_set(&e, -EPROTO, "the source speaks TLS (tern migrate --tls-dir); this destination has no "
					 "--tls-dir");
	if (r == 0)
		r = w->admit(w->ctx, &c->s, &c->result, &e);
	if (r == MIG_ADMIT_JOIN) {
		join = true;
		r = 0;
	}
	if (r < 0) {
		/* told on the channel it came on; a TLS peer that failed its
		 * handshake was told by the handshake's alert */
		if (r != -EPIPE && r != -ECONNRESET && r != -ETIMEDOUT && (!w->tls || c->s.tls)) {
			mig_send_msg(&c->s, MIG_REFUSE, e.msg);
			mig_drain_before_close(c->s.fd, MIG_DRAIN_MS);
		}
		pr_warn("migration: refused a connection from %s: %s", c->peer, e.msg);
	}
done:
	pthread_mutex_lock(&c->l->lock);
	c->done = true;
	c->admitted = r == 0;
	c->join = join;
	pthread_mutex_unlock(&c->l->lock);
	eventfd_signal(c->l->efd, "migration listener");
	return NULL;
}

/* A candidate's slot is free again. */
static void release(struct candidate *c)
{
	mig_stream_close(&c->s);
	c->used = false;
}

static void refuse(struct listener *l, struct candidate *c, const char *why)
{
	mig_send_msg(&c->s, MIG_REFUSE, why);
	pr_warn("migration: refused a connection from %s: %s", c->peer, why);
	if (c->admitted)
		l->w->drop(l->w->ctx, c->result, c->join);
	release(c);
	l->refused++;
}

/* A join admitted while there is a source: its place among the source's
 * connections, or refused. */
static void match_join(struct listener *l, int winner, struct candidate *c)
{
	const struct mig_wait *w = l->w;
	struct err e = { { 0 } };
	int idx = w->match ? w->match(w->ctx, l->c[winner].result, c->result, &e)
			   : err_set(&e, -EPROTO, "this destination takes one connection");

	if (idx >= 1 && ((unsigned)idx > l->need || l->joins[idx - 1].fd >= 0))
		idx = err_set(&e, -EPROTO, "connection %d of the source is already here", idx);
	if (idx < 0) {
		refuse(l, c, e.msg);
		return;
	}
	l->joins[idx - 1] = c->s;
	l->joined++;
	w->drop(w->ctx, c->result, true);
	c->used = false; /* its stream is the source's now */
}

/* Joins the candidates that are done: the first admitted source wins
 * (its index; -1 while there is none), any later one is refused, and
 * joins are matched against it (or wait for it, MIG_ADMIT_MS at most). */
static int reap(struct listener *l, int winner)
{
	uint64_t now = now_ns();

	/* sources first, so that a join finds its source in the same sweep */
	for (unsigned sweep = 0; sweep < 2; sweep++)
		for (unsigned i = 0; i < MIG_CANDIDATES; i++) {
			struct candidate *c = &l->c[i];
			pthread_mutex_lock(&l->lock);
			bool done = c->used && c->done && (int)i != winner && c->join == (sweep == 1);
			pthread_mutex_unlock(&l->lock);
			if (!done)
				continue;
			if (!c->reaped) {
				pthread_join(c->thread, NULL);
				c->reaped = true;
				c->done_ns = now;
			}
			if (!c->admitted) {
				l->refused++;
				release(c);
			} else if (!c->join && winner < 0) {
				winner = (int)i;
				l->need = l->w->joins ? l->w->joins(l->w->ctx, c->result) : 0;
				l->join_deadline = now + (uint64_t)MIG_ADMIT_MS * 1000000u;
			} else if (!c->join) {
				refuse(l, c, "another source is already migrating to this destination");
			} else if (winner >= 0) {
				match_join(l, winner, c);
			} else if (now - c->done_ns >= (uint64_t)MIG_ADMIT_MS * 1000000u) {
				refuse(l, c, "no migration to join (its first connection never came)");
			}
		}
	return winner;
}

/* The source's joins are gone (it did not open them all in time, or the
 * wait failed). */
static void drop_joins(struct listener *l)
{
	for (unsigned i = 0; i < MIG_JOINS_MAX; i++)
		mig_stream_close(&l->joins[i]);
	l->need = l->joined = 0;
}

static void take_connection(struct listener *l, int lfd)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	char peer[64];

	if (fd < 0)
		return; /* gone before we took it */
	mig_peer_name(fd, peer, sizeof(peer));
	for (unsigned i = 0; i < MIG_CANDIDATES; i++) {
		struct candidate *c = &l->c[i];
		if (c->used)
			continue;
		*c = (struct candidate){ .l = l, .used = true, .s = { .fd = fd } };
		snprintf(c->peer, sizeof(c->peer), "%s", peer);
		if (pthread_create(&c->thread, NULL, admit_thread, c) == 0)
			return;
		c->used = false;
		break;
	}
	pr_warn("migration: closed a connection from %s: %u others are being admitted", peer, MIG_CANDIDATES);
	close(fd);
	l->refused++;
}

/* Stops every candidate but the winner and joins it. */
static void stop_candidates(struct listener *l, int winner)
{
	pthread_mutex_lock(&l->lock);
	for (unsigned i = 0; i < MIG_CANDIDATES; i++)
		if (l->c[i].used && !l->c[i].done && (int)i != winner)
			shutdown(l->c[i].s.fd, SHUT_RDWR); /* wakes its reads */
	pthread_mutex_unlock(&l->lock);
	for (unsigned i = 0; i < MIG_CANDIDATES; i++) {
		struct candidate *c = &l->c[i];
		if (!c->used || (int)i == winner)
			continue;
		if (!c->reaped)
			pthread_join(c->thread, NULL);
		if (c->admitted)
			l->w->drop(l->w->ctx, c->result, c->join);
		release(c);
	}
}

static bool parked_joins(struct listener *l)
{
	bool any = false;

	pthread_mutex_lock(&l->lock);
	for (unsigned i = 0; i < MIG_CANDIDATES; i++)
		any |= l->c[i].used && l->c[i].done && l->c[i].join;
	pthread_mutex_unlock(&l->lock);
	return any;
}

static int wait_loop(struct listener *l, int lfd, int *winner, struct err *e)
{
	const struct mig_wait *w = l->w;
	uint64_t deadline = w->wait_ms ? now_ns() + (uint64_t)w->wait_ms * 1000000u : 0;
	struct pollfd p[4] = { { .fd = lfd, .events = POLLIN }, { .fd = l->efd, .events = POLLIN }, { .fd = -1 },
			       { .fd = -1 } };

	for (unsigned i = 0; w->cancel && i < 2; i++)
		p[2 + i] = (struct pollfd){ .fd = w->cancel->fd[i], .events = POLLIN };
	for (;;) {
		if ((*winner = reap(l, *winner)) >= 0 && l->joined == l->need)
			return 0;
		uint64_t now = now_ns();
		if (*winner >= 0 && now >= l->join_deadline) {
			char why[160];
			snprintf(why, sizeof(why), "the source opened %u of its %u connections within %u s", l->joined + 1,
				 l->need + 1, MIG_ADMIT_MS / 1000);
			refuse(l, &l->c[*winner], why);
			drop_joins(l);
			*winner = -1;
			continue;
		}
		int timeout = -1;
		if (deadline) {
			if (now >= deadline)
				return err_set(e, -ETIMEDOUT, "no migration arrived on '%s' within %u s (%u connections "
							      "refused)", w->addr, w->wait_ms / 1000, l->refused);
			timeout = (int)((deadline - now) / 1000000u) + 1;
		}
		/* a source waiting for its joins, or joins waiting for a source,
		 * have deadlines of their own */
		if (*winner >= 0 || parked_joins(l)) {
			int t = *winner >= 0 ? (int)((l->join_deadline - now) / 1000000u) + 1 : 250;
			if (timeout < 0 || t < timeout)
				timeout = t;
		}
		int r = poll(p, 4, timeout);
		if (r < 0 && errno != EINTR)
			return err_errno(e, -errno, "waiting on '%s'", w->addr);
		if (r <= 0)
			continue;
		if (p[2].revents || p[3].revents)
			return err_set(e, -ECANCELED, "stopped while waiting for a migration on '%s'", w->addr);
		if (p[1].revents)
			eventfd_drain(l->efd, "migration listener");
		if (p[0].revents)
			take_connection(l, lfd);
	}
}

int mig_wait_for_source(const struct mig_wait *w, struct mig_stream *s, void **result, struct mig_stream *joins,
			struct err *e)
{
	struct listener l = { .w = w, .joins = joins };
	struct mig_listen_id id;
	int winner = -1, lfd, r;

	lfd = mig_listen(w->addr, e);
	if (lfd < 0)
		return lfd;
	mig_listen_identity(w->addr, &id);
	l.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l.efd < 0) {
		r = err_errno(e, -errno, "eventfd");
		close(lfd);
		mig_unlink(w->addr, &id);
		return r;
	}
	for (unsigned i = 0; i < MIG_JOINS_MAX; i++)
		joins[i] = (struct mig_stream){ .fd = -1 };
	pthread_mutex_init(&l.lock, NULL);
	r = wait_loop(&l, lfd, &winner, e);
	close(lfd);
	mig_unlink(w->addr, &id);
	if (r < 0 && winner >= 0) {
		l.w->drop(l.w->ctx, l.c[winner].result, false);
		release(&l.c[winner]);
		drop_joins(&l);
		winner = -1;
	}
	stop_candidates(&l, winner);
	if (winner >= 0) {
		*s = l.c[winner].s;
		*result = l.c[winner].result;
		if (l.refused)
			pr_info("migration: the source is %s (%u other connections refused)", l.c[winner].peer, l.refused);
	}
	pthread_mutex_destroy(&l.lock);
	close(l.efd);
	return r;
}
