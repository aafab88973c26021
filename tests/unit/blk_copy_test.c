/* SPDX-License-Identifier: MIT */
/*
 * devices/blk_copy.c and the copy target of blk_image.c without KVM: the
 * pieces a pass sends for an image with holes, chunks marked again by
 * writes, the destination's refusal of pieces outside its image, and the
 * target image created, sized, locked and removed again.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices/blk_copy.h"
#include "tests/unit/unit.h"

#define K64 (64u << 10)
#define SIZE ((2u << 20) - 512) /* the last chunk is short */

static void temp_path(char *path, size_t len, const char *name)
{
	snprintf(path, len, "/tmp/tern-blk-copy-%d-%s", (int)getpid(), name);
	unlink(path);
}

/* An image of SIZE bytes with data in [0, 64K) and [512K, 576K). */
static void make_image(const char *path)
{
	uint8_t data[K64];
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	memset(data, 0xa5, sizeof(data));
	assert_int_equal(ftruncate(fd, SIZE), 0);
	assert_int_equal(pwrite(fd, data, K64, 0), (ssize_t)K64);
	assert_int_equal(pwrite(fd, data, K64, 512u << 10), (ssize_t)K64);
	close(fd);
}

static void open_image(struct blk_image *img, const char *path)
{
	struct disk_config c = { .queues = 1 };
	struct err e = { { 0 } };

	snprintf(c.path, sizeof(c.path), "%s", path);
	assert_int_equal(blk_image_open(img, &c, true, &e), 0);
}

static void expect_piece(struct blk_copy_map *m, void *buf, bool zero, uint64_t off, uint64_t len)
{
	struct dev_copy_piece p;
	struct err e = { { 0 } };

	assert_int_equal(blk_copy_next(m, &p, buf, "img", &e), 1);
	assert_int_equal(p.zero, zero);
	assert_int_equal(p.offset, off);
	assert_int_equal(p.len, len);
}

static void expect_pass_end(struct blk_copy_map *m, void *buf)
{
	struct dev_copy_piece p;
	struct err e = { { 0 } };

	assert_int_equal(blk_copy_next(m, &p, buf, "img", &e), 0);
}

static void test_passes_skip_holes_and_resend_writes(void **state)
{
	char path[128];
	struct blk_image img;
	struct blk_copy_map m;
	struct err e = { { 0 } };
	uint8_t *buf = malloc(DEV_COPY_MAX);

	(void)state;
	temp_path(path, sizeof(path), "map");
	make_image(path);
	open_image(&img, path);
	assert_int_equal(blk_copy_begin(&m, &img, &e), 0);
	assert_int_equal(blk_copy_pending(&m), 32ull * K64);
	/* pass 1: data, the hole up to the next data as one piece, data, the rest */
	expect_piece(&m, buf, false, 0, K64);
	assert_int_equal(buf[0], 0xa5);
	expect_piece(&m, buf, true, K64, (512u << 10) - K64);
	expect_piece(&m, buf, false, 512u << 10, K64);
	expect_piece(&m, buf, true, 576u << 10, SIZE - (576u << 10));
	expect_pass_end(&m, buf);
	assert_int_equal(blk_copy_pending(&m), 0);
	expect_pass_end(&m, buf);
	/* writes mark their chunks, clipped to the image */
	blk_copy_mark(&m, 100, 1);
	blk_copy_mark(&m, SIZE - 1000, 5000);
	blk_copy_mark(&m, SIZE, 512); /* past the end: nothing */
	blk_copy_mark(&m, 4096, 0);
	assert_int_equal(blk_copy_pending(&m), 2ull * K64);
	expect_piece(&m, buf, false, 0, K64);
	expect_piece(&m, buf, true, 31ull * K64, SIZE - 31ull * K64);
	expect_pass_end(&m, buf);
	/* a chunk marked behind the cursor waits for the next pass */
	blk_copy_mark(&m, 600u << 10, 1);
	blk_copy_mark(&m, 0, 1);
	expect_piece(&m, buf, false, 0, K64);
	blk_copy_mark(&m, 0, 1);
	expect_piece(&m, buf, true, 576u << 10, K64); /* in the hole: no data */
	expect_pass_end(&m, buf);
	expect_piece(&m, buf, false, 0, K64);
	expect_pass_end(&m, buf);
	blk_copy_end(&m);
	blk_image_close(&img);
	unlink(path);
	free(buf);
}

