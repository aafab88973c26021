/* SPDX-License-Identifier: MIT */
/* devices/blk_copy.c - copying a disk's image in a migration (blk_copy.h). */
#include "devices/blk_copy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNKS_PER_PIECE (DEV_COPY_MAX / BLK_COPY_CHUNK)
_Static_assert(DEV_COPY_MAX % BLK_COPY_CHUNK == 0 && BLK_COPY_CHUNK % PAGE == 0, "copy piece sizes");

int blk_copy_begin(struct blk_copy_map *m, const struct blk_image *img, struct err *e)
{
	char self[64];

	memset(m, 0, sizeof(*m));
	m->fd = -1;
	m->size = img->size;
	m->nchunks = (img->size + BLK_COPY_CHUNK - 1) / BLK_COPY_CHUNK;
	m->bits = calloc((m->nchunks + 63) / 64, 8);
	if (!m->bits)
		return err_set(e, -ENOMEM, "disk '%s': out of memory for its copy map", img->path);
	for (uint64_t c = 0; c < m->nchunks; c++)
		m->bits[c / 64] |= 1ull << (c % 64);
	/* the same open file, whatever its path names now */
	snprintf(self, sizeof(self), "/proc/self/fd/%d", img->fd);
	m->fd = open(self, O_RDONLY | O_CLOEXEC);
	if (m->fd < 0) {
		int r = err_errno(e, -errno, "disk '%s': cannot open it again to copy it", img->path);
		blk_copy_end(m);
		return r;
	}
	return 0;
}

void blk_copy_end(struct blk_copy_map *m)
{
	if (m->fd >= 0)
		close(m->fd);
	free(m->bits);
	memset(m, 0, sizeof(*m));
	m->fd = -1;
}

void blk_copy_mark(struct blk_copy_map *m, uint64_t off, uint64_t len)
{
	if (!len || off >= m->size)
		return;
	uint64_t last = (off + len - 1 < m->size ? off + len - 1 : m->size - 1) / BLK_COPY_CHUNK;
	/* release: the write completed before its chunk is pending, so the
	 * reader that takes the bit (acquire) reads what it wrote or later */
	for (uint64_t c = off / BLK_COPY_CHUNK; c <= last; c++)
		__atomic_fetch_or(&m->bits[c / 64], 1ull << (c % 64), __ATOMIC_RELEASE);
}

uint64_t blk_copy_pending(const struct blk_copy_map *m)
{
	uint64_t n = 0;

	for (uint64_t w = 0; m->bits && w < (m->nchunks + 63) / 64; w++)
		n += (uint64_t)__builtin_popcountll(__atomic_load_n(&m->bits[w], __ATOMIC_RELAXED));
	return n * BLK_COPY_CHUNK;
}

/* Takes chunk c if it is pending: true when its bit was set (and is now
 * clear, before anything reads the chunk). */
static bool take(struct blk_copy_map *m, uint64_t c)
{
	uint64_t bit = 1ull << (c % 64);

	return __atomic_fetch_and(&m->bits[c / 64], ~bit, __ATOMIC_ACQ_REL) & bit;
}

/* The first pending chunk at or after c, or nchunks. */
static uint64_t next_pending(const struct blk_copy_map *m, uint64_t c)
{
	while (c < m->nchunks) {
		uint64_t w = __atomic_load_n(&m->bits[c / 64], __ATOMIC_RELAXED) >> (c % 64);
		if (w)
			return c + (uint64_t)__builtin_ctzll(w);
		c = (c / 64 + 1) * 64;
	}
	return m->nchunks;
}

static uint64_t chunk_end(const struct blk_copy_map *m, uint64_t c)
{
	uint64_t end = (c + 1) * BLK_COPY_CHUNK;

	return end < m->size ? end : m->size;
}

/* Where the image's next data at or after off begins (size: none). A
 * filesystem that cannot say counts everything as data. */
static uint64_t next_data(const struct blk_copy_map *m, uint64_t off)
{
	off_t d = lseek(m->fd, (off_t)off, SEEK_DATA);

	if (d >= 0)
		return (uint64_t)d;
	return errno == ENXIO ? m->size : off;
}

/* Where the hole after off begins (size: none, or the filesystem cannot
 * say). */
static uint64_t next_hole(const struct blk_copy_map *m, uint64_t off)
{
	off_t h = lseek(m->fd, (off_t)off, SEEK_HOLE);

	return h >= 0 && (uint64_t)h < m->size ? (uint64_t)h : m->size;
}

