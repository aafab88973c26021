/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "tests/unit/unit.h"
#include "vmm/util.h"

static void test_parse_size(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(parse_size("4096", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(parse_size("64K", &v), 0);
	assert_int_equal(v, 64 * KiB);
	assert_int_equal(parse_size("512M", &v), 0);
	assert_int_equal(v, 512 * MiB);
	assert_int_equal(parse_size("2g", &v), 0);
	assert_int_equal(v, 2 * GiB);
	assert_int_equal(parse_size("1GiB", &v), 0);
	assert_int_equal(v, GiB);
	assert_int_equal(parse_size("3MB", &v), 0);
	assert_int_equal(v, 3 * MiB);
	assert_int_equal(parse_size("1T", &v), 0);
	assert_int_equal(v, 1ull << 40);
	assert_int_equal(parse_size("", &v), -EINVAL);
	assert_int_equal(parse_size("M", &v), -EINVAL);
	assert_int_equal(parse_size("-1M", &v), -EINVAL);
	assert_int_equal(parse_size(" 1M", &v), -EINVAL);
	assert_int_equal(parse_size("1Q", &v), -EINVAL);
	assert_int_equal(parse_size("1MM", &v), -EINVAL);
	assert_int_equal(parse_size("1.5G", &v), -EINVAL);
	assert_int_equal(parse_size("16777216T", &v), -ERANGE);
	assert_int_equal(parse_size("99999999999999999999", &v), -ERANGE);
	assert_int_equal(parse_size(NULL, &v), -EINVAL);
}

static void test_parse_u64(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(parse_u64("4", 1, 64, &v), 0);
	assert_int_equal(v, 4);
	assert_int_equal(parse_u64("0x10", 1, 64, &v), 0);
	assert_int_equal(v, 16);
	assert_int_equal(parse_u64("0", 1, 64, &v), -ERANGE);
	assert_int_equal(parse_u64("65", 1, 64, &v), -ERANGE);
	assert_int_equal(parse_u64("-1", 0, UINT64_MAX, &v), -EINVAL);
	assert_int_equal(parse_u64("4x", 1, 64, &v), -EINVAL);
	assert_int_equal(parse_u64("", 1, 64, &v), -EINVAL);
	assert_int_equal(parse_u64("18446744073709551616", 0, UINT64_MAX, &v), -ERANGE);
}

static void test_err_first_message_wins(void **state)
{
	struct err e = { { 0 } };

	(void)state;
	assert_int_equal(err_set(&e, -EINVAL, "first %d", 1), -EINVAL);
	assert_int_equal(err_set(&e, -ENOMEM, "second"), -ENOMEM);
	assert_string_equal(e.msg, "first 1");
	assert_int_equal(err_set(NULL, -EIO, "no target"), -EIO);
	struct err e2 = { { 0 } };
	err_errno(&e2, -ENOENT, "open '%s'", "x");
	assert_string_equal(e2.msg, "open 'x': No such file or directory");
}

static void test_read_file(void **state)
{
	char path[] = "/tmp/tern-util-test-XXXXXX";
	struct err e = { { 0 } };
	uint8_t *buf;
	size_t len;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "hello", 5), 5);
	close(fd);
	assert_int_equal(read_file(path, "kernel", 100, &buf, &len, &e), 0);
	assert_int_equal(len, 5);
	assert_memory_equal(buf, "hello", 5);
	free(buf);
	assert_int_equal(read_file(path, "kernel", 4, &buf, &len, &e), -EFBIG);
	assert_err_contains(&e, "kernel");
	assert_err_contains(&e, "too large");
	unlink(path);
	struct err e2 = { { 0 } };
	assert_int_equal(read_file(path, "initrd", 100, &buf, &len, &e2), -ENOENT);
	assert_err_contains(&e2, "cannot open initrd");
	struct err e3 = { { 0 } };
	assert_int_equal(read_file("/tmp", "kernel", 100, &buf, &len, &e3), -EINVAL);
	assert_err_contains(&e3, "not a regular file");
}

static void test_add_overflows(void **state)
{
	uint64_t s;

	(void)state;
	assert_false(add_overflows(1, 2, &s));
	assert_int_equal(s, 3);
	assert_true(add_overflows(UINT64_MAX, 1, &s));
	assert_false(add_overflows(UINT64_MAX, 0, &s));
}

static void test_pread_pwrite_all(void **state)
{
	char path[] = "/tmp/tern-rw-XXXXXX", buf[64];
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(pwrite_all(fd, "hello, world", 12, 100), 0);
	assert_int_equal(pread_all(fd, buf, 12, 100), 0);
	assert_memory_equal(buf, "hello, world", 12);
	/* before the write: a hole, zeroes */
	assert_int_equal(pread_all(fd, buf, 4, 0), 0);
	assert_memory_equal(buf, "\0\0\0\0", 4);
	/* past the end of the file */
	assert_int_equal(pread_all(fd, buf, 13, 100), -ENODATA);
	assert_int_equal(pwrite_all(-1, "x", 1, 0), -EBADF);
	assert_int_equal(pread_all(-1, buf, 1, 0), -EBADF);
	close(fd);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_parse_u64),
		cmocka_unit_test(test_err_first_message_wins),
		cmocka_unit_test(test_read_file),
		cmocka_unit_test(test_add_overflows),
		cmocka_unit_test(test_pread_pwrite_all),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
