/* SPDX-License-Identifier: MIT */
/*
 * vdpa/iova.c: shadow-ring IOVAs never land on guest RAM (which stays at
 * IOVA = GPA) or on each other, honour the device's range and alignment,
 * prefer the hole above RAM, use the PCI hole when that is full, and
 * refuse cleanly at every edge (a range ending at 2^64 - 1 included).
 */
#include <errno.h>

#include "tests/unit/unit.h"
#include "vdpa/iova.h"

static struct guest_mem ram_of(uint64_t size)
{
	struct guest_mem m = { .fd = -1, .size = size, .nr_regions = 1 };

	m.regions[0] = (struct mem_region){ 0, size < MEM_HOLE_START ? size : MEM_HOLE_START, 0 };
	if (size > MEM_HOLE_START) {
		m.regions[1] = (struct mem_region){ MEM_HOLE_END, size - MEM_HOLE_START, MEM_HOLE_START };
		m.nr_regions = 2;
	}
	return m;
}

static void test_above_ram_aligned_disjoint(void **state)
{
	struct guest_mem m = ram_of(1 * GiB);
	struct iova_space s;
	struct err e = { { 0 } };
	uint64_t a, b, c;

	(void)state;
	assert_int_equal(iova_init(&s, 0, (1ull << 48) - 1, &m, &e), 0);
	assert_int_equal(iova_alloc(&s, 100, 4096, &a), 0);
	assert_int_equal(a, 1 * GiB); /* right above RAM */
	assert_int_equal(iova_alloc(&s, 3 * 4096, 1 << 16, &b), 0);
	assert_int_equal(b % (1 << 16), 0);
	assert_true(b >= a + 4096);
	assert_int_equal(iova_alloc(&s, 4096, 4096, &c), 0);
	assert_int_equal(c, a + 4096); /* first fit: the gap between a and b */
	assert_true(iova_busy(&s, a, 1) && iova_busy(&s, b + 3 * 4096 - 1, 1) && iova_busy(&s, 0, 4096));
	assert_false(iova_busy(&s, b + 3 * 4096, 4096));
	/* freed space is reused; a second free of it is refused */
	assert_int_equal(iova_free(&s, c), 0);
	assert_int_equal(iova_free(&s, c), -ENOENT);
	assert_int_equal(iova_alloc(&s, 4096, 4096, &c), 0);
	assert_int_equal(c, a + 4096);
	assert_int_equal(iova_free(&s, a + 1), -ENOENT);
}

static void test_range_edges(void **state)
{
	struct guest_mem m = ram_of(1 * GiB);
	struct iova_space s;
	struct err e = { { 0 } };
	uint64_t a;

	(void)state;
	/* RAM must fit the device's range at IOVA = GPA */
	assert_int_equal(iova_init(&s, 0, 1 * GiB - 2, &m, &e), -ERANGE);
	assert_err_contains(&e, "cannot be mapped at IOVA = GPA");
	memset(&e, 0, sizeof(e));
	assert_int_equal(iova_init(&s, 4096, 2 * GiB, &m, &e), -ERANGE);
	memset(&e, 0, sizeof(e));
	assert_int_equal(iova_init(&s, 5, 4, &m, &e), -ERANGE);
	/* exactly RAM plus two pages: two allocations, then nothing */
	assert_int_equal(iova_init(&s, 0, 1 * GiB + 2 * 4096 - 1, &m, &e), 0);
	assert_int_equal(iova_alloc(&s, 4096, 4096, &a), 0);
	assert_int_equal(iova_alloc(&s, 4096, 4096, &a), 0);
	assert_int_equal(a, 1 * GiB + 4096);
	assert_int_equal(iova_alloc(&s, 4096, 4096, &a), -ENOSPC);
	/* RAM ending at the range's end: nothing above, nothing below */
	assert_int_equal(iova_init(&s, 0, 1 * GiB - 1, &m, &e), 0);
	assert_int_equal(iova_alloc(&s, 4096, 4096, &a), -ENOSPC);
	/* bad sizes and alignments */
	assert_int_equal(iova_init(&s, 0, UINT64_MAX, &m, &e), 0);
	assert_int_equal(iova_alloc(&s, 0, 4096, &a), -EINVAL);
	assert_int_equal(iova_alloc(&s, 4096, 4095, &a), -EINVAL);
	assert_int_equal(iova_alloc(&s, 4096, 3 * 4096, &a), -EINVAL);
	assert_int_equal(iova_alloc(&s, UINT64_MAX, 4096, &a), -EINVAL);
	/* a range up to 2^64 - 1: the top page is usable, nothing wraps */
	assert_int_equal(iova_alloc(&s, 4096, 1ull << 63, &a), 0);
	assert_int_equal(a, 1ull << 63);
	assert_int_equal(iova_alloc(&s, (1ull << 63) - 4096, 1ull << 63, &a), -ENOSPC);
	uint64_t q1, top;
	assert_int_equal(iova_alloc(&s, 1ull << 62, 1ull << 62, &q1), 0);
	assert_int_equal(q1, 1ull << 62); /* first fit above RAM */
	assert_int_equal(iova_alloc(&s, 1ull << 62, 1ull << 62, &top), 0);
	assert_int_equal(top, 3ull << 62); /* past the page at 2^63: the top quarter */
	assert_true(iova_busy(&s, UINT64_MAX - 4095, 4096)); /* it ends at 2^64 - 1 */
	assert_int_equal(iova_alloc(&s, 1ull << 62, 4096, &a), -ENOSPC);
	assert_true(iova_busy(&s, UINT64_MAX, 2)); /* wraps */
}