static bool all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i += PAGE)
		if (!page_is_zero(p + i))
			return false;
	return true;
}

/* Puts chunks [c, end) back: pending again. */
static void put_back(struct blk_copy_map *m, uint64_t c, uint64_t end)
{
	for (; c < end; c++)
		__atomic_fetch_or(&m->bits[c / 64], 1ull << (c % 64), __ATOMIC_RELEASE);
}

/* A hole from chunk c (taken) on: takes the pending chunks after it, then
 * asks where data begins again, since a write may have completed before a
 * chunk was taken; chunks that are no longer wholly in the hole go back. */
static void hole_piece(struct blk_copy_map *m, uint64_t c, struct dev_copy_piece *p)
{
	uint64_t off = c * BLK_COPY_CHUNK, k = c + 1, h = c + 1;

	while (k < m->nchunks && take(m, k))
		k++;
	uint64_t data = next_data(m, off);
	if (data < chunk_end(m, c)) {
		/* chunk c itself was written meanwhile: all go back, c with them */
		put_back(m, c, k);
		m->cursor = c;
		*p = (struct dev_copy_piece){ .zero = true, .len = 0 };
		return;
	}
	while (h < k && chunk_end(m, h) <= data)
		h++;
	put_back(m, h, k);
	m->cursor = h;
	*p = (struct dev_copy_piece){ .zero = true, .offset = off, .len = chunk_end(m, h - 1) - off };
}

int blk_copy_next(struct blk_copy_map *m, struct dev_copy_piece *p, void *buf, const char *path, struct err *e)
{
	for (;;) {
		uint64_t c = next_pending(m, m->cursor);
		if (c >= m->nchunks) {
			m->cursor = 0;
			return 0;
		}
		/* taken before it is read: a write completing after this marks
		 * it again for the next pass */
		take(m, c);
		uint64_t off = c * BLK_COPY_CHUNK, end = chunk_end(m, c);
		if (next_data(m, off) >= end) {
			hole_piece(m, c, p);
			if (p->len)
				return 1;
			continue; /* written meanwhile: read it as data */
		}
		/* a data run ends where a hole begins, so that holes go free */
		uint64_t hole = next_hole(m, off);
		while (++c < m->nchunks && c * BLK_COPY_CHUNK - off < DEV_COPY_MAX && c * BLK_COPY_CHUNK < hole &&
		       take(m, c))
			end = chunk_end(m, c);
		m->cursor = c;
		int r = pread_all(m->fd, buf, end - off, (off_t)off);
		if (r < 0)
			return err_errno(e, r, "disk '%s': reading it to copy (byte %llu)", path, (unsigned long long)off);
		*p = (struct dev_copy_piece){ .zero = all_zero(buf, end - off), .offset = off, .len = end - off };
		return 1;
	}
}

/* Zeros [off, off+len): a hole where the file can have one, else written. */
static int zero_range(int fd, uint64_t off, uint64_t len)
{
	static const uint8_t zeros[64 << 10];

	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) == 0 ||
	    fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) == 0)
		return 0;
	for (uint64_t done = 0; done < len;) {
		size_t n = len - done < sizeof(zeros) ? (size_t)(len - done) : sizeof(zeros);
		int r = pwrite_all(fd, zeros, n, (off_t)(off + done));
		if (r < 0)
			return r;
		done += n;
	}
	return 0;
}

int blk_copy_write(int fd, uint64_t size, const struct dev_copy_piece *p, const void *data, const char *path,
		   struct err *e)
{
	uint64_t end;
	int r;

	if (!p->len || p->offset % BLK_SECTOR || p->len % BLK_SECTOR || add_overflows(p->offset, p->len, &end) ||
	    end > size || (!p->zero && p->len > DEV_COPY_MAX))
		return err_set(e, -EPROTO, "migration: a copied piece of disk '%s' (%llu bytes at %llu) does not fit "
					   "its %llu bytes", path, (unsigned long long)p->len,
			       (unsigned long long)p->offset, (unsigned long long)size);
	r = p->zero ? zero_range(fd, p->offset, p->len) : pwrite_all(fd, data, p->len, (off_t)p->offset);
	if (r < 0)
		return err_errno(e, r, "disk '%s': writing what the migration copied (byte %llu)", path,
				 (unsigned long long)p->offset);
	return 0;
}
