/* SPDX-License-Identifier: MIT */
/*
 * devices/blk_request.c, disk_config.c and blk_image.c without KVM: every
 * kind of hostile virtio-blk request gets the status the spec asks for
 * and no I/O; --disk parsing; image locking between two opens.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "devices/blk_image.h"
#include "devices/blk_request.h"
#include "tests/unit/unit.h"
#include "vdpa/vdpa.h"

#define RAM 0x100000ull   /* guest RAM at [RAM, RAM + 64 KiB) and [HIGH, HIGH + 64 KiB) */
#define HIGH 0x200000ull  /* with a hole between */
#define LEN 0x10000ull

struct fixture {
	struct iotlb t;
	uint8_t *low, *high;
	struct blk_limits lim;
	struct vring_chain c;
	struct blk_req r;
};

static struct fixture *setup(void)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->low = calloc(1, LEN);
	f->high = calloc(1, LEN);
	assert_int_equal(iotlb_init(&f->t), 0);
	assert_int_equal(iotlb_map(&f->t, RAM, LEN, f->low, VDPA_PERM_RW), 0);
	assert_int_equal(iotlb_map(&f->t, HIGH, LEN, f->high, VDPA_PERM_RW), 0);
	f->lim = (struct blk_limits){ .capacity = 1000, .seg_max = 4, .max_bytes = 32768, .max_range = 64,
				      .serial = "disk-0" };
	return f;
}

static void teardown(struct fixture *f)
{
	iotlb_exit(&f->t);
	free(f->low);
	free(f->high);
	free(f);
}

static void seg(struct fixture *f, uint64_t iova, uint32_t len, bool write)
{
	f->c.seg[f->c.nseg++] = (struct vring_seg){ .iova = iova, .len = len, .write = write };
	if (write)
		f->c.in_len += len;
	else
		f->c.out_len += len;
}

/* header at RAM, data as given by the caller, status at RAM + 0x1000 */
static void header(struct fixture *f, uint32_t type, uint64_t sector)
{
	struct virtio_blk_outhdr h = { .type = type, .sector = sector };

	memset(&f->c, 0, sizeof(f->c));
	memcpy(f->low, &h, sizeof(h));
	seg(f, RAM, sizeof(h), false);
}

static int parse(struct fixture *f, bool with_status)
{
	if (with_status)
		seg(f, RAM + 0x1000, 1, true);
	return blk_request_parse(&f->c, &f->t, &f->lim, &f->r);
}

static void expect_answer(struct fixture *f, uint8_t status)
{
	assert_int_equal(parse(f, true), 0);
	assert_int_equal(f->r.op, BLK_OP_ANSWER);
	assert_int_equal(f->r.status, status);
	assert_ptr_equal(f->r.status_byte, f->low + 0x1000);
}

static void test_read_and_write(void **state)
{
	struct fixture *f = setup();

	(void)state;
	header(f, VIRTIO_BLK_T_IN, 10);
	seg(f, RAM + 0x2000, 4096, true);
	seg(f, HIGH, 512, true);
	assert_int_equal(parse(f, true), 0);
	assert_int_equal(f->r.op, BLK_OP_READ);
	assert_int_equal(f->r.offset, 10 * 512);
	assert_int_equal(f->r.len, 4608);
	assert_int_equal(f->r.niov, 2);
	assert_ptr_equal(f->r.iov[1].iov_base, f->high);
	assert_int_equal(f->r.used_len, 4609);

	header(f, VIRTIO_BLK_T_OUT, 999); /* the last sector */
	seg(f, RAM + 0x2000, 512, false);
	assert_int_equal(parse(f, true), 0);
	assert_int_equal(f->r.op, BLK_OP_WRITE);
	assert_int_equal(f->r.used_len, 1);
	teardown(f);
}

