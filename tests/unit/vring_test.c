/* SPDX-License-Identifier: MIT */
/*
 * Device-side split ring against hostile drivers (reliability target B1):
 * each malicious ring is rejected with its specific error, every walk is
 * bounded, and nothing outside the IOTLB is touched. Plus the IOTLB itself.
 */
#include <errno.h>
#include <stdlib.h>

#include "tests/unit/unit.h"
#include "vdpa/iotlb.h"
#include "vdpa/vdpa.h"
#include "vdpa/vring.h"

#define BASE 0x100000ull
#define SIZE 0x100000ull
#define DESC (BASE)
#define AVAIL (BASE + 0x4000)
#define USED (BASE + 0x8000)
#define BUF (BASE + 0x10000)
#define NUM 16

struct ring_env {
	uint8_t *mem;
	struct iotlb tlb;
	struct vring_dev v;
	struct vring_chain c;
};

static uint8_t *at(struct ring_env *r, uint64_t iova)
{
	return r->mem + (iova - BASE);
}

static void set_desc(struct ring_env *r, unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	struct vring_desc d = { addr, len, flags, next };
	memcpy(at(r, DESC) + 16 * i, &d, 16);
}

static void set_ind(struct ring_env *r, uint64_t table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		    uint16_t next)
{
	struct vring_desc d = { addr, len, flags, next };
	memcpy(at(r, table) + 16 * i, &d, 16);
}

/* Makes head available and publishes avail->idx += 1. */
static void make_avail(struct ring_env *r, uint16_t head)
{
	uint16_t idx;
	memcpy(&idx, at(r, AVAIL) + 2, 2);
	memcpy(at(r, AVAIL) + 4 + 2 * (idx % NUM), &head, 2);
	idx++;
	memcpy(at(r, AVAIL) + 2, &idx, 2);
}

static void set_avail_idx(struct ring_env *r, uint16_t idx)
{
	memcpy(at(r, AVAIL) + 2, &idx, 2);
}

static int setup(void **state)
{
	struct ring_env *r = calloc(1, sizeof(*r));

	r->mem = calloc(1, SIZE);
	iotlb_init(&r->tlb);
	iotlb_map(&r->tlb, BASE, SIZE, r->mem, VDPA_PERM_RW);
	r->v = (struct vring_dev){ .num = NUM, .desc_iova = DESC, .avail_iova = AVAIL, .used_iova = USED };
	assert_int_equal(vring_dev_attach(&r->v, &r->tlb, &r->tlb), 0);
	*state = r;
	return 0;
}

static int teardown(void **state)
{
	struct ring_env *r = *state;

	iotlb_exit(&r->tlb);
	free(r->mem);
	free(r);
	return 0;
}

static int pop(struct ring_env *r)
{
	return vring_dev_pop(&r->v, &r->c);
}

static void test_good_chain_and_used(void **state)
{
	struct ring_env *r = *state;

	set_desc(r, 3, BUF, 100, VRING_DESC_F_NEXT, 5);
	set_desc(r, 5, BUF + 100, 0, VRING_DESC_F_NEXT, 7); /* zero length: accepted, no segment */
	set_desc(r, 7, BUF + 200, 50, VRING_DESC_F_WRITE, 0);
	make_avail(r, 3);
	assert_int_equal(pop(r), 1);
	assert_int_equal(r->c.head, 3);
	assert_int_equal(r->c.nseg, 2);
	assert_int_equal(r->c.out_len, 100);
	assert_int_equal(r->c.in_len, 50);
	assert_int_equal(pop(r), 0);
	assert_int_equal(vring_dev_push(&r->v, 3, 42), 0);
	uint16_t uidx;
	uint32_t id, len;
	memcpy(&uidx, at(r, USED) + 2, 2);
	memcpy(&id, at(r, USED) + 4, 4);
	memcpy(&len, at(r, USED) + 8, 4);
	assert_int_equal(uidx, 1);
	assert_int_equal(id, 3);
	assert_int_equal(len, 42);
	/* gather and scatter across segments */
	memset(at(r, BUF), 'a', 100);
	uint8_t buf[100];
	assert_int_equal(vring_chain_read(&r->c, &r->tlb, 10, buf, sizeof(buf)), 90);
	assert_int_equal(vring_chain_write(&r->c, &r->tlb, 0, "0123456789", 10), 10);
	assert_memory_equal(at(r, BUF + 200), "0123456789", 10);
}

