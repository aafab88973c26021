/* SPDX-License-Identifier: MIT */
/*
 * migrate/listener.h - a destination's wait for its source, which no
 * stranger can end or block (docs/migration.md, "The listener").
 *
 * Every connection that arrives gets a thread of its own, which runs the
 * TLS handshake (with --tls-dir) and then admit(): the stream's header
 * and configuration, read and checked. Each has a short deadline of its
 * own (MIG_ADMIT_MS), so a silent or slow peer holds only its own thread,
 * at most MIG_CANDIDATES at once. A connection refused (plain TCP to a
 * TLS listener, a bad certificate, garbage, another VM, a configuration
 * this host cannot take) is told why where it can be (REFUSE), logged,
 * and closed, and the wait goes on; the first one admitted is the source.
 * A source that migrates over several connections (migrate/stripes.h)
 * opens the others after its configuration: each is admitted as a join,
 * matched against the source, and must arrive within MIG_ADMIT_MS of it,
 * or the source is refused and the wait goes on. A join that finds no
 * source within MIG_ADMIT_MS is refused. The wait ends with the source
 * and all its connections, at its deadline (0: none), or when cancel
 * fires.
 */
#ifndef TERN_MIGRATE_LISTENER_H
#define TERN_MIGRATE_LISTENER_H

#include "migrate/stream.h"

#define MIG_ADMIT_MS 5000   /* a connection's handshake, header and configuration */
#define MIG_DRAIN_MS 1000   /* a refused peer's last bytes, read before the close */
#define MIG_CANDIDATES 8    /* connections being admitted at once; more are closed */

struct mig_tls_creds;

struct mig_wait {
	const char *addr;
	const struct mig_tls_creds *tls;  /* NULL: plain */
	unsigned wait_ms;                 /* for a source that is admitted; 0: forever */
	const struct mig_cancel *cancel;  /* may be NULL */
	const struct sandbox *sandbox;    /* the admitting threads' filter (NULL: none) */
	/* On the connection's thread: 0 admits it as a source, MIG_ADMIT_JOIN
	 * as a further connection of one, with *result set; -errno refuses
	 * it, with e's message sent to the peer and logged. */
	int (*admit)(void *ctx, struct mig_stream *s, void **result, struct err *e);
	/* an admitted result that is not kept (or, for a join, once matched) */
	void (*drop)(void *ctx, void *result, bool join);
	/* How many joins an admitted source opens (0: none). */
	unsigned (*joins)(void *ctx, void *source);
	/* A join's place (1..joins(source)) among the source's connections,
	 * or -errno: it is not the source's (e says why). */
	int (*match)(void *ctx, void *source, void *join, struct err *e);
	void *ctx;
};

#define MIG_ADMIT_JOIN 1

/* Waits for the source; on success *s is its stream (the connection, its
 * TLS session), *result what admit() made of it, and joins[0..n-1] its
 * further connections in their order (n = joins(*result); the array
 * holds MIG_JOINS_MAX). The listening socket is gone when this returns (a
 * unix: path only if it is still ours). */
#define MIG_JOINS_MAX 15
int mig_wait_for_source(const struct mig_wait *w, struct mig_stream *s, void **result, struct mig_stream *joins,
			struct err *e);
/* Closes a stream's connection and frees its TLS session. */
void mig_stream_close(struct mig_stream *s);

#endif
