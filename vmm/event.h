/* SPDX-License-Identifier: MIT */
/*
 * vmm/event.h - the main thread's event loop on io_uring: readiness polls on
 * fds (console input, the VM's exit eventfd, signals), each with a callback.
 */
#ifndef TERN_VMM_EVENT_H
#define TERN_VMM_EVENT_H

#include <liburing.h>

#include "vmm/util.h"

struct event_source;

struct event_source {
	int fd;
	/* Called on the loop thread with the poll revents. Return false to
	 * stop watching this source. */
	bool (*ready)(struct event_source *src, unsigned revents);
	bool armed;
};

struct event_loop {
	struct io_uring ring;
	bool ring_ready;
	bool stop; /* set by a callback to make event_loop_run() return */
};

int event_loop_init(struct event_loop *el, struct err *e);
void event_loop_exit(struct event_loop *el);
/* Starts watching src->fd for input (POLLIN). */
int event_add(struct event_loop *el, struct event_source *src);
/* Runs until a callback sets el->stop. */
int event_loop_run(struct event_loop *el);

#endif