static void test_indirect(void **state)
{
	struct ring_env *r = *state;
	const uint64_t table = BUF + 0x1000;

	set_ind(r, table, 0, BUF, 10, VRING_DESC_F_NEXT, 2);
	set_ind(r, table, 2, BUF + 10, 20, VRING_DESC_F_WRITE, 0);
	set_desc(r, 0, table, 3 * 16, VRING_DESC_F_INDIRECT, 0);
	make_avail(r, 0);
	assert_int_equal(pop(r), 1);
	assert_int_equal(r->c.nseg, 2);
	assert_int_equal(r->c.in_len, 20);
}

/* Runs one malicious set-up and expects error err from the pop. */
#define BAD(name, err, body)                                                                           \
	static void name(void **state)                                                                 \
	{                                                                                              \
		struct ring_env *r = *state;                                                           \
		const uint64_t table = BUF + 0x1000;                                                   \
		(void)table;                                                                           \
		body;                                                                                  \
		assert_int_equal(pop(r), err);                                                         \
	}

BAD(bad_head_eq_num, -EINVAL, make_avail(r, NUM))
BAD(bad_head_ffff, -EINVAL, make_avail(r, 0xffff))
BAD(bad_avail_jump, -EPROTO, set_avail_idx(r, NUM + 1))
BAD(bad_avail_jump_back, -EPROTO, set_avail_idx(r, 0xffff))
BAD(bad_self_loop, -ELOOP, { set_desc(r, 1, BUF, 8, VRING_DESC_F_NEXT, 1); make_avail(r, 1); })
BAD(bad_two_cycle, -ELOOP, {
	set_desc(r, 1, BUF, 8, VRING_DESC_F_NEXT, 2);
	set_desc(r, 2, BUF, 8, VRING_DESC_F_NEXT, 1);
	make_avail(r, 1);
})
BAD(bad_chain_num_plus_one, -ELOOP, {
	for (unsigned i = 0; i < NUM; i++)
		set_desc(r, i, BUF, 8, VRING_DESC_F_NEXT, (uint16_t)((i + 1) % NUM));
	make_avail(r, 0);
})
BAD(bad_next_out_of_range, -EINVAL, { set_desc(r, 1, BUF, 8, VRING_DESC_F_NEXT, NUM); make_avail(r, 1); })
BAD(bad_readable_after_writable, -EINVAL, {
	set_desc(r, 1, BUF, 8, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
	set_desc(r, 2, BUF, 8, 0, 0);
	make_avail(r, 1);
})
BAD(bad_addr_wraps, -EINVAL, { set_desc(r, 1, UINT64_MAX - 4, 8, 0, 0); make_avail(r, 1); })
BAD(bad_outside_iotlb, -EFAULT, { set_desc(r, 1, BASE + SIZE - 4, 8, 0, 0); make_avail(r, 1); })
BAD(bad_below_iotlb, -EFAULT, { set_desc(r, 1, 0x1000, 8, 0, 0); make_avail(r, 1); })
BAD(bad_huge_len, -EFAULT, { set_desc(r, 1, BUF, 0xffffffff, 0, 0); make_avail(r, 1); })
BAD(bad_nested_indirect, -EINVAL, {
	set_ind(r, table, 0, table, 16, VRING_DESC_F_INDIRECT, 0);
	set_desc(r, 0, table, 16, VRING_DESC_F_INDIRECT, 0);
	make_avail(r, 0);
})
BAD(bad_indirect_plus_next, -EINVAL, {
	set_ind(r, table, 0, BUF, 8, 0, 0);
	set_desc(r, 0, table, 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 1);
	make_avail(r, 0);
})
BAD(bad_indirect_len0, -EINVAL, { set_desc(r, 0, table, 0, VRING_DESC_F_INDIRECT, 0); make_avail(r, 0); })
BAD(bad_indirect_len15, -EINVAL, { set_desc(r, 0, table, 15, VRING_DESC_F_INDIRECT, 0); make_avail(r, 0); })
BAD(bad_indirect_len17, -EINVAL, { set_desc(r, 0, table, 17, VRING_DESC_F_INDIRECT, 0); make_avail(r, 0); })
BAD(bad_indirect_too_many, -EINVAL, {
	set_desc(r, 0, table, 16 * 65537, VRING_DESC_F_INDIRECT, 0);
	make_avail(r, 0);
})
BAD(bad_indirect_table_unmapped, -EFAULT, {
	set_desc(r, 0, BASE + SIZE - 16, 32, VRING_DESC_F_INDIRECT, 0);
	make_avail(r, 0);
})
BAD(bad_indirect_loop, -ELOOP, {
	set_ind(r, table, 0, BUF, 8, VRING_DESC_F_NEXT, 1);
	set_ind(r, table, 1, BUF, 8, VRING_DESC_F_NEXT, 0);
	set_desc(r, 0, table, 32, VRING_DESC_F_INDIRECT, 0);
	make_avail(r, 0);
})
BAD(bad_indirect_next_oob, -EINVAL, {
	set_ind(r, table, 0, BUF, 8, VRING_DESC_F_NEXT, 2);
	set_desc(r, 0, table, 32, VRING_DESC_F_INDIRECT, 0);
	make_avail(r, 0);
})
BAD(bad_indirect_in_chain, -EINVAL, {
	set_ind(r, table, 0, BUF, 8, 0, 0);
	set_desc(r, 1, BUF, 8, VRING_DESC_F_NEXT, 2);
	set_desc(r, 2, table, 16, VRING_DESC_F_INDIRECT, 0);
	make_avail(r, 1);
})
BAD(bad_indirect_buf_wraps, -EINVAL, {
	set_ind(r, table, 0, UINT64_MAX, 2, 0, 0);
	set_desc(r, 0, table, 16, VRING_DESC_F_INDIRECT, 0);
	make_avail(r, 0);
})
BAD(bad_too_many_segments, -E2BIG, {
	/* a legal chain, longer than the device takes: bounded, refused */
	for (unsigned i = 0; i < 200; i++)
		set_ind(r, table, i, BUF, 1, VRING_DESC_F_NEXT, (uint16_t)(i + 1));
	set_ind(r, table, 199, BUF, 1, 0, 0);
	set_desc(r, 0, table, 200 * 16, VRING_DESC_F_INDIRECT, 0);
	make_avail(r, 0);
})

/* Edges that must still be accepted: the bounds are not off by one. */
static void test_bounds_are_exact(void **state)
{
	struct ring_env *r = *state;
	const uint64_t table = BUF + 0x1000;

	/* a chain of exactly num descriptors */
	for (unsigned i = 0; i < NUM; i++)
		set_desc(r, i, BUF, 8, i + 1 < NUM ? VRING_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	make_avail(r, 0);
	assert_int_equal(pop(r), 1);
	assert_int_equal(r->c.nseg, NUM);
	/* an indirect table of exactly one entry */
	set_ind(r, table, 0, BUF, 8, 0, 0);
	set_desc(r, 1, table, 16, VRING_DESC_F_INDIRECT, 0);
	make_avail(r, 1);
	assert_int_equal(pop(r), 1);
	assert_int_equal(r->c.nseg, 1);
	/* the avail index exactly num ahead: a full ring, not a jump */
	for (unsigned i = 0; i < NUM; i++)
		set_desc(r, i, BUF, 8, 0, 0);
	for (unsigned i = 0; i < NUM; i++)
		make_avail(r, (uint16_t)i);
	assert_int_equal(vring_dev_pending(&r->v), NUM);
	for (unsigned i = 0; i < NUM; i++)
		assert_int_equal(pop(r), 1);
	assert_int_equal(pop(r), 0);
	/* a buffer that ends exactly at the end of the mapping */
	set_desc(r, 2, BASE + SIZE - 8, 8, VRING_DESC_F_WRITE, 0);
	make_avail(r, 2);
	assert_int_equal(pop(r), 1);
}

static void test_buffer_straddles_hole(void **state)
{
	struct ring_env *r = *state;
	static uint8_t a[4096], b[4096];

	/* two mappings with a page-sized hole between them */
	assert_int_equal(iotlb_map(&r->tlb, 0x400000, 4096, a, VDPA_PERM_RW), 0);
	assert_int_equal(iotlb_map(&r->tlb, 0x402000, 4096, b, VDPA_PERM_RW), 0);
	set_desc(r, 1, 0x400f00, 0x2000, 0, 0);
	make_avail(r, 1);
	assert_int_equal(pop(r), -EFAULT);
	/* adjacent mappings are fine: the access continues in the next */
	assert_int_equal(iotlb_map(&r->tlb, 0x401000, 4096, a, VDPA_PERM_RW), 0);
	set_desc(r, 2, 0x400f00, 0x2000, 0, 0);
	make_avail(r, 2);
	assert_int_equal(pop(r), 1);
}

static void test_index_wraparound(void **state)
{
	struct ring_env *r = *state;

	/* indices are free-running u16: start just below the wrap */
	r->v.last_avail = 0xfffe;
	set_avail_idx(r, 0xfffe);
	set_desc(r, 1, BUF, 8, 0, 0);
	for (int i = 0; i < 4; i++)
		make_avail(r, 1);
	assert_int_equal(vring_dev_pending(&r->v), 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pop(r), 1);
	assert_int_equal(r->v.last_avail, 2);
}

/* With EVENT_IDX, an empty ring asks for a kick at the next avail entry
 * (avail_event, after the used ring); a full one leaves it alone. */
static void test_avail_event(void **state)
{
	struct ring_env *r = *state;
	uint16_t ev;

	r->v.event_idx = true;
	r->v.last_avail = 5;
	set_avail_idx(r, 5);
	set_desc(r, 1, BUF, 8, 0, 0);
	make_avail(r, 1);
	make_avail(r, 1);
	assert_int_equal(pop(r), 1);
	memcpy(&ev, at(r, USED) + 4 + 8 * NUM, 2);
	assert_int_equal(ev, 0); /* not empty yet: untouched */
	assert_int_equal(pop(r), 1);
	assert_int_equal(pop(r), 0);
	memcpy(&ev, at(r, USED) + 4 + 8 * NUM, 2);
	assert_int_equal(ev, 7); /* kick me when entry 7 comes */
	make_avail(r, 1);
	assert_int_equal(pop(r), 1);
	assert_int_equal(pop(r), 0);
	memcpy(&ev, at(r, USED) + 4 + 8 * NUM, 2);
	assert_int_equal(ev, 8);
}

/* A polling device asks for no kicks: the flag without EVENT_IDX; with
 * it, avail_event held back while off (an empty pop does not move it) and
 * moved to the next entry when kicks are on again. What was made available
 * meanwhile is reported. */
static void test_kicks_off_and_on(void **state)
{
	struct ring_env *r = *state;
	uint16_t flags, ev;

	assert_int_equal(vring_dev_kicks(&r->v, false), 0);
	memcpy(&flags, at(r, USED), 2);
	assert_int_equal(flags & VRING_USED_F_NO_NOTIFY, VRING_USED_F_NO_NOTIFY);
	set_desc(r, 1, BUF, 8, 0, 0);
	make_avail(r, 1);
	assert_int_equal(vring_dev_kicks(&r->v, true), 1);
	memcpy(&flags, at(r, USED), 2);
	assert_int_equal(flags & VRING_USED_F_NO_NOTIFY, 0);
	assert_int_equal(pop(r), 1);

	r->v.event_idx = true;
	assert_int_equal(vring_dev_kicks(&r->v, false), 0);
	assert_int_equal(pop(r), 0);
	memcpy(&ev, at(r, USED) + 4 + 8 * NUM, 2);
	assert_int_equal(ev, 0); /* held back */
	assert_int_equal(vring_dev_kicks(&r->v, true), 0);
	memcpy(&ev, at(r, USED) + 4 + 8 * NUM, 2);
	assert_int_equal(ev, 1); /* kick me when entry 1 comes */
}

BAD(bad_head_in_avail_after_wrap, -EINVAL, {
	r->v.last_avail = 0xffff;
	set_avail_idx(r, 0xffff);
	make_avail(r, 0x8000);
})

BAD(bad_indirect_readable_after_writable, -EINVAL, {
	set_ind(r, table, 0, BUF, 8, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	set_ind(r, table, 1, BUF, 8, 0, 0);
	set_desc(r, 0, table, 32, VRING_DESC_F_INDIRECT, 0);
	make_avail(r, 0);
})
BAD(bad_indirect_in_write_only_memory, -EFAULT, {
	static uint8_t wo[4096];
	iotlb_map(&r->tlb, 0x500000, sizeof(wo), wo, VDPA_PERM_WO);
	set_desc(r, 0, 0x500000, 16, VRING_DESC_F_INDIRECT, 0);
	make_avail(r, 0);
})
BAD(bad_read_from_write_only_buffer, -EFAULT, {
	static uint8_t wo[4096];
	iotlb_map(&r->tlb, 0x500000, sizeof(wo), wo, VDPA_PERM_WO);
	set_desc(r, 1, 0x500000, 64, 0, 0);
	make_avail(r, 1);
})

static void test_zero_length_chain(void **state)
{
	struct ring_env *r = *state;

	set_desc(r, 1, BUF, 0, 0, 0);
	make_avail(r, 1);
	assert_int_equal(pop(r), 1);
	assert_int_equal(r->c.nseg, 0);
}

static void test_write_to_read_only_mapping(void **state)
{
	struct ring_env *r = *state;
	static uint8_t ro[4096];

	assert_int_equal(iotlb_map(&r->tlb, 0x400000, sizeof(ro), ro, VDPA_PERM_RO), 0);
	set_desc(r, 1, 0x400000, 64, VRING_DESC_F_WRITE, 0);
	make_avail(r, 1);
	assert_int_equal(pop(r), -EFAULT);
}

static void test_ring_geometry(void **state)
{
	struct ring_env *r = *state;
	struct vring_dev v;

#define GEOM(n, d, a, u, err)                                                                          \
	do {                                                                                           \
		v = (struct vring_dev){ .num = (n), .desc_iova = (d), .avail_iova = (a), .used_iova = (u) }; \
		assert_int_equal(vring_dev_attach(&v, &r->tlb, &r->tlb), err);                         \
	} while (0)
	GEOM(0, DESC, AVAIL, USED, -EINVAL);
	GEOM(3, DESC, AVAIL, USED, -EINVAL);
	GEOM(48, DESC, AVAIL, USED, -EINVAL);
	GEOM(8, DESC + 8, AVAIL, USED, -EINVAL);
	GEOM(8, DESC, AVAIL + 1, USED, -EINVAL);
	GEOM(8, DESC, AVAIL, USED + 2, -EINVAL);
	GEOM(8, BASE + SIZE - 64, AVAIL, USED, -EFAULT);
	GEOM(8, DESC, AVAIL, BASE + SIZE - 8, -EFAULT);
	GEOM(8, 0x10, AVAIL, USED, -EFAULT);
	GEOM(8, DESC, AVAIL, USED, 0);
#undef GEOM
}

static void test_iotlb(void **state)
{
	struct iotlb t;
	uint8_t a[8192], b[4096], out[16];

	(void)state;
	iotlb_init(&t);
	assert_int_equal(iotlb_map(&t, 0x1000, 4096, b, VDPA_PERM_RW), 0);
	assert_int_equal(iotlb_map(&t, 0x2000, 8192, a, VDPA_PERM_RW), 0);
	assert_int_equal(iotlb_map(&t, 0x1800, 16, a, VDPA_PERM_RW), -EEXIST);
	assert_int_equal(iotlb_map(&t, 0, 0, a, VDPA_PERM_RW), -EINVAL);
	assert_int_equal(iotlb_map(&t, UINT64_MAX, 2, a, VDPA_PERM_RW), -EINVAL);
	/* an access spanning two adjacent mappings */
	memset(b, 1, sizeof(b));
	memset(a, 2, sizeof(a));
	assert_int_equal(iotlb_read(&t, 0x2000 - 8, out, 16), 0);
	assert_int_equal(out[7], 1);
	assert_int_equal(out[8], 2);
	assert_int_equal(iotlb_read(&t, 0x4000 - 8, out, 16), -EFAULT); /* runs off the end */
	assert_null(iotlb_ptr(&t, 0x2000 - 8, 16, VDPA_PERM_RO));
	assert_non_null(iotlb_ptr(&t, 0x2000, 16, VDPA_PERM_RO));
	/* punching a hole splits a mapping */
	assert_int_equal(iotlb_unmap(&t, 0x2800, 0x800), 0);
	assert_int_equal(t.nr, 3);
	assert_int_equal(iotlb_read(&t, 0x2900, out, 1), -EFAULT);
	assert_int_equal(iotlb_read(&t, 0x3000, out, 1), 0);
	assert_ptr_equal(iotlb_ptr(&t, 0x3000, 1, VDPA_PERM_RO), a + 0x1000);
	assert_int_equal(iotlb_unmap(&t, 0, 1ull << 40), 0);
	assert_int_equal(t.nr, 0);
	iotlb_exit(&t);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_good_chain_and_used), T(test_indirect), T(test_zero_length_chain),
		T(test_write_to_read_only_mapping), T(test_ring_geometry), cmocka_unit_test(test_iotlb),
		T(test_bounds_are_exact), T(test_buffer_straddles_hole), T(test_index_wraparound), T(test_avail_event),
		T(test_kicks_off_and_on),
		T(bad_head_in_avail_after_wrap), T(bad_indirect_readable_after_writable),
		T(bad_indirect_in_write_only_memory), T(bad_read_from_write_only_buffer),
		T(bad_head_eq_num), T(bad_head_ffff), T(bad_avail_jump), T(bad_avail_jump_back),
		T(bad_self_loop), T(bad_two_cycle), T(bad_chain_num_plus_one), T(bad_next_out_of_range),
		T(bad_readable_after_writable), T(bad_addr_wraps), T(bad_outside_iotlb), T(bad_below_iotlb),
		T(bad_huge_len), T(bad_nested_indirect), T(bad_indirect_plus_next), T(bad_indirect_len0),
		T(bad_indirect_len15), T(bad_indirect_len17), T(bad_indirect_too_many),
		T(bad_indirect_table_unmapped), T(bad_indirect_loop), T(bad_indirect_next_oob),
		T(bad_indirect_in_chain), T(bad_indirect_buf_wraps), T(bad_too_many_segments),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
