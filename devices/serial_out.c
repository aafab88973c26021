/* SPDX-License-Identifier: MIT */
/*
 * devices/serial_out.c - see serial_out.h.
 */
#include "devices/serial_out.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "vmm/sandbox.h"

struct serial_out {
	int fd;
	const struct sandbox *sandbox; /* the writer's filter (NULL: none) */
	pthread_t thread;
	pthread_mutex_t lock;   /* everything below */
	pthread_cond_t cond;
	uint8_t *buf;           /* SERIAL_OUT_QUEUE bytes, a ring */
	size_t head, len;
	bool stop;
	uint64_t dropped;
};

static void *writer(void *arg)
{
	struct serial_out *o = arg;

	sandbox_enter_thread(o->sandbox, SANDBOX_CONSOLE, "console");
	pthread_mutex_lock(&o->lock);
	for (;;) {
		while (!o->len && !o->stop)
			pthread_cond_wait(&o->cond, &o->lock);
		if (!o->len)
			break; /* stopped, and everything is out */
		size_t n = o->len < SERIAL_OUT_QUEUE - o->head ? o->len : SERIAL_OUT_QUEUE - o->head;
		const uint8_t *p = o->buf + o->head;
		/* the bytes stay queued (and the producer appends after them)
		 * while the lock is released for the write */
		pthread_mutex_unlock(&o->lock);
		ssize_t w;
		do
			w = write(o->fd, p, n);
		while (w < 0 && errno == EINTR);
		pthread_mutex_lock(&o->lock);
		/* a console that went away loses output, like a cable pulled */
		size_t done = w > 0 ? (size_t)w : n;
		o->head = (o->head + done) % SERIAL_OUT_QUEUE;
		o->len -= done;
	}
	pthread_mutex_unlock(&o->lock);
	return NULL;
}

struct serial_out *serial_out_new(int fd, const struct sandbox *sb)
{
	struct serial_out *o = calloc(1, sizeof(*o));

	if (!o)
		return NULL;
	o->fd = fd;
	o->sandbox = sb;
	o->buf = malloc(SERIAL_OUT_QUEUE);
	pthread_mutex_init(&o->lock, NULL);
	pthread_cond_init(&o->cond, NULL);
	if (!o->buf || pthread_create(&o->thread, NULL, writer, o)) {
		pthread_mutex_destroy(&o->lock);
		pthread_cond_destroy(&o->cond);
		free(o->buf);
		free(o);
		return NULL;
	}
	return o;
}

void serial_out_put(struct serial_out *o, uint8_t c)
{
	pthread_mutex_lock(&o->lock);
	if (o->len == SERIAL_OUT_QUEUE) {
		o->dropped++;
	} else {
		o->buf[(o->head + o->len) % SERIAL_OUT_QUEUE] = c;
		if (!o->len++)
			pthread_cond_signal(&o->cond);
	}
	pthread_mutex_unlock(&o->lock);
}

uint64_t serial_out_dropped(struct serial_out *o)
{
	pthread_mutex_lock(&o->lock);
	uint64_t n = o->dropped;
	pthread_mutex_unlock(&o->lock);
	return n;
}

void serial_out_free(struct serial_out *o)
{
	if (!o)
		return;
	pthread_mutex_lock(&o->lock);
	o->stop = true;
	pthread_cond_signal(&o->cond);
	pthread_mutex_unlock(&o->lock);
	pthread_join(o->thread, NULL);
	pthread_mutex_destroy(&o->lock);
	pthread_cond_destroy(&o->cond);
	free(o->buf);
	free(o);
}
