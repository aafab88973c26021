/* SPDX-License-Identifier: MIT */
/*
 * vdpa/vhost_vdpa.c without a kernel device: the IOTLB messages it writes
 * are byte-for-byte the kernel's layouts (v2 with its ASID word, and v1),
 * and opening what is not a vhost-vdpa device fails with a message that
 * says why. (The device itself is exercised in the nested lane.)
 */
#include <errno.h>
#include <linux/vhost_types.h>
#include <stdlib.h>

#include "tests/unit/unit.h"
#include "vdpa/vhost_vdpa.h"

static uint64_t u64_at(const uint8_t *b, size_t off)
{
	uint64_t v;
	memcpy(&v, b + off, 8);
	return v;
}

static void test_v2_message_layout(void **state)
{
	uint8_t b[128];
	uint32_t type, asid;

	(void)state;
	memset(b, 0xaa, sizeof(b));
	size_t n = vhost_vdpa_iotlb_msg(b, true, 1, VHOST_IOTLB_UPDATE, 0x1000, 0x2000, 0x7f0000001000ull,
					VDPA_PERM_RW);
	assert_int_equal(n, 72);
	memcpy(&type, b, 4);
	memcpy(&asid, b + 4, 4);
	assert_int_equal(type, VHOST_IOTLB_MSG_V2);
	assert_int_equal(asid, 1);
	assert_int_equal(u64_at(b, 8), 0x1000);
	assert_int_equal(u64_at(b, 16), 0x2000);
	assert_int_equal(u64_at(b, 24), 0x7f0000001000ull);
	assert_int_equal(b[32], VHOST_ACCESS_RW);
	assert_int_equal(b[33], VHOST_IOTLB_UPDATE);
	for (size_t i = 34; i < 72; i++)
		assert_int_equal(b[i], 0); /* padding is zero, not stack garbage */
	assert_int_equal(b[72], 0xaa);   /* nothing past the message */
}

static void test_v1_message_layout(void **state)
{
	uint8_t b[128];
	int type;

	(void)state;
	size_t n = vhost_vdpa_iotlb_msg(b, false, 0, VHOST_IOTLB_INVALIDATE, 0x5000, 0x1000, 0, 0);
	assert_int_equal(n, sizeof(struct vhost_msg));
	memcpy(&type, b, 4);
	assert_int_equal(type, VHOST_IOTLB_MSG);
	/* struct vhost_msg: int type, then the union at its 8-byte alignment */
	assert_int_equal(u64_at(b, 8), 0x5000);
	assert_int_equal(u64_at(b, 16), 0x1000);
	assert_int_equal(b[8 + 25], VHOST_IOTLB_INVALIDATE);
}

static void test_batch_markers(void **state)
{
	uint8_t b[128];

	(void)state;
	vhost_vdpa_iotlb_msg(b, true, 0, VHOST_IOTLB_BATCH_BEGIN, 0, 0, 0, 0);
	assert_int_equal(b[33], VHOST_IOTLB_BATCH_BEGIN);
	vhost_vdpa_iotlb_msg(b, true, 0, VHOST_IOTLB_BATCH_END, 0, 0, 0, 0);
	assert_int_equal(b[33], VHOST_IOTLB_BATCH_END);
}

static void test_open_errors_say_why(void **state)
{
	struct err e = { { 0 } };

	(void)state;
	assert_null(vhost_vdpa_open("/dev/vhost-vdpa-does-not-exist", &e));
	assert_err_contains(&e, "does not exist");
	assert_err_contains(&e, "vdpa dev add");
	memset(&e, 0, sizeof(e));
	assert_null(vhost_vdpa_open("/dev/null", &e));
	assert_err_contains(&e, "VHOST_SET_OWNER");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v2_message_layout),
		cmocka_unit_test(test_v1_message_layout),
		cmocka_unit_test(test_batch_markers),
		cmocka_unit_test(test_open_errors_say_why),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
