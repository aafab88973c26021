/* SPDX-License-Identifier: MIT */
/*
 * devices/blk_copy.h - a disk's image copied by a live migration between
 * hosts that do not share storage (tern migrate --copy-disks,
 * docs/disks.md), pre-copy style like RAM.
 *
 * The source keeps a map of the image's 64 KiB chunks still to send. The
 * copy starts with every chunk pending; the disk's thread marks the chunks
 * of every write, discard and write-zeroes once it has completed
 * (blk_io.c), and the migration clears a chunk's bit before it reads the
 * chunk: so a chunk read is either what the image holds or pending again,
 * and once the disk is paused (nothing in flight) the last pass leaves
 * nothing behind. The migration reads through a descriptor of its own
 * (the page cache: O_DIRECT's alignment rules do not apply to it, and the
 * kernel keeps the two coherent), a pass at a time in image order; holes
 * (SEEK_DATA) and chunks that read as zeros go without data.
 *
 * The destination writes each piece through a descriptor of its own too,
 * after checking that it lies inside the image (blk_image_open_target()
 * created the image, or checked its size, and locked it).
 */
#ifndef TERN_DEVICES_BLK_COPY_H
#define TERN_DEVICES_BLK_COPY_H

#include "devices/blk_image.h"
#include "devices/device.h"

#define BLK_COPY_CHUNK (64u << 10)

struct blk_copy_map {
	uint64_t size;     /* the image's bytes */
	uint64_t nchunks;
	uint64_t *bits;    /* chunks still to send: set by the disk's thread, taken by the migration (atomics) */
	uint64_t cursor;   /* the migration's: where this pass goes on */
	int fd;            /* the image, read through the page cache */
};

/* Every chunk of img pending, and a descriptor to read them. */
int blk_copy_begin(struct blk_copy_map *m, const struct blk_image *img, struct err *e);
void blk_copy_end(struct blk_copy_map *m);
/* The disk's thread: bytes [off, off+len) of the image changed. */
void blk_copy_mark(struct blk_copy_map *m, uint64_t off, uint64_t len);
/* Bytes still pending (whole chunks). */
uint64_t blk_copy_pending(const struct blk_copy_map *m);
/* The next pending piece of this pass into *p (unit set by the caller)
 * and, unless it is zero, its data into buf (DEV_COPY_MAX bytes). 1: a
 * piece; 0: the pass is over, the next call starts another. */
int blk_copy_next(struct blk_copy_map *m, struct dev_copy_piece *p, void *buf, const char *path, struct err *e);
/* The destination: writes piece p into the image open for a copy (fd,
 * size bytes), after checking it lies inside it. */
int blk_copy_write(int fd, uint64_t size, const struct dev_copy_piece *p, const void *data, const char *path,
		   struct err *e);

#endif
