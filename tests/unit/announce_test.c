/* SPDX-License-Identifier: MIT */
/*
 * devices/net_announce.c: S_ANNOUNCE is set only while a shadow control
 * queue can see the guest's acknowledgement, shows in any config read that
 * covers the status byte and in no other, is cleared (and counted once) by
 * an ANNOUNCE_ACK, and by a device reset.
 */
#include <stdint.h>
#include <string.h>

#include "devices/net_announce.h"
#include "tests/unit/unit.h"

/* The status byte as a config read of [off, off + len) shows it, or -1
 * when the read does not cover it. */
static int status_seen(const struct net_announce *a, unsigned off, unsigned len)
{
	uint8_t buf[24];

	memset(buf, 0, sizeof(buf));
	net_announce_config(a, off, buf, len);
	for (unsigned i = 0; i < len; i++)
		if (off + i != 6 && buf[i])
			fail_msg("config byte %u changed", off + i);
	return off <= 6 && 6 < off + len ? buf[6 - off] : -1;
}

static void test_announce_until_acked(void **state)
{
	struct net_announce a;

	(void)state;
	net_announce_init(&a);
	net_announce_request(&a); /* nobody could see the ACK: not set */
	assert_int_equal(status_seen(&a, 0, 12), 0);
	a.shadowed = true;
	net_announce_request(&a);
	assert_int_equal(status_seen(&a, 0, 12), 2);
	assert_int_equal(status_seen(&a, 6, 2), 2);
	assert_int_equal(status_seen(&a, 4, 4), 2);
	assert_int_equal(status_seen(&a, 7, 1), -1);
	assert_int_equal(status_seen(&a, 0, 6), -1);
	net_announce_acked(&a);
	assert_int_equal(status_seen(&a, 0, 12), 0);
	assert_int_equal(a.acks, 1);
	net_announce_acked(&a); /* an ACK with nothing pending counts nothing */
	assert_int_equal(a.acks, 1);
	net_announce_request(&a);
	net_announce_clear(&a); /* the driver reset the device */
	assert_int_equal(status_seen(&a, 0, 12), 0);
	assert_int_equal(a.acks, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_announce_until_acked),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
