/* SPDX-License-Identifier: MIT */
/*
 * devices/blk_io.h - the virtio-blk data path: one thread per disk with
 * one io_uring, serving every queue of the disk.
 *
 * The thread waits in the ring for everything at once: a poll on each
 * queue's kick eventfd (the guest's notify, an ioeventfd) and the
 * completions of the disk I/O it submitted. A kick takes every available
 * chain of that queue (checked by blk_request.c), submits what needs I/O
 * in one batch, and answers the rest at once; a completion writes the
 * status, returns the chain and, where the driver asks, interrupts it
 * through the queue's call eventfd (an irqfd).
 *
 * With a copy map attached (a migration copying the disk, blk_copy.h),
 * every write, discard and write-zeroes marks its chunks when it
 * completes, whether it succeeded or not.
 *
 * Every byte tern writes into guest memory (read data, the status, the
 * used ring) is marked in the dirty log while one is attached, since KVM
 * does not see a process's own writes.
 *
 * Pausing stops taking requests and waits until every request in flight
 * has completed and been returned: a paused disk has nothing in flight,
 * so a snapshot or a migration needs only each queue's indices, and no
 * request is lost or made twice.
 */
#ifndef TERN_DEVICES_BLK_IO_H
#define TERN_DEVICES_BLK_IO_H

#include <liburing.h>
#include <pthread.h>

#include "devices/blk_image.h"
#include "devices/blk_request.h"

struct sandbox;

struct blk_copy_map;
struct dirty_log;
struct guest_mem;

struct blk_queue_setup {
	uint16_t num;
	uint64_t desc, avail, used;  /* GPAs */
	uint16_t last_avail, used_idx;
	bool event_idx;
	int kick_fd, call_fd;
};

struct blk_slot;

struct blk_queue {
	struct vring_dev ring;
	int kick_fd, call_fd;
	struct blk_slot *slots;      /* ring.num, indexed by head */
	unsigned inflight;
	bool broken;
};

enum blk_engine_state { BLK_RUNNING, BLK_PAUSING, BLK_PAUSED, BLK_STOPPING };

struct blk_stats {
	uint64_t requests, reads, writes, flushes, errors, bad_chains, bounced;
};

struct blk_engine {
	const struct sandbox *sandbox; /* its thread's filter (NULL: none) */
	const struct blk_image *img;
	const struct blk_limits *lim;
	struct io_uring uring;
	bool uring_live;
	struct iotlb ram;            /* guest RAM, GPA -> HVA */
	unsigned nq;
	struct blk_queue q[DISK_MAX_QUEUES];
	int ctl_fd;                  /* eventfd: a state change is asked for */
	pthread_t thread;
	bool thread_live;
	pthread_mutex_t lock;        /* state, log; cond signals state changes */
	pthread_cond_t cond;
	enum blk_engine_state state;
	struct dirty_log *log;       /* under lock */
	struct blk_copy_map *copy;   /* under lock: the chunks a migration must copy again */
	struct blk_stats stats;      /* the thread's (approximate while it runs) */
	bool busy;                   /* the thread's: the last round did work */
	/* a queue broke the ring rules and stopped (called on the thread) */
	void (*on_broken)(void *opaque, unsigned queue, int err);
	void *opaque;
};

/* Starts serving nq queues of a disk over guest RAM mem. */
int blk_engine_start(struct blk_engine *b, const struct blk_image *img, const struct blk_limits *lim,
		     const struct guest_mem *mem, const struct blk_queue_setup *qs, unsigned nq, struct err *e);
/* Stops the thread once what is in flight has completed; safe on a
 * stopped engine. */
void blk_engine_stop(struct blk_engine *b);
/* Pause: no new request is taken, and returns once none is in flight.
 * Resume: requests are taken again (every queue looked at once). */
void blk_engine_pause(struct blk_engine *b);
void blk_engine_resume(struct blk_engine *b);
/* Each queue's indices (a paused engine: nothing in flight). */
void blk_engine_indices(struct blk_engine *b, unsigned i, uint16_t *last_avail, uint16_t *used_idx);
/* The dirty log to mark from now on, or NULL; returns once no write marks
 * the old one. */
void blk_engine_set_log(struct blk_engine *b, struct dirty_log *log);
/* The copy map to mark with every write that completes from now on, or
 * NULL; returns once no completion marks the old one. */
void blk_engine_set_copy(struct blk_engine *b, struct blk_copy_map *copy);
void blk_engine_stats(struct blk_engine *b, struct blk_stats *out);

#endif
