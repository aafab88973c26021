/* SPDX-License-Identifier: MIT */
#include "vmm/event.h"

#include <errno.h>
#include <poll.h>
#include <string.h>

#define EVENT_RING_ENTRIES 32

int event_loop_init(struct event_loop *el, struct err *e)
{
	int r;

	memset(el, 0, sizeof(*el));
	r = io_uring_queue_init(EVENT_RING_ENTRIES, &el->ring, 0);
	if (r < 0)
		return err_errno(e, r, "io_uring_queue_init");
	el->ring_ready = true;
	return 0;
}

void event_loop_exit(struct event_loop *el)
{
	if (el->ring_ready)
		io_uring_queue_exit(&el->ring);
	el->ring_ready = false;
}

int event_add(struct event_loop *el, struct event_source *src)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&el->ring);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_poll_add(sqe, src->fd, POLLIN);
	io_uring_sqe_set_data(sqe, src);
	src->armed = true;
	return io_uring_submit(&el->ring) < 0 ? -EIO : 0;
}

int event_loop_run(struct event_loop *el)
{
	int r;

	/* Every armed source has exactly one single-shot poll in flight; it is
	 * re-armed after its callback unless the callback declines. */
	while (!el->stop) {
		struct io_uring_cqe *cqe;

		r = io_uring_wait_cqe(&el->ring, &cqe);
		if (r == -EINTR)
			continue;
		if (r < 0)
			return r;
		struct event_source *src = io_uring_cqe_get_data(cqe);
		int res = cqe->res;
		io_uring_cqe_seen(&el->ring, cqe);
		if (!src)
			continue;
		src->armed = false;
		unsigned revents = res < 0 ? POLLERR : (unsigned)res;
		if (src->ready(src, revents) && !el->stop) {
			r = event_add(el, src);
			if (r < 0)
				return r;
		}
	}
	return 0;
}