static void test_pci_hole_when_above_is_full(void **state)
{
	/* 5 GiB: RAM at 0-3 GiB and 4-6 GiB; a device range ending at 6 GiB
	 * leaves only the 32-bit PCI hole */
	struct guest_mem m = ram_of(5 * GiB);
	struct iova_space s;
	struct err e = { { 0 } };
	uint64_t a;

	(void)state;
	assert_int_equal(m.nr_regions, 2);
	assert_int_equal(iova_init(&s, 0, 6 * GiB - 1, &m, &e), 0);
	assert_int_equal(iova_alloc(&s, 1 << 20, 1 << 20, &a), 0);
	assert_int_equal(a, MEM_HOLE_START);
	assert_false(iova_busy(&s, MEM_HOLE_START + (1 << 20), 4096));
	/* the whole hole, then no more */
	assert_int_equal(iova_alloc(&s, MEM_HOLE_END - MEM_HOLE_START - (1 << 20), 4096, &a), 0);
	assert_int_equal(iova_alloc(&s, 4096, 4096, &a), -ENOSPC);
	/* with room above RAM, that comes first */
	assert_int_equal(iova_init(&s, 0, 7 * GiB - 1, &m, &e), 0);
	assert_int_equal(iova_alloc(&s, 4096, 4096, &a), 0);
	assert_int_equal(a, 6 * GiB);
}

static void test_many_allocations(void **state)
{
	struct guest_mem m = ram_of(64 * MiB);
	struct iova_space s;
	struct err e = { { 0 } };
	uint64_t a[IOVA_MAX_ALLOCS], x;

	(void)state;
	assert_int_equal(iova_init(&s, 0, (1ull << 40) - 1, &m, &e), 0);
	for (unsigned i = 0; i < IOVA_MAX_ALLOCS; i++)
		assert_int_equal(iova_alloc(&s, (i % 3 + 1) * 4096, 4096, &a[i]), 0);
	assert_int_equal(iova_alloc(&s, 4096, 4096, &x), -ENOSPC); /* the table is full */
	for (unsigned i = 0; i < IOVA_MAX_ALLOCS; i++)
		for (unsigned j = i + 1; j < IOVA_MAX_ALLOCS; j++)
			assert_true(a[i] != a[j]);
	for (unsigned i = 0; i + 1 < s.nr; i++) /* sorted and disjoint */
		assert_true(s.alloc[i].start + s.alloc[i].size <= s.alloc[i + 1].start);
	for (unsigned i = 0; i < IOVA_MAX_ALLOCS; i += 2)
		assert_int_equal(iova_free(&s, a[i]), 0);
	assert_int_equal(s.nr, IOVA_MAX_ALLOCS / 2);
	assert_int_equal(iova_alloc(&s, 4096, 4096, &x), 0);
	assert_int_equal(x, a[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_above_ram_aligned_disjoint),
		cmocka_unit_test(test_range_edges),
		cmocka_unit_test(test_pci_hole_when_above_is_full),
		cmocka_unit_test(test_many_allocations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
