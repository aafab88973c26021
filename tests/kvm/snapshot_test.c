/* SPDX-License-Identifier: MIT */
/*
 * Snapshot and restore of a running page-stamp guest, three generations:
 * run -> pause -> snapshot -> destroy -> restore into a new VM -> the guest
 * goes on and checks every page over whole passes -> snapshot again ...
 * The guest itself proves no page was lost, misplaced or stale.
 *
 * usage: snapshot_test GUEST.elf
 */
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include "devices/serial.h"
#include "migrate/snapshot.h"
#include "tests/kvm/stamp_reports.h"
#include "tests/unit/unit.h"
#include "vmm/vm.h"

static const char *guest_elf;

static void wait_passes(const char *path, int want)
{
	for (int i = 0; i < 3000; i++) {
		int n = stamp_passes(path);
		if (n < 0)
			fail_msg("the guest found a bad page (%s)", path);
		if (n >= want)
			return;
		usleep(10000);
	}
	fail_msg("the guest did not reach %d passes", want);
}

static void test_three_generations(void **state)
{
	char dir[] = "/tmp/tern-snap-XXXXXX", rep[4096];
	struct err e = { { 0 } };
	struct vm v;
	struct vm_config c = { .nr_cpus = 2, .mem_size = 128 * MiB, .kernel = guest_elf, .console_out_fd = -1,
			       .cmdline = "test=stamp mb=32", .test_device = true };

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(rep, sizeof(rep), "%s/reports-0", dir);
	c.testdev_out = fopen(rep, "w");
	assert_int_equal(vm_create(&v, &c, &e), 0);
	assert_int_equal(vm_start(&v, &e), 0);
	wait_passes(rep, 2);

	for (int gen = 1; gen <= 3; gen++) {
		struct snapshot s;
		char snap[4096];

		snprintf(snap, sizeof(snap), "%s/snap", dir);
		vm_pause(&v);
		if (snapshot_create(&v, snap, &e) < 0)
			fail_msg("snapshot %d: %s", gen, e.msg);
		vm_stop(&v);
		vm_destroy(&v);
		fclose(c.testdev_out);

		if (snapshot_read(snap, &s, &e) < 0)
			fail_msg("read %d: %s", gen, e.msg);
		snprintf(rep, sizeof(rep), "%s/reports-%d", dir, gen);
		struct vm_config rc = { .nr_cpus = s.nr_cpus, .mem_size = s.mem_size, .mem_file = s.mem_path,
					.test_device = s.test_device, .console_out_fd = -1 };
		rc.testdev_out = c.testdev_out = fopen(rep, "w");
		if (vm_create(&v, &rc, &e) < 0 || snapshot_load(&v, &s, &e) < 0)
			fail_msg("restore %d: %s", gen, e.msg);
		snapshot_free(&s);
		assert_int_equal(vm_start(&v, &e), 0);
		/* whole passes over restored memory, every page checked */
		wait_passes(rep, 3);
	}
	serial_receive(v.serial, (const uint8_t *)"q", 1);
	struct pollfd p = { .fd = v.exit_fd, .events = POLLIN };
	assert_int_equal(poll(&p, 1, 30000), 1);
	assert_int_equal(v.exit_status, 0);
	vm_stop(&v);
	vm_destroy(&v);
	fclose(c.testdev_out);
	char cmd[4200];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* Every truncation (each 4 KiB boundary, each of the last 64 bytes, each
 * header and record-header field boundary) and every single-bit flip of a
 * real state file is refused by the parser (reliability targets E1, E2). */
static void test_truncation_and_bit_flips(void **state)
{
	char dir[] = "/tmp/tern-snapflip-XXXXXX", path[4200], rep[4200];
	struct err e = { { 0 } };
	struct snapshot s;
	struct vm v;
	struct vm_config c = { .nr_cpus = 2, .mem_size = 64 * MiB, .kernel = guest_elf, .console_out_fd = -1,
			       .cmdline = "test=stamp mb=8", .test_device = true };
	uint8_t *buf;
	size_t len;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(rep, sizeof(rep), "%s/r", dir);
	c.testdev_out = fopen(rep, "w");
	assert_int_equal(vm_create(&v, &c, &e), 0);
	assert_int_equal(vm_start(&v, &e), 0);
	wait_passes(rep, 1);
	vm_pause(&v);
	snprintf(path, sizeof(path), "%s/snap", dir);
	assert_int_equal(snapshot_create(&v, path, &e), 0);
	vm_stop(&v);
	vm_destroy(&v);
	fclose(c.testdev_out);
	snprintf(path, sizeof(path), "%s/snap/state", dir);
	assert_int_equal(read_file(path, "state", SNAP_MAX_FILE, &buf, &len, &e), 0);
	assert_int_equal(snapshot_parse(buf, len, &s, &e), 0);
	snapshot_free(&s);

	unsigned refused = 0, cuts = 0;
	for (size_t cut = 0; cut < len; cut++) {
		bool boundary = cut % 4096 == 0 || cut + 64 >= len || cut <= 16 + 16 + 16;
		if (!boundary)
			continue;
		uint8_t *copy = malloc(cut ? cut : 1); /* exact size: ASan sees over-reads */
		memcpy(copy, buf, cut);
		struct err ce = { { 0 } };
		refused += snapshot_parse(copy, cut, &s, &ce) < 0 && ce.msg[0];
		snapshot_free(&s);
		free(copy);
		cuts++;
	}
	assert_int_equal(refused, cuts);

	unsigned flips = 0;
	refused = 0;
	for (size_t byte = 0; byte < len; byte++) {
		for (int bit = 0; bit < 8; bit++) {
			struct err fe = { { 0 } };
			buf[byte] ^= (uint8_t)(1u << bit);
			refused += snapshot_parse(buf, len, &s, &fe) < 0;
			snapshot_free(&s);
			buf[byte] ^= (uint8_t)(1u << bit);
			flips++;
		}
	}
	print_message("state file of %zu bytes: %u truncations and %u bit flips, all refused\n", len, cuts, flips);
	assert_int_equal(refused, flips);
	free(buf);
	char cmd[4200];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_three_generations),
		cmocka_unit_test(test_truncation_and_bit_flips),
	};

	if (argc != 2) {
		fprintf(stderr, "usage: %s GUEST.elf\n", argv[0]);
		return 2;
	}
	guest_elf = argv[1];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
