/* SPDX-License-Identifier: MIT */
/*
 * vdpa/relay.h - the thread that moves buffers through shadow virtqueues
 * (issue 8). For each shadowed queue it waits on the guest's kick (the
 * queue's ioeventfd) and on the device's call (an eventfd of tern's), and
 * runs svq_kick() / svq_used() in answer: kicking the device when it asked
 * for it, and interrupting the guest (its irqfd) when it asked for it.
 *
 * Pausing (relay_pause()) waits for a round in progress to end and keeps
 * the thread off the queues until relay_unpause(): the switch and the
 * migration's stop use it to read and change queue state from one thread.
 * A queue whose guest or device breaks the ring rules stops (sticky svq
 * error); the others go on, and on_error tells the owner, which signals
 * NEEDS_RESET to the guest (vring.h).
 */
#ifndef TERN_VDPA_RELAY_H
#define TERN_VDPA_RELAY_H

#include <pthread.h>

#include "vdpa/svq.h"

struct sandbox;

#define RELAY_MAX_QUEUES 34

struct relay_queue {
	struct svq *svq;
	int guest_kick, guest_call; /* the guest's ioeventfd and irqfd */
	int dev_kick, dev_call;     /* tern's eventfds towards the device */
	unsigned id;                /* the owner's queue index, for messages and on_error */
	bool stopped;               /* its svq failed: no longer served */
	int unreported;             /* its error, until on_error has been told */
};

struct relay {
	unsigned n;
	struct relay_queue q[RELAY_MAX_QUEUES];
	const char *name;           /* for messages */
	const struct sandbox *sandbox; /* its thread's filter (NULL: none) */
	pthread_t thread;
	bool running;
	int wake_fd;                /* eventfd: stop, pause */
	pthread_mutex_t lock;       /* paused, stop, the queues' svq state */
	pthread_cond_t cond;
	bool paused, stop;
	int error;                  /* first queue error, or 0 */
	uint64_t kicks, calls;      /* device kicks and guest interrupts sent */
	/* Called once per failed queue with no lock of the relay held (on
	 * the relay thread, or in relay_drain()'s caller); it must not wait
	 * for anything that waits for the relay. May be NULL. */
	void (*on_error)(void *opaque, unsigned id, int err);
	void *on_error_opaque;
};

/* Starts the thread over r->q[0..n) (filled in by the caller). */
int relay_start(struct relay *r, struct err *e);
/* Stops and joins it (idempotent); forgets the queues (n = 0). */
void relay_stop(struct relay *r);
void relay_pause(struct relay *r);
void relay_unpause(struct relay *r);
/* Attaches a dirty log to every queue (NULL detaches); any time. */
void relay_set_log(struct relay *r, struct dirty_log *log);
/* On the caller's thread, with the thread paused or not started: returns
 * every element the device used to the guest (marking it dirty, raising
 * the guest's interrupt when it asked) without placing anything new.
 * Returns 0 or the first queue error. */
int relay_drain(struct relay *r);

#endif