static void test_ranges_and_sizes(void **state)
{
	struct fixture *f = setup();

	(void)state;
	header(f, VIRTIO_BLK_T_IN, 1000); /* one past the end */
	seg(f, RAM + 0x2000, 512, true);
	expect_answer(f, VIRTIO_BLK_S_IOERR);
	header(f, VIRTIO_BLK_T_IN, 999); /* runs over the end */
	seg(f, RAM + 0x2000, 1024, true);
	expect_answer(f, VIRTIO_BLK_S_IOERR);
	header(f, VIRTIO_BLK_T_IN, UINT64_MAX); /* wraps */
	seg(f, RAM + 0x2000, 512, true);
	expect_answer(f, VIRTIO_BLK_S_IOERR);
	header(f, VIRTIO_BLK_T_OUT, 0); /* not whole sectors */
	seg(f, RAM + 0x2000, 100, false);
	expect_answer(f, VIRTIO_BLK_S_IOERR);
	header(f, VIRTIO_BLK_T_IN, 0); /* more than max_bytes */
	seg(f, RAM + 0x2000, 0x8000 + 512, true);
	expect_answer(f, VIRTIO_BLK_S_IOERR);
	header(f, VIRTIO_BLK_T_IN, 0); /* more segments than seg_max */
	for (unsigned i = 0; i < 5; i++)
		seg(f, RAM + 0x2000 + i * 512, 512, true);
	expect_answer(f, VIRTIO_BLK_S_IOERR);
	teardown(f);
}

static void test_hostile_layouts(void **state)
{
	struct fixture *f = setup();

	(void)state;
	header(f, VIRTIO_BLK_T_IN, 0); /* across the hole in RAM */
	seg(f, RAM + LEN - 512, 1024, true);
	expect_answer(f, VIRTIO_BLK_S_IOERR);
	header(f, VIRTIO_BLK_T_IN, 0); /* outside RAM */
	seg(f, 0x900000, 512, true);
	expect_answer(f, VIRTIO_BLK_S_IOERR);
	header(f, VIRTIO_BLK_T_IN, 0); /* a read with device-readable data */
	seg(f, RAM + 0x2000, 512, false);
	expect_answer(f, VIRTIO_BLK_S_IOERR);
	header(f, VIRTIO_BLK_T_OUT, 0); /* a write with writable data */
	seg(f, RAM + 0x2000, 512, true);
	expect_answer(f, VIRTIO_BLK_S_IOERR);
	/* a short header */
	memset(&f->c, 0, sizeof(f->c));
	seg(f, RAM, 8, false);
	expect_answer(f, VIRTIO_BLK_S_IOERR);
	/* no status byte: nothing to answer in */
	header(f, VIRTIO_BLK_T_IN, 0);
	seg(f, RAM + 0x2000, 512, false);
	assert_int_equal(parse(f, false), -EINVAL);
	header(f, 77, 0); /* an unknown type */
	expect_answer(f, VIRTIO_BLK_S_UNSUPP);
	teardown(f);
}

