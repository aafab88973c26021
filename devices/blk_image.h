/* SPDX-License-Identifier: MIT */
/*
 * devices/blk_image.h - a disk image as the virtio-blk device uses it:
 * opened once (O_DIRECT for cache=none where the filesystem allows it),
 * locked so that two VMMs never write one image, and sized.
 *
 * Locking uses open file description locks (F_OFD_SETLK, as QEMU does):
 * they belong to the open file, not the process, so they survive threads
 * and go away with the last descriptor. A read-write disk takes a write
 * lock on the whole file, a read-only disk a read lock: readers share, a
 * writer excludes everyone. Taken without waiting: a held image fails at
 * once.
 */
#ifndef TERN_DEVICES_BLK_IMAGE_H
#define TERN_DEVICES_BLK_IMAGE_H

#include "devices/disk_config.h"

#define BLK_SECTOR 512u

struct blk_image {
	int fd;
	uint64_t size;       /* bytes, a multiple of BLK_SECTOR */
	bool direct;         /* opened with O_DIRECT */
	bool readonly;
	bool block_device;
	bool locked;         /* holds its lock (see blk_image_lock()) */
	/* a migration's destination copying into it (blk_image_open_target()):
	 * write-locked even if read-only, written through copy_fd */
	bool copying;
	bool created;        /* by blk_image_open_target() */
	int copy_fd;
	uint32_t align;      /* what O_DIRECT requires of buffers and offsets */
	char path[4096];
};

/* Opens and sizes c's image, and locks it unless lock is false (a
 * migration's destination, which takes the lock only when the source has
 * let go of it at the hand-over). -EBUSY when another process holds a
 * conflicting lock; errors name the image. */
int blk_image_open(struct blk_image *img, const struct disk_config *c, bool lock, struct err *e);
/* A migration's destination that receives the image's contents: opens it
 * read-write, creating it (sparse, size bytes) if it does not exist, or
 * checks that it has size bytes, write-locks it at once, and opens
 * copy_fd to write the copy with. */
int blk_image_open_target(struct blk_image *img, const struct disk_config *c, uint64_t size, struct err *e);
/* The copy is complete: made durable, copy_fd closed, and a read-only
 * disk's lock turned into a read lock. */
int blk_image_copy_done(struct blk_image *img, struct err *e);
/* A copy that failed: an image that blk_image_open_target() created is
 * removed (if its path still names it). */
void blk_image_abandon(struct blk_image *img);
/* Takes the lock (no-op if held), or lets it go. */
int blk_image_lock(struct blk_image *img, struct err *e);
void blk_image_unlock(struct blk_image *img);
/* Drops the lock (with the descriptor). Safe on a closed image. */
void blk_image_close(struct blk_image *img);

#endif
