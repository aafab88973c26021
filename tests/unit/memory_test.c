/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "tests/unit/unit.h"
#include "vmm/bus.h"
#include "vmm/memory.h"

static void test_layout_small(void **state)
{
	struct guest_mem m;
	struct err e = { { 0 } };

	(void)state;
	assert_int_equal(mem_init(&m, 64 * MiB, &e), 0);
	assert_int_equal(m.nr_regions, 1);
	assert_int_equal(mem_low_end(&m), 64 * MiB);
	assert_int_equal(mem_top(&m), 64 * MiB);
	assert_non_null(mem_ptr(&m, 0, 64 * MiB));
	assert_null(mem_ptr(&m, 0, 64 * MiB + 1));
	assert_null(mem_ptr(&m, 64 * MiB, 1));
	assert_non_null(mem_ptr(&m, 64 * MiB, 0));
	assert_null(mem_ptr(&m, UINT64_MAX, 2)); /* wraps */
	assert_null(mem_ptr(&m, 1, UINT64_MAX));
	/* shared mapping: writes through the pointer land in the memfd */
	*(uint32_t *)mem_ptr(&m, 4096, 4) = 0xdeadbeef;
	assert_int_equal(*(uint32_t *)(m.hva + 4096), 0xdeadbeef);
	mem_destroy(&m);
}

static void test_layout_split(void **state)
{
	struct guest_mem m;
	struct err e = { { 0 } };

	(void)state;
	assert_int_equal(mem_init(&m, 5 * GiB, &e), 0);
	assert_int_equal(m.nr_regions, 2);
	assert_int_equal(mem_low_end(&m), 3 * GiB);
	assert_int_equal(mem_top(&m), 6 * GiB);
	assert_non_null(mem_ptr(&m, 3 * GiB - 4096, 4096));
	assert_null(mem_ptr(&m, 3 * GiB - 4096, 4097)); /* runs into the hole */
	assert_null(mem_ptr(&m, 3 * GiB, 1));            /* in the hole */
	assert_null(mem_ptr(&m, 4 * GiB - 1, 2));        /* straddles hole and high RAM */
	assert_ptr_equal(mem_ptr(&m, 4 * GiB, 1), m.hva + 3 * GiB);
	assert_non_null(mem_ptr(&m, 6 * GiB - 1, 1));
	assert_null(mem_ptr(&m, 6 * GiB - 1, 2));
	mem_destroy(&m);
}

static void test_bad_sizes(void **state)
{
	struct guest_mem m;
	struct err e = { { 0 } };

	(void)state;
	assert_int_equal(mem_init(&m, 1 * MiB, &e), -EINVAL);
	assert_err_contains(&e, "too small");
	struct err e2 = { { 0 } };
	assert_int_equal(mem_init(&m, 64 * MiB + 1, &e2), -EINVAL);
	assert_err_contains(&e2, "multiple");
}

struct fake_dev {
	struct bus_dev dev;
	uint64_t last_off;
	unsigned writes;
};

static void fake_write(struct bus_dev *d, uint64_t off, const void *data, unsigned len)
{
	struct fake_dev *f = container_of(d, struct fake_dev, dev);
	(void)data, (void)len;
	f->last_off = off;
	f->writes++;
}

static void fake_read(struct bus_dev *d, uint64_t off, void *data, unsigned len)
{
	(void)d;
	memset(data, (int)off, len);
}

static const struct bus_dev_ops fake_ops = { .read = fake_read, .write = fake_write };

static void test_bus(void **state)
{
	struct bus b;
	struct fake_dev a = { .dev = { .ops = &fake_ops } }, c = { .dev = { .ops = &fake_ops } };
	uint8_t buf[4];

	(void)state;
	bus_init(&b, "test");
	assert_int_equal(bus_register(&b, 0x100, 8, &a.dev), 0);
	assert_int_equal(bus_register(&b, 0x104, 8, &c.dev), -EEXIST);
	assert_int_equal(bus_register(&b, 0xfc, 8, &c.dev), -EEXIST);
	assert_int_equal(bus_register(&b, 0x108, 8, &c.dev), 0);
	assert_int_equal(bus_register(&b, 0, 0, &c.dev), -EINVAL);
	assert_int_equal(bus_register(&b, UINT64_MAX, 2, &c.dev), -EINVAL);
	assert_true(bus_write(&b, 0x103, buf, 1));
	assert_int_equal(a.last_off, 3);
	assert_true(bus_write(&b, 0x10a, buf, 2));
	assert_int_equal(c.last_off, 2);
	/* an access crossing a device's end is not the device's */
	assert_false(bus_write(&b, 0x10f, buf, 2));
	assert_false(bus_read(&b, 0x200, buf, 4));
	assert_int_equal(buf[0], 0xff);
	assert_true(bus_read(&b, 0x105, buf, 2));
	assert_int_equal(buf[1], 5);
}

/* A sparse snapshot memory file, mapped and copied: both read the same
 * bytes; the mapping is private (guest writes never reach the file), the
 * copy is shared memfd RAM; a file of the wrong size is refused. */
static void test_init_file_map_and_copy(void **state)
{
	char path[] = "/tmp/tern-memfile-XXXXXX";
	uint64_t size = 32 * MiB;
	struct guest_mem map, copy;
	struct err e = { { 0 } };
	uint8_t page[4096];
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	for (unsigned i = 0; i < 3; i++) { /* three data extents in holes */
		memset(page, 0xa0 + i, sizeof(page));
		assert_int_equal(pwrite_all(fd, page, sizeof(page), (off_t)(i * 5 * MiB + 4096)), 0);
	}
	assert_int_equal(mem_init_file(&map, path, size, false, &e), 0);
	assert_int_equal(mem_init_file(&copy, path, size, true, &e), 0);
	assert_true(map.is_file);
	assert_false(copy.is_file);
	assert_true(copy.fd >= 0);
	assert_memory_equal(map.hva, copy.hva, size);
	assert_int_equal(copy.hva[5 * MiB + 4096], 0xa1);
	assert_int_equal(copy.hva[5 * MiB + 8192], 0);
	map.hva[4096] = 1; /* private: the file keeps 0xa0 */
	assert_int_equal(pread_all(fd, page, 1, 4096), 0);
	assert_int_equal(page[0], 0xa0);
	mem_destroy(&map);
	mem_destroy(&copy);

	assert_int_equal(ftruncate(fd, (off_t)size - 4096), 0);
	assert_true(mem_init_file(&map, path, size, true, &e) < 0);
	assert_non_null(strstr(e.msg, "the snapshot needs"));
	close(fd);
	unlink(path);
	struct err e2 = { { 0 } };
	assert_int_equal(mem_init_file(&map, path, size, false, &e2), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout_small),
		cmocka_unit_test(test_layout_split),
		cmocka_unit_test(test_bad_sizes),
		cmocka_unit_test(test_bus),
		cmocka_unit_test(test_init_file_map_and_copy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
