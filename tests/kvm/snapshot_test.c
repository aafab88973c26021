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
#include <sys/ioctl.h>
#include <linux/kvm.h>
#include <isa-l/crc.h>
#include <libfdt.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include "devices/serial.h"
#include "migrate/snapshot.h"
#include "tests/kvm/stamp_reports.h"
#include "tests/unit/unit.h"
#include "vmm/vcpu.h"
#include "migrate/machine.h"
#include "vmm/vm.h"

static const char *guest_elf;

/* Creates and starts c's VM in v with its reports in dir/r, and waits for
 * passes stamp passes. */
static void start_stamp(struct vm *v, struct vm_config *c, const char *dir, char *rep, size_t rep_size, int passes)
{
	struct err e = { { 0 } };

	snprintf(rep, rep_size, "%s/r", dir);
	c->testdev_out = fopen(rep, "w");
	if (machine_create(v, c, &e) < 0 || vm_start(v, &e) < 0)
		fail_msg("start: %s", e.msg);
	stamp_wait(rep, passes);
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
	assert_int_equal(machine_create(&v, &c, &e), 0);
	assert_int_equal(vm_start(&v, &e), 0);
	stamp_wait(rep, 2);

	for (int gen = 1; gen <= 3; gen++) {
		struct snapshot s;
		char snap[4096];

		snprintf(snap, sizeof(snap), "%s/snap", dir);
		vm_pause(&v);
		if (snapshot_create(&v, snap, &(struct snapshot_opts){ 0 }, &e) < 0)
			fail_msg("snapshot %d: %s", gen, e.msg);
		vm_stop(&v);
		machine_destroy(&v);
		fclose(c.testdev_out);

		if (snapshot_read(snap, &s, &e) < 0)
			fail_msg("read %d: %s", gen, e.msg);
		snprintf(rep, sizeof(rep), "%s/reports-%d", dir, gen);
		struct vm_config rc = { .nr_cpus = s.nr_cpus, .mem_size = s.mem_size, .mem_file = s.mem_path,
					.test_device = s.test_device, .console_out_fd = -1 };
		rc.testdev_out = c.testdev_out = fopen(rep, "w");
		if (machine_create(&v, &rc, &e) < 0 || snapshot_load(&v, &s, &e) < 0)
			fail_msg("restore %d: %s", gen, e.msg);
		snapshot_free(&s);
		assert_int_equal(vm_start(&v, &e), 0);
		/* whole passes over restored memory, every page checked */
		stamp_wait(rep, 3);
	}
	serial_receive(v.serial, (const uint8_t *)"q", 1);
	struct pollfd p = { .fd = v.exit_fd, .events = POLLIN };
	assert_int_equal(poll(&p, 1, 30000), 1);
	assert_int_equal(v.exit_status, 0);
	vm_stop(&v);
	machine_destroy(&v);
	fclose(c.testdev_out);
	char cmd[4200];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* The TSC rate travels with each vCPU ("tsc-khz"): saved as KVM reports
 * it, and given back on restore; a rate KVM cannot give this host's vCPU
 * is refused with a message naming both rates, never ignored. */
static void test_tsc_rate(void **state)
{
	char dir[] = "/tmp/tern-tsc-XXXXXX", snap[4096], rep[4096];
	struct err e = { { 0 } };
	struct snapshot s;
	struct vm v;
	struct vm_config c = { .nr_cpus = 1, .mem_size = 32 * MiB, .kernel = guest_elf, .console_out_fd = -1,
			       .cmdline = "test=stamp mb=4", .test_device = true };

	(void)state;
	assert_non_null(mkdtemp(dir));
	start_stamp(&v, &c, dir, rep, sizeof(rep), 1);
	int host = ioctl(v.vcpus[0].fd, KVM_GET_TSC_KHZ, 0);
	assert_true(host > 0);
	snprintf(snap, sizeof(snap), "%s/snap", dir);
	vm_pause(&v);
	if (snapshot_create(&v, snap, &(struct snapshot_opts){ 0 }, &e) < 0)
		fail_msg("snapshot: %s", e.msg);
	vm_stop(&v);
	machine_destroy(&v);
	fclose(c.testdev_out);
	if (snapshot_read(snap, &s, &e) < 0)
		fail_msg("read: %s", e.msg);
	int node = fdt_subnode_offset(s.state, 0, "vcpu@0"), len;
	const fdt32_t *khz = fdt_getprop(s.state, node, "tsc-khz", &len);
	assert_non_null(khz);
	assert_int_equal(len, 4);
	uint32_t saved;
	memcpy(&saved, khz, 4);
	assert_int_equal(saved, (uint32_t)host);
	/* the same rate, then one a fifth faster */
	for (int faster = 0; faster < 2; faster++) {
		uint32_t want = faster ? saved + saved / 5 : saved;
		assert_int_equal(fdt_setprop_inplace(s.state, node, "tsc-khz", &want, 4), 0);
		struct vm_config rc = { .nr_cpus = s.nr_cpus, .mem_size = s.mem_size, .mem_file = s.mem_path,
					.test_device = s.test_device, .console_out_fd = -1, .testdev_out = c.testdev_out };
		snprintf(rep, sizeof(rep), "%s/r%d", dir, faster);
		rc.testdev_out = fopen(rep, "w");
		assert_int_equal(machine_create(&v, &rc, &e), 0);
		memset(&e, 0, sizeof(e));
		int r = snapshot_load(&v, &s, &e);
		if (r == 0) {
			assert_int_equal(ioctl(v.vcpus[0].fd, KVM_GET_TSC_KHZ, 0), (int)want);
		} else {
			assert_true(faster); /* the host's own rate always loads */
			assert_non_null(strstr(e.msg, "cannot scale"));
		}
		print_message("TSC %u kHz on a %d kHz host: %s\n", want, host, r == 0 ? "set" : e.msg);
		machine_destroy(&v);
		fclose(rc.testdev_out);
	}
	snapshot_free(&s);
	char cmd[4200];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* Every truncation (each 4 KiB boundary, each of the last 64 bytes, each
 * header and record-header field boundary) and every single-bit flip of a
 * state file is refused, with a message. */
static void check_every_damage(uint8_t *buf, size_t len)
{
	struct snapshot s;
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
	start_stamp(&v, &c, dir, rep, sizeof(rep), 1);
	vm_pause(&v);
	snprintf(path, sizeof(path), "%s/snap", dir);
	assert_int_equal(snapshot_create(&v, path, &(struct snapshot_opts){ 0 }, &e), 0);
	vm_stop(&v);
	machine_destroy(&v);
	fclose(c.testdev_out);
	snprintf(path, sizeof(path), "%s/snap/state", dir);
	assert_int_equal(read_file(path, "state", SNAP_MAX_FILE, &buf, &len, &e), 0);
	assert_int_equal(snapshot_parse(buf, len, &s, &e), 0);
	snapshot_free(&s);

	check_every_damage(buf, len);
	free(buf);
	char cmd[4200];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* ---- diff snapshots: the PAGES record and the parent ------------------- */

struct rec {
	uint32_t type;
	const uint8_t *payload;
	uint64_t len;
};

static uint32_t crc32c(const void *p, size_t len)
{
	return ~crc32_iscsi((unsigned char *)(uintptr_t)p, (int)len, ~0u);
}

/* Splits a valid state file into its records (header checked by the
 * parser already). */
static unsigned split(const uint8_t *buf, size_t len, struct rec *r, unsigned max)
{
	size_t pos = 16;
	unsigned n = 0;

	while (pos + 16 <= len && n < max) {
		uint32_t type;
		uint64_t l;
		memcpy(&type, buf + pos, 4);
		memcpy(&l, buf + pos + 8, 8);
		r[n++] = (struct rec){ type, buf + pos + 16, l };
		size_t step = 16 + l + 4;
		pos += step + (8 - step % 8) % 8;
	}
	return n;
}

/* Writes header + records with valid CRCs: what the parser then refuses
 * is the content, not damage. */
static size_t join(const uint8_t *hdr, const struct rec *r, unsigned n, uint8_t *out)
{
	size_t pos = 16;

	memcpy(out, hdr, 16);
	for (unsigned i = 0; i < n; i++) {
		uint32_t zero = 0;
		memcpy(out + pos, &r[i].type, 4);
		memcpy(out + pos + 4, &zero, 4);
		memcpy(out + pos + 8, &r[i].len, 8);
		if (r[i].len)
			memcpy(out + pos + 16, r[i].payload, r[i].len);
		uint32_t crc = crc32c(out + pos, 16 + r[i].len);
		memcpy(out + pos + 16 + r[i].len, &crc, 4);
		size_t step = 16 + r[i].len + 4, pad = (8 - step % 8) % 8;
		memset(out + pos + step, 0, pad);
		pos += step + pad;
	}
	return pos;
}

static void expect_refused(const uint8_t *hdr, const struct rec *r, unsigned n, const char *needle)
{
	static uint8_t out[8 << 20];
	struct snapshot s;
	struct err e = { { 0 } };
	size_t len = join(hdr, r, n, out);
	uint8_t *copy = malloc(len);

	memcpy(copy, out, len);
	if (snapshot_parse(copy, len, &s, &e) == 0)
		fail_msg("accepted, expected '%s'", needle);
	if (!strstr(e.msg, needle))
		fail_msg("refused with '%s', expected '%s'", e.msg, needle);
	snapshot_free(&s);
	free(copy);
}

/* A config tree like cfg with one string property changed (or removed
 * when value is NULL). */
static void *config_with(const void *cfg, const char *prop, const char *value)
{
	size_t cap = fdt_totalsize(cfg) + 8192;
	void *t = malloc(cap);

	assert_int_equal(fdt_open_into(cfg, t, (int)cap), 0);
	if (value)
		assert_int_equal(fdt_setprop_string(t, 0, prop, value), 0);
	else
		assert_int_equal(fdt_delprop(t, 0, prop), 0);
	assert_int_equal(fdt_pack(t), 0);
	return t;
}

static void test_diff_state_file(void **state)
{
	char dir[] = "/tmp/tern-snapdiff-XXXXXX", path[4200], rep[4200];
	struct err e = { { 0 } };
	struct snapshot s;
	struct vm v;
	/* one page past 64 MiB: the bitmap's last word has unused bits */
	struct vm_config c = { .nr_cpus = 1, .mem_size = 64 * MiB + 4096, .kernel = guest_elf, .console_out_fd = -1,
			       .cmdline = "test=stamp mb=8 hot=1", .test_device = true, .track_dirty = true };
	struct snapshot_opts o = { .diff = true };
	uint8_t *buf;
	size_t len;

	(void)state;
	assert_non_null(mkdtemp(dir));
	start_stamp(&v, &c, dir, rep, sizeof(rep), 2);
	vm_pause(&v);
	snprintf(path, sizeof(path), "%s/full", dir);
	assert_int_equal(snapshot_create(&v, path, &(struct snapshot_opts){ 0 }, &e), 0);
	vm_resume(&v);
	stamp_wait(rep, stamp_passes(rep) + 2);
	vm_pause(&v);
	snprintf(path, sizeof(path), "%s/diff", dir);
	if (snapshot_create(&v, path, &o, &e) < 0)
		fail_msg("diff: %s", e.msg);
	/* 1 MiB hot, plus the guest's stack and report pages */
	assert_true(o.pages >= 256 && o.pages < 256 + 64);
	vm_stop(&v);
	machine_destroy(&v);
	fclose(c.testdev_out);

	assert_int_equal(snapshot_read(path, &s, &e), 0);
	assert_int_equal(s.nr_layers, 1);
	assert_non_null(strstr(s.mem_path, "/full/memory."));
	snapshot_free(&s);

	snprintf(path, sizeof(path), "%s/diff/state", dir);
	assert_int_equal(read_file(path, "state", SNAP_MAX_FILE, &buf, &len, &e), 0);
	struct rec r[8], m[8];
	unsigned n = split(buf, len, r, 8);
	assert_int_equal(n, 4); /* CONFIG, STATE, PAGES, END */
	assert_int_equal(r[2].type, 3);
	assert_int_equal(r[2].len, ((64 * MiB + 4096) / 4096 + 63) / 64 * 8);

	/* the untouched records round-trip through the test's own writer */
	static uint8_t same[8 << 20];
	size_t same_len = join(buf, r, n, same);
	assert_int_equal(same_len, len);
	assert_memory_equal(same, buf, len);

	/* PAGES: missing, short, long, two of them, in a full snapshot */
	memcpy(m, r, sizeof(r));
	m[2] = m[3];
	expect_refused(buf, m, 3, "lacks a page bitmap");
	memcpy(m, r, sizeof(r));
	m[2].len -= 8;
	expect_refused(buf, m, 4, "lacks a page bitmap");
	uint8_t *big = calloc(1, r[2].len + 8);
	memcpy(big, r[2].payload, r[2].len);
	m[2].payload = big;
	m[2].len = r[2].len + 8;
	expect_refused(buf, m, 4, "lacks a page bitmap");
	m[2].len = 12;
	expect_refused(buf, m, 4, "page bitmap has a bad size");
	memcpy(m, r, sizeof(r));
	m[4] = m[3];
	m[3] = m[2];
	expect_refused(buf, m, 5, "out of order");
	/* records in another order than the format's: STATE before CONFIG */
	memcpy(m, r, sizeof(r));
	m[0] = r[1];
	m[1] = r[0];
	expect_refused(buf, m, 4, "out of order");
	/* a bit for the page after the last: RAM has 16385 pages */
	memcpy(big, r[2].payload, r[2].len);
	big[r[2].len - 8] |= 2;
	memcpy(m, r, sizeof(r));
	m[2].payload = big;
	expect_refused(buf, m, 4, "past the end of RAM");
	free(big);

	/* the parent: removed (bitmap without parent), relative, empty, bad
	 * memory name */
	void *cfgs[5];
	cfgs[0] = config_with(r[0].payload, "parent", NULL);
	cfgs[1] = config_with(r[0].payload, "parent", "relative/dir");
	cfgs[2] = config_with(r[0].payload, "parent", "");
	cfgs[3] = config_with(r[0].payload, "parent-memory-file", "../memory.1");
	cfgs[4] = config_with(r[0].payload, "parent-memory-file", NULL);
	const char *why[5] = { "page bitmap but no parent", "bad parent", "bad parent",
			       "bad parent-memory-file", "bad parent-memory-file" };
	for (int i = 0; i < 5; i++) {
		memcpy(m, r, sizeof(r));
		m[0].payload = cfgs[i];
		m[0].len = fdt_totalsize(cfgs[i]);
		expect_refused(buf, m, 4, why[i]);
		free(cfgs[i]);
	}
	print_message("diff of %llu pages; 11 malformed diff state files refused\n", (unsigned long long)o.pages);
	check_every_damage(buf, len);
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
		cmocka_unit_test(test_diff_state_file),
		cmocka_unit_test(test_tsc_rate),
	};

	if (argc != 2) {
		fprintf(stderr, "usage: %s GUEST.elf\n", argv[0]);
		return 2;
	}
	guest_elf = argv[1];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