static void test_readonly_flush_id_discard(void **state)
{
	struct fixture *f = setup();
	struct virtio_blk_range range = { .sector = 10, .num_sectors = 8 };

	(void)state;
	f->lim.readonly = true;
	header(f, VIRTIO_BLK_T_OUT, 0);
	seg(f, RAM + 0x2000, 512, false);
	expect_answer(f, VIRTIO_BLK_S_IOERR);
	header(f, VIRTIO_BLK_T_FLUSH, 0);
	assert_int_equal(parse(f, true), 0);
	assert_int_equal(f->r.op, BLK_OP_FLUSH);
	header(f, VIRTIO_BLK_T_GET_ID, 0);
	seg(f, RAM + 0x3000, 20, true);
	expect_answer(f, VIRTIO_BLK_S_OK);
	assert_memory_equal(f->low + 0x3000, "disk-0\0\0", 8);
	assert_int_equal(f->r.used_len, 21);

	f->lim.readonly = false;
	memcpy(f->low + 0x4000, &range, sizeof(range));
	header(f, VIRTIO_BLK_T_DISCARD, 0);
	seg(f, RAM + 0x4000, sizeof(range), false);
	expect_answer(f, VIRTIO_BLK_S_UNSUPP); /* discard=off */
	f->lim.discard = true;
	header(f, VIRTIO_BLK_T_DISCARD, 0);
	seg(f, RAM + 0x4000, sizeof(range), false);
	assert_int_equal(parse(f, true), 0);
	assert_int_equal(f->r.op, BLK_OP_DISCARD);
	assert_int_equal(f->r.offset, 10 * 512);
	assert_int_equal(f->r.len, 8 * 512);
	range = (struct virtio_blk_range){ .sector = 998, .num_sectors = 8, .flags = VIRTIO_BLK_WZ_F_UNMAP };
	memcpy(f->low + 0x4000, &range, sizeof(range));
	header(f, VIRTIO_BLK_T_WRITE_ZEROES, 0); /* over the end */
	seg(f, RAM + 0x4000, sizeof(range), false);
	expect_answer(f, VIRTIO_BLK_S_IOERR);
	range = (struct virtio_blk_range){ .sector = 0, .num_sectors = 8, .flags = 2 };
	memcpy(f->low + 0x4000, &range, sizeof(range));
	header(f, VIRTIO_BLK_T_WRITE_ZEROES, 0); /* a reserved flag */
	seg(f, RAM + 0x4000, sizeof(range), false);
	expect_answer(f, VIRTIO_BLK_S_UNSUPP);
	teardown(f);
}

static void test_disk_config(void **state)
{
	struct disk_config c;
	struct err e = { { 0 } };

	(void)state;
	assert_int_equal(disk_config_parse("path=/a.img,readonly=on,serial=S1,queues=4,cache=none,discard=on", &c, &e),
			 0);
	assert_string_equal(c.path, "/a.img");
	assert_true(c.readonly && c.discard);
	assert_int_equal(c.queues, 4);
	assert_int_equal(c.cache, DISK_CACHE_NONE);
	assert_string_equal(c.serial, "S1");
	assert_int_equal(disk_config_parse("path=/b", &c, &e), 0);
	assert_int_equal(c.queues, 1);
	assert_int_equal(c.cache, DISK_CACHE_WRITEBACK);
	e = (struct err){ { 0 } };
	assert_int_equal(disk_config_parse("readonly=on", &c, &e), -EINVAL);
	assert_err_contains(&e, "path=IMAGE is required");
	assert_int_equal(disk_config_parse("path=/b,queues=0", &c, &e), -EINVAL);
	assert_int_equal(disk_config_parse("path=/b,serial=\x01", &c, &e), -EINVAL);
	assert_int_equal(disk_config_parse("path=/b,bogus", &c, &e), -EINVAL);
}

static void test_image_locks(void **state)
{
	char path[] = "/tmp/tern-blk-test-XXXXXX";
	struct blk_image a, b;
	struct disk_config c;
	struct err e = { { 0 } };
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 1 << 20), 0);
	close(fd);
	assert_int_equal(disk_config_parse("path=x", &c, &e), 0);
	snprintf(c.path, sizeof(c.path), "%s", path);
	assert_int_equal(blk_image_open(&a, &c, true, &e), 0);
	assert_int_equal(a.size, 1 << 20);
	/* OFD locks conflict between two opens even in one process */
	assert_int_equal(blk_image_open(&b, &c, true, &e), -EBUSY);
	assert_err_contains(&e, path);
	c.readonly = true;
	assert_int_equal(blk_image_open(&b, &c, true, &e), -EBUSY);
	blk_image_close(&a);
	assert_int_equal(blk_image_open(&a, &c, true, &e), 0);
	assert_int_equal(blk_image_open(&b, &c, true, &e), 0); /* readers share */
	blk_image_close(&a);
	blk_image_close(&b);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_and_write),
		cmocka_unit_test(test_ranges_and_sizes),
		cmocka_unit_test(test_hostile_layouts),
		cmocka_unit_test(test_readonly_flush_id_discard),
		cmocka_unit_test(test_disk_config),
		cmocka_unit_test(test_image_locks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
