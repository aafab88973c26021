/* SPDX-License-Identifier: MIT */
/*
 * Dirty tracking on a running page-stamp guest (reliability target C2): every
 * page the guest rewrites shows up at the next sync, untouched pages do not,
 * tern's own marks are merged, and a paused guest dirties nothing.
 *
 * usage: dirty_test GUEST.elf
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm/dirty.h"
#include "tests/kvm/stamp_reports.h"
#include "tests/unit/unit.h"
#include "migrate/machine.h"
#include "vmm/vm.h"

static const char *guest_elf;

static void wait_more(const char *path, int more)
{
	int want = stamp_passes(path) + more;
	for (int i = 0; i < 3000 && stamp_passes(path) < want; i++)
		usleep(5000);
	assert_true(stamp_passes(path) >= want);
}

static uint64_t count_range(const uint64_t *bm, uint64_t from, uint64_t to)
{
	uint64_t n = 0;
	for (uint64_t p = from; p < to; p++)
		n += (bm[p / 64] >> (p % 64)) & 1;
	return n;
}

/* ring: 0 for KVM's dirty bitmap, else the entries of each vCPU's dirty
 * ring (small rings fill within a pass: KVM_EXIT_DIRTY_RING_FULL). */
static void check_dirty_tracking(unsigned ring)
{
	char rep[] = "/tmp/tern-dirty-XXXXXX";
	struct vm_config c = { .nr_cpus = 2, .mem_size = 64 * MiB, .kernel = guest_elf, .console_out_fd = -1,
			       .cmdline = "test=stamp mb=16", .test_device = true, .dirty_ring = ring };
	struct err e = { { 0 } };
	struct dirty_log d;
	struct vm v;
	int fd = mkstemp(rep);
	uint64_t npages = (64 * MiB) >> 12, words = (npages + 63) / 64;
	uint64_t *bm = calloc(words, 8);

	close(fd);
	c.testdev_out = fopen(rep, "w");
	if (machine_create(&v, &c, &e) < 0)
		fail_msg("vm_create: %s", e.msg);
	assert_int_equal(v.ring_entries, ring);
	assert_int_equal(vm_start(&v, &e), 0);
	wait_more(rep, 1);
	if (dirty_start(&d, &v, &e) < 0)
		fail_msg("dirty_start: %s", e.msg);
	assert_int_equal(d.ring, ring != 0);
	/* first sync: everything is unsent */
	assert_int_equal(dirty_sync(&d, bm, &e), (int64_t)npages);
	for (int round = 0; round < 8; round++) {
		memset(bm, 0, words * 8);
		wait_more(rep, 1);
		assert_true(dirty_sync(&d, bm, &e) > 0);
		wait_more(rep, 2); /* at least one whole pass after the sync */
		memset(bm, 0, words * 8);
		assert_true(dirty_sync(&d, bm, &e) >= 4096);
		/* the stamp region (16..32 MiB): every page, by a whole pass */
		assert_int_equal(count_range(bm, (16 * MiB) >> 12, (32 * MiB) >> 12), 4096);
		/* untouched RAM (40..64 MiB): nothing */
		assert_int_equal(count_range(bm, (40 * MiB) >> 12, (64 * MiB) >> 12), 0);
	}
	/* tern's own marks (device writes) are merged, page-exact */
	memset(bm, 0, words * 8);
	dirty_mark(&d, 50 * MiB + 100, 4000); /* spans two pages */
	dirty_mark(&d, 80 * MiB, 4096);       /* outside RAM: ignored */
	dirty_sync(&d, bm, &e);
	assert_int_equal(count_range(bm, (40 * MiB) >> 12, (64 * MiB) >> 12), 2);
	/* a paused guest dirties nothing */
	vm_pause(&v);
	dirty_sync(&d, bm, &e);
	memset(bm, 0, words * 8);
	usleep(50000);
	assert_int_equal(dirty_sync(&d, bm, &e), 0);
	vm_resume(&v);
	memset(bm, 0, words * 8);
	wait_more(rep, 2);
	assert_int_equal(dirty_sync(&d, bm, &e) >= 4096, 1);
	dirty_stop(&d);
	vm_stop(&v);
	machine_destroy(&v);
	fclose(c.testdev_out);
	unlink(rep);
	free(bm);
}

static void test_dirty_log(void **state)
{
	(void)state;
	check_dirty_tracking(0);
}

static void test_dirty_ring(void **state)
{
	(void)state;
	check_dirty_tracking(256); /* 1 MiB of pages: full many times a pass */
}

/* A slot that refuses to start logging: the slots before it must not be
 * left logging (KVM_GET_DIRTY_LOG answers ENOENT for a slot that does
 * not log). */
static void test_partial_start_undone(void **state)
{
	struct vm_config c = { .nr_cpus = 1, .mem_size = 3 * GiB + 64 * MiB, .kernel = guest_elf,
			       .console_out_fd = -1 };
	struct err e = { { 0 } };
	struct dirty_log d;
	struct vm v;

	(void)state;
	if (machine_create(&v, &c, &e) < 0)
		fail_msg("vm_create: %s", e.msg);
	assert_int_equal(v.mem.nr_regions, 2);
	/* slot 1 with another address: KVM refuses the flags-only update */
	v.mem.regions[1].offset += 4096;
	assert_true(dirty_start(&d, &v, &e) < 0);
	v.mem.regions[1].offset -= 4096;
	uint64_t *bm = calloc((v.mem.regions[0].size >> 12) / 64 + 1, 8);
	struct kvm_dirty_log log = { .slot = 0, .dirty_bitmap = bm };
	assert_int_equal(ioctl(v.vm_fd, KVM_GET_DIRTY_LOG, &log), -1);
	assert_int_equal(errno, ENOENT);
	/* and a later start works */
	if (dirty_start(&d, &v, &e) < 0)
		fail_msg("dirty_start: %s", e.msg);
	assert_int_equal(ioctl(v.vm_fd, KVM_GET_DIRTY_LOG, &log), 0);
	dirty_stop(&d);
	free(bm);
	machine_destroy(&v);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dirty_log),
		cmocka_unit_test(test_dirty_ring),
		cmocka_unit_test(test_partial_start_undone),
	};

	if (argc != 2) {
		fprintf(stderr, "usage: %s GUEST.elf\n", argv[0]);
		return 2;
	}
	guest_elf = argv[1];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
