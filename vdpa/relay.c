/* SPDX-License-Identifier: MIT */
/*
 * vdpa/relay.c - see relay.h.
 */
#include "vdpa/relay.h"
#include "vmm/sandbox.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* Lock held. A failed queue stops; the first error is kept, and the
 * owner is told (report_failures(), once no lock of the relay is held). */
static void queue_failed(struct relay *r, unsigned i, const char *who, int err)
{
	struct relay_queue *q = &r->q[i];

	if (q->stopped)
		return;
	q->stopped = true;
	q->unreported = err;
	if (!r->error)
		r->error = err;
	pr_warn("%s: shadow queue %u stopped: the %s broke the ring rules (%s)", r->name, q->id, who,
		strerror(-err));
}

/* Tells the owner of every queue that failed since the last call. Called
 * on the relay thread after it dropped its lock, or on the caller's
 * thread at the end of relay_drain(). */
static void report_failures(struct relay *r)
{
	for (unsigned i = 0; i < r->n; i++) {
		int err = r->q[i].unreported;
		r->q[i].unreported = 0;
		if (err && r->on_error)
			r->on_error(r->on_error_opaque, r->q[i].id, err);
	}
}

/* Lock held: returns used elements, then places new chains (room may have
 * been freed, and a parked chain go). */
static void serve(struct relay *r, unsigned i, bool place)
{
	struct relay_queue *q = &r->q[i];
	bool notify = false, notify_empty = false, kick = false;
	int n;

	if (q->stopped)
		return;
	n = svq_used(q->svq, &notify);
	if (n < 0)
		return queue_failed(r, i, "device", n);
	if (place) {
		n = svq_kick(q->svq, &kick, &notify_empty);
		if (n < 0)
			queue_failed(r, i, "guest", n);
	}
	if (notify || notify_empty) {
		eventfd_signal(q->guest_call, "shadow queue");
		r->calls++;
	}
	if (kick) {
		eventfd_signal(q->dev_kick, "shadow queue");
		r->kicks++;
	}
}

static void *relay_thread(void *arg)
{
	struct relay *r = arg;
	struct pollfd pf[2 * RELAY_MAX_QUEUES + 1];

	sandbox_enter_thread(r->sandbox, SANDBOX_DEVICE, "net-relay");
	for (;;) {
		unsigned n = 0;
		pf[n++] = (struct pollfd){ .fd = r->wake_fd, .events = POLLIN };
		for (unsigned i = 0; i < r->n; i++) {
			pf[n++] = (struct pollfd){ .fd = r->q[i].guest_kick, .events = POLLIN };
			pf[n++] = (struct pollfd){ .fd = r->q[i].dev_call, .events = POLLIN };
		}
		if (poll(pf, n, -1) < 0 && errno != EINTR) {
			pr_warn("%s: shadow queue relay: poll: %s", r->name, strerror(errno));
			break;
		}
		pthread_mutex_lock(&r->lock);
		while (r->paused && !r->stop)
			pthread_cond_wait(&r->cond, &r->lock);
		if (r->stop) {
			pthread_mutex_unlock(&r->lock);
			break;
		}
		if (pf[0].revents)
			eventfd_drain(r->wake_fd, "shadow queue");
		for (unsigned i = 0; i < r->n; i++) {
			/* read the eventfds first: a kick or call after the read
			 * is seen by the next poll, never lost */
			if (pf[1 + 2 * i].revents)
				eventfd_drain(r->q[i].guest_kick, "shadow queue");
			if (pf[2 + 2 * i].revents)
				eventfd_drain(r->q[i].dev_call, "shadow queue");
			if (pf[1 + 2 * i].revents || pf[2 + 2 * i].revents || pf[0].revents)
				serve(r, i, true);
		}
		pthread_mutex_unlock(&r->lock);
		report_failures(r);
	}
	return NULL;
}

int relay_start(struct relay *r, struct err *e)
{
	int rc;

	if (r->n > RELAY_MAX_QUEUES)
		return err_set(e, -EINVAL, "%s: %u shadow queues, at most %d", r->name, r->n, RELAY_MAX_QUEUES);
	r->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->wake_fd < 0)
		return err_errno(e, -errno, "%s: eventfd for the shadow queue relay", r->name);
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	r->paused = r->stop = false;
	r->error = 0;
	for (unsigned i = 0; i < r->n; i++) {
		r->q[i].stopped = false;
		r->q[i].unreported = 0;
	}
	rc = pthread_create(&r->thread, NULL, relay_thread, r);
	if (rc) {
		close(r->wake_fd);
		r->wake_fd = -1;
		return err_errno(e, -rc, "%s: cannot start the shadow queue relay", r->name);
	}
	r->running = true;
	/* a first round: the guest may have made buffers available already */
	eventfd_signal(r->wake_fd, "shadow queue");
	return 0;
}

void relay_stop(struct relay *r)
{
	if (!r->running)
		return;
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	eventfd_signal(r->wake_fd, "shadow queue");
	pthread_join(r->thread, NULL);
	r->running = false;
	/* the queues belonged to this session: a later relay_drain() (a
	 * recovery after a failed switch) must not walk them */
	r->n = 0;
	close(r->wake_fd);
	r->wake_fd = -1;
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cond);
}

void relay_pause(struct relay *r)
{
	if (!r->running)
		return;
	/* taking the lock waits for a round in progress */
	pthread_mutex_lock(&r->lock);
	r->paused = true;
	pthread_mutex_unlock(&r->lock);
}

void relay_unpause(struct relay *r)
{
	if (!r->running)
		return;
	pthread_mutex_lock(&r->lock);
	r->paused = false;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	/* kicks and calls that came while paused are still counted in their
	 * eventfds; one round also places what used freed room for */
	eventfd_signal(r->wake_fd, "shadow queue");
}

void relay_set_log(struct relay *r, struct dirty_log *log)
{
	if (r->running)
		pthread_mutex_lock(&r->lock);
	for (unsigned i = 0; i < r->n; i++)
		r->q[i].svq->log = log;
	if (r->running)
		pthread_mutex_unlock(&r->lock);
}

int relay_drain(struct relay *r)
{
	for (unsigned i = 0; i < r->n; i++)
		serve(r, i, false);
	report_failures(r);
	return r->error;
}