static void test_target_refuses_pieces_outside(void **state)
{
	char path[128];
	uint8_t data[4096], back[4096];
	struct err e = { { 0 } };
	int fd;

	(void)state;
	temp_path(path, sizeof(path), "write");
	make_image(path);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	memset(data, 0x3c, sizeof(data));
	const struct dev_copy_piece bad[] = {
		{ .offset = SIZE, .len = 512 },               /* past the end */
		{ .offset = SIZE - 512, .len = 1024 },        /* over it */
		{ .offset = ~0ull - 511, .len = 1024 },       /* wrapping around */
		{ .offset = 100, .len = 512 },                /* misaligned */
		{ .offset = 0, .len = 100 },
		{ .offset = 0, .len = 0 },
		{ .offset = 0, .len = DEV_COPY_MAX + 512 },   /* too much data */
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		memset(&e, 0, sizeof(e));
		assert_int_equal(blk_copy_write(fd, SIZE, &bad[i], data, "img", &e), -EPROTO);
		assert_err_contains(&e, "does not fit");
	}
	struct dev_copy_piece ok = { .offset = 8192, .len = 4096 };
	assert_int_equal(blk_copy_write(fd, SIZE, &ok, data, "img", &e), 0);
	assert_int_equal(pread(fd, back, 4096, 8192), 4096);
	assert_memory_equal(back, data, 4096);
	/* a zero piece: zeros where data was (a hole, the file allows it) */
	struct dev_copy_piece zero = { .zero = true, .offset = 0, .len = 2 * K64 };
	assert_int_equal(blk_copy_write(fd, SIZE, &zero, NULL, "img", &e), 0);
	assert_int_equal(pread(fd, back, 4096, 8192), 4096);
	memset(data, 0, sizeof(data));
	assert_memory_equal(back, data, 4096);
	close(fd);
	unlink(path);
}

static void test_target_created_sized_locked_removed(void **state)
{
	char path[128];
	struct blk_image t, other;
	struct disk_config c = { .queues = 1, .readonly = true };
	struct err e = { { 0 } };
	struct stat st;

	(void)state;
	temp_path(path, sizeof(path), "target");
	snprintf(c.path, sizeof(c.path), "%s", path);
	/* created, sized, write-locked even though read-only */
	assert_int_equal(blk_image_open_target(&t, &c, SIZE, &e), 0);
	assert_true(t.created && t.copying && t.copy_fd >= 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, SIZE);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(blk_image_open(&other, &c, true, &e), -EBUSY);
	/* done: a read-only disk's lock becomes a read lock */
	assert_int_equal(blk_image_copy_done(&t, &e), 0);
	assert_int_equal(t.copy_fd, -1);
	memset(&e, 0, sizeof(e));
	assert_int_equal(blk_image_open(&other, &c, true, &e), 0);
	blk_image_close(&other);
	blk_image_abandon(&t);
	assert_int_equal(stat(path, &st), -1);
	blk_image_close(&t);
	/* an existing image of another size is refused and kept */
	make_image(path);
	assert_int_equal(blk_image_open_target(&t, &c, SIZE + 512, &e), -EINVAL);
	assert_err_contains(&e, "give an image of that size");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, SIZE);
	/* held by another: refused, naming shared storage */
	c.readonly = false;
	open_image(&other, path);
	memset(&e, 0, sizeof(e));
	assert_int_equal(blk_image_open_target(&t, &c, SIZE, &e), -EBUSY);
	assert_err_contains(&e, "migrate without --copy-disks");
	blk_image_close(&other);
	/* an empty file grows to the size; a failed source size is refused */
	assert_int_equal(truncate(path, 0), 0);
	memset(&e, 0, sizeof(e));
	assert_int_equal(blk_image_open_target(&t, &c, SIZE, &e), 0);
	assert_false(t.created);
	assert_int_equal(t.size, SIZE);
	blk_image_abandon(&t); /* not created here: kept */
	assert_int_equal(stat(path, &st), 0);
	blk_image_close(&t);
	assert_int_equal(blk_image_open_target(&t, &c, 100, &e), -EPROTO);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_passes_skip_holes_and_resend_writes),
		cmocka_unit_test(test_target_refuses_pieces_outside),
		cmocka_unit_test(test_target_created_sized_locked_removed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
