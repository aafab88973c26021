/* SPDX-License-Identifier: MIT */
#include <errno.h>

#include "firmware/abi.h"
#include "tests/unit/unit.h"
#include "vmm/mptable.h"

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

static void check_table(struct guest_mem *m, unsigned ncpus)
{
	const uint8_t *mpf = mem_ptr(m, BOOT_EBDA_GPA, 16);
	uint32_t cfg_addr;
	uint16_t len, count;

	assert_memory_equal(mpf, "_MP_", 4);
	assert_int_equal(sum(mpf, 16), 0);
	memcpy(&cfg_addr, mpf + 4, 4);
	const uint8_t *cfg = mem_ptr(m, cfg_addr, 44);
	assert_memory_equal(cfg, "PCMP", 4);
	memcpy(&len, cfg + 4, 2);
	memcpy(&count, cfg + 34, 2);
	assert_int_equal(sum(cfg, len), 0);
	assert_true(cfg_addr + len <= 0xa0000);

	unsigned cpus = 0, bsp = 0, ioapics = 0, ints = 0;
	const uint8_t *p = cfg + 44, *end = cfg + len;
	for (unsigned i = 0; i < count; i++) {
		assert_true(p < end);
		switch (p[0]) {
		case 0:
			assert_int_equal(p[1], cpus); /* APIC ids 0..n-1 in order */
			cpus++;
			bsp += (p[3] & 2) != 0;
			p += 20;
			break;
		case 2:
			assert_int_equal(p[1], ncpus); /* IOAPIC id after the CPUs */
			ioapics++;
			p += 8;
			break;
		case 3:
			ints++;
			p += 8;
			break;
		default:
			p += 8;
		}
	}
	assert_ptr_equal(p, end);
	assert_int_equal(cpus, ncpus);
	assert_int_equal(bsp, 1);
	assert_int_equal(ioapics, 1);
	assert_int_equal(ints, 16);
}

static void test_tables(void **state)
{
	struct guest_mem m;
	struct err e = { { 0 } };

	(void)state;
	assert_int_equal(mem_init(&m, 16 * MiB, &e), 0);
	for (unsigned n = 1; n <= 64; n++) {
		assert_int_equal(mptable_write(&m, BOOT_EBDA_GPA, 0xa0000 - BOOT_EBDA_GPA, n, &e), 0);
		check_table(&m, n);
	}
	mem_destroy(&m);
}

static void test_limits(void **state)
{
	struct guest_mem m;
	struct err e = { { 0 } };

	(void)state;
	assert_int_equal(mem_init(&m, 16 * MiB, &e), 0);
	assert_int_equal(mptable_write(&m, BOOT_EBDA_GPA, 0xa0000 - BOOT_EBDA_GPA, 0, &e), -EINVAL);
	struct err e2 = { { 0 } };
	assert_int_equal(mptable_write(&m, BOOT_EBDA_GPA, 256, 64, &e2), -ENOSPC);
	assert_err_contains(&e2, "needs");
	struct err e3 = { { 0 } };
	assert_int_equal(mptable_write(&m, 0xfff00, 4096, 4, &e3), -EFAULT);
	assert_true(mptable_size(64) <= 0xa0000 - BOOT_EBDA_GPA);
	mem_destroy(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tables),
		cmocka_unit_test(test_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
