/* SPDX-License-Identifier: MIT */
/*
 * devices/state.c's version rule, vmm/test_faults.c's parser and
 * migrate/record.c's framing: a node of this tern's major and an older or
 * equal minor loads, another major, a newer minor or one under the floor
 * is refused, and an older tern's one-cell version reads as minor 0.
 */
#include <errno.h>
#include <libfdt.h>
#include <stdlib.h>

#include "devices/state.h"
#include "migrate/record.h"
#include "tests/unit/unit.h"
#include "vmm/test_faults.h"

static void *tree_with(const char *name, const void *version, int vlen)
{
	void *fdt = malloc(4096);
	uint32_t regs = 42;

	assert_int_equal(fdt_create(fdt, 4096), 0);
	assert_int_equal(fdt_finish_reservemap(fdt), 0);
	assert_int_equal(fdt_begin_node(fdt, ""), 0);
	assert_int_equal(fdt_begin_node(fdt, name), 0);
	if (version)
		assert_int_equal(fdt_property(fdt, "version", version, vlen), 0);
	assert_int_equal(fdt_property(fdt, "regs", &regs, sizeof(regs)), 0);
	assert_int_equal(fdt_end_node(fdt), 0);
	assert_int_equal(fdt_end_node(fdt), 0);
	assert_int_equal(fdt_finish(fdt), 0);
	return fdt;
}

static int load(uint32_t major, uint32_t minor, bool one_cell, const struct state_version *ours, unsigned *got,
		struct err *e)
{
	fdt32_t cells[2] = { cpu_to_fdt32(major), cpu_to_fdt32(minor) };
	void *fdt = tree_with("dev", cells, one_cell ? 4 : 8);
	int r = state_find(fdt, "dev", ours, got, e);

	free(fdt);
	return r;
}

static void test_version_rule(void **state)
{
	const struct state_version ours = { .major = 1, .minor = 3, .floor = 1 };
	struct err e = { { 0 } };
	unsigned minor = 99;

	(void)state;
	assert_true(load(1, 3, false, &ours, &minor, &e) >= 0);
	assert_int_equal(minor, 3);
	assert_true(load(1, 1, false, &ours, &minor, &e) >= 0); /* the floor */
	e = (struct err){ { 0 } };
	assert_int_equal(load(1, 0, false, &ours, &minor, &e), -EPROTO); /* under it */
	assert_err_contains(&e, "version 1.0; this tern reads 1.1 to 1.3");
	assert_int_equal(load(1, 4, false, &ours, &minor, &e), -EPROTO); /* newer */
	assert_int_equal(load(2, 0, false, &ours, &minor, &e), -EPROTO); /* another major */
	const struct state_version zero_floor = { .major = 1, .minor = 3, .floor = 0 };
	assert_true(load(1, 7, true, &zero_floor, &minor, &e) >= 0); /* one cell: 1.0 */
	assert_int_equal(minor, 0);
	void *fdt = tree_with("dev", NULL, 0);
	e = (struct err){ { 0 } }; /* the first error set is kept: start afresh */
	assert_int_equal(state_find(fdt, "dev", &ours, NULL, &e), -EPROTO);
	assert_err_contains(&e, "has no version");
	e = (struct err){ { 0 } };
	assert_int_equal(state_find(fdt, "other", &ours, NULL, &e), -EPROTO);
	assert_err_contains(&e, "other is missing");
	uint64_t wrong;
	int node = fdt_subnode_offset(fdt, 0, "dev");
	assert_int_equal(state_get(fdt, node, "dev", "regs", &wrong, sizeof(wrong), &e), -EPROTO);
	assert_int_equal(state_get_optional(fdt, node, "dev", "absent", &wrong, sizeof(wrong), &e), 0);
	free(fdt);
}

static void test_framing(void **state)
{
	uint8_t buf[256];
	size_t pos = 0;
	struct rec_file_header h;
	struct err e = { { 0 } };

	(void)state;
	rec_hello_init(&h, "TERNTEST");
	assert_int_equal(rec_hello_check(&h, "TERNTEST", "test file", &e), 0);
	h.minor = STATE_MINOR + 1;
	h.crc = crc32c(&h, 12, 0);
	assert_int_equal(rec_hello_check(&h, "TERNTEST", "test file", &e), -EPROTO);
	assert_err_contains(&e, "is not supported");
	assert_int_equal(rec_put(buf, &pos, sizeof(buf), 7, "abc", 3), 0);
	assert_int_equal(pos % 8, 0);
	uint32_t crc = crc32c(buf, sizeof(struct rec_header) + 3, 0);
	assert_int_equal(rec_trailer_check(buf + sizeof(struct rec_header) + 3, 3, crc), 0);
	buf[pos - 1] = 1; /* padding */
	assert_int_equal(rec_trailer_check(buf + sizeof(struct rec_header) + 3, 3, crc), REC_BAD_PADDING);
	assert_int_equal(rec_trailer_check(buf + sizeof(struct rec_header) + 3, 3, crc ^ 1), REC_BAD_CRC);
	assert_int_equal(rec_put(buf, &pos, pos + 8, 7, "abc", 3), -ENOSPC);
}

static void test_faults_spec(void **state)
{
	struct test_faults f;
	struct err e = { { 0 } };

	(void)state;
	assert_int_equal(test_faults_parse("switch=to-svq:set_vring_addr#1;cvq-nack=3;migrate-stall=active;replay=serial",
					   &f, &e), 0);
	assert_int_equal(f.switch_dir, FAULT_SWITCH_TO_SVQ);
	assert_string_equal(f.switch_op, "set_vring_addr");
	assert_int_equal(f.switch_at, 1);
	assert_int_equal(f.cvq_nack, 3);
	assert_string_equal(f.migrate_stall, "active");
	assert_true(f.replay_serial);
	assert_int_equal(test_faults_parse("switch=to-passthrough:each", &f, &e), 0);
	assert_true(f.switch_each);
	assert_int_equal(test_faults_parse("switch=to-passthrough:12", &f, &e), 0);
	assert_int_equal(f.switch_at, 12);
	assert_string_equal(f.switch_op, "");
	assert_int_equal(test_faults_parse("switch=sideways:1", &f, &e), -EINVAL);
	assert_int_equal(test_faults_parse("cvq-nack=0", &f, &e), -EINVAL);
	assert_int_equal(test_faults_parse("nonsense", &f, &e), -EINVAL);
	e = (struct err){ { 0 } };
	assert_int_equal(test_faults_parse("colour=red", &f, &e), -EINVAL);
	assert_err_contains(&e, "unknown fault 'colour'");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_version_rule),
		cmocka_unit_test(test_framing),
		cmocka_unit_test(test_faults_spec),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
