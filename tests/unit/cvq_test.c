/* SPDX-License-Identifier: MIT */
/* Control-queue commands: each class applied, and hostile commands refused
 * without changing the state (reliability target A5). */
#include <stdlib.h>

#include "tests/unit/unit.h"
#include "vdpa/cvq.h"

#define ALL ((1ull << VNET_F_CTRL_VQ) | (1ull << VNET_F_CTRL_RX) | (1ull << VNET_F_CTRL_RX_EXTRA) | \
	     (1ull << VNET_F_CTRL_VLAN) | (1ull << VNET_F_MQ) | (1ull << VNET_F_CTRL_MAC_ADDR) |    \
	     (1ull << VNET_F_GUEST_ANNOUNCE) | (1ull << VNET_F_CTRL_GUEST_OFFLOADS) | (1ull << 1) | (1ull << 7))

static const uint8_t mac[6] = { 0x52, 0x54, 0, 0, 0, 1 };
static const struct cvq_limits lim = { .mac_table_max = 4, .max_pairs = 4 };

static uint8_t run(struct net_ctrl_state *s, uint64_t f, const uint8_t *cmd, size_t len)
{
	struct net_ctrl_state before = *s;
	uint8_t r = cvq_apply(s, &lim, f, cmd, len);
	if (r != CVQ_OK)
		assert_memory_equal(&before, s, sizeof(before)); /* refused: no change */
	return r;
}

static void test_each_class(void **state)
{
	struct net_ctrl_state s;

	(void)state;
	cvq_state_reset(&s, mac, ALL);
	assert_true(s.promisc);
	const uint8_t promisc_off[] = { 0, 0, 0 }, allmulti_on[] = { 0, 1, 1 }, nobcast[] = { 0, 5, 1 };
	assert_int_equal(run(&s, ALL, promisc_off, 3), CVQ_OK);
	assert_false(s.promisc);
	assert_int_equal(run(&s, ALL, allmulti_on, 3), CVQ_OK);
	assert_true(s.allmulti);
	assert_int_equal(run(&s, ALL, nobcast, 3), CVQ_OK);
	assert_true(s.nobcast);
	const uint8_t setmac[] = { 1, 1, 0x52, 0, 0, 0, 0, 7 };
	assert_int_equal(run(&s, ALL, setmac, sizeof(setmac)), CVQ_OK);
	assert_int_equal(s.mac[5], 7);
	const uint8_t vlan[] = { 2, 0, 0x2a, 0 };
	assert_int_equal(run(&s, ALL, vlan, 4), CVQ_OK);
	assert_true(s.vlans[0] & (1ull << 42));
	const uint8_t pairs[] = { 4, 0, 3, 0 };
	assert_int_equal(run(&s, ALL, pairs, 4), CVQ_OK);
	assert_int_equal(s.pairs, 3);
	const uint8_t off[] = { 5, 0, 0x80, 0, 0, 0, 0, 0, 0, 0 };
	assert_int_equal(run(&s, ALL, off, sizeof(off)), CVQ_OK);
	assert_int_equal(s.offloads, 0x80);
	const uint8_t ack[] = { 3, 0 };
	assert_int_equal(run(&s, ALL, ack, 2), CVQ_OK);
	assert_int_equal(s.announce_acks, 1);
	/* filter: promisc off, our MAC (now ..:07) passes, others do not */
	uint8_t other[6] = { 0x52, 0, 0, 0, 0, 9 };
	assert_true(cvq_filter_pass(&s, s.mac, -1));
	assert_false(cvq_filter_pass(&s, other, -1));
	assert_false(cvq_filter_pass(&s, s.mac, 43)); /* VLAN 43 not in the table */
	assert_true(cvq_filter_pass(&s, s.mac, 42));
	uint8_t bc[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	assert_false(cvq_filter_pass(&s, bc, -1)); /* NOBCAST */
	uint8_t mc[6] = { 0x01, 0, 0x5e, 0, 0, 1 };
	assert_true(cvq_filter_pass(&s, mc, -1)); /* ALLMULTI */
}

static void test_mac_tables(void **state)
{
	struct net_ctrl_state s;
	uint8_t cmd[2 + 4 + 6 * 5 + 4 + 6 * 1];

	(void)state;
	cvq_state_reset(&s, mac, ALL);
	s.promisc = false;
	memset(cmd, 0, sizeof(cmd));
	cmd[0] = 1;
	cmd[1] = 0;
	cmd[2] = 2; /* two unicast */
	memcpy(cmd + 6, "\x52\0\0\0\0\x11", 6);
	memcpy(cmd + 12, "\x52\0\0\0\0\x12", 6);
	cmd[18] = 1; /* one multicast */
	memcpy(cmd + 22, "\x01\0\x5e\0\0\x05", 6);
	assert_int_equal(run(&s, ALL, cmd, 28), CVQ_OK);
	assert_int_equal(s.uni_count, 2);
	assert_int_equal(s.multi_count, 1);
	assert_true(cvq_filter_pass(&s, (const uint8_t *)"\x52\0\0\0\0\x12", -1));
	assert_false(cvq_filter_pass(&s, (const uint8_t *)"\x52\0\0\0\0\x13", -1));
	/* five unicast entries: more than the device keeps -> promiscuous */
	memset(cmd, 0, sizeof(cmd));
	cmd[0] = 1;
	cmd[2] = 5;
	for (int i = 0; i < 5; i++)
		cmd[6 + 6 * i] = 0x52;
	assert_int_equal(run(&s, ALL, cmd, 2 + 4 + 30 + 4), CVQ_OK);
	assert_true(s.uni_overflow);
	assert_true(cvq_filter_pass(&s, (const uint8_t *)"\x52\0\0\0\0\x13", -1));
}

static void test_hostile(void **state)
{
	struct net_ctrl_state s;
	uint8_t big[CVQ_CMD_MAX + 1];

	(void)state;
	cvq_state_reset(&s, mac, ALL);
	const uint8_t *bad[] = {
		(const uint8_t *)"\x00\x00\x02",             /* PROMISC value 2 */
		(const uint8_t *)"\x00\x06\x01",             /* RX cmd 6 */
		(const uint8_t *)"\x01\x00\xff\xff\xff\xff", /* table count 2^32-1 */
		(const uint8_t *)"\x01\x00\x01\x00\x00\x00", /* count 1, no entry */
		(const uint8_t *)"\x01\x01\x01\x00\x00\x00\x00\x00", /* multicast station MAC */
		(const uint8_t *)"\x02\x00\x00\x10",         /* VLAN 4096 */
		(const uint8_t *)"\x02\x02\x01\x00",         /* VLAN cmd 2 */
		(const uint8_t *)"\x04\x00\x00\x00",         /* 0 pairs */
		(const uint8_t *)"\x04\x00\x05\x00",         /* 5 pairs > max 4 */
		(const uint8_t *)"\x04\x00\xff\xff",         /* 65535 pairs */
		(const uint8_t *)"\x05\x00\x00\x00\x00\x00\x00\x00\x00\x80", /* offload not negotiated */
		(const uint8_t *)"\x03\x01",                 /* ANNOUNCE cmd 1 */
		(const uint8_t *)"\x07\x00",                 /* class 7 */
	};
	const size_t lens[] = { 3, 3, 6, 6, 8, 4, 4, 4, 4, 4, 10, 2, 2 };
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
		if (run(&s, ALL, bad[i], lens[i]) != CVQ_ERR)
			fail_msg("hostile command %zu accepted", i);
	assert_int_equal(run(&s, ALL, (const uint8_t *)"\x00", 1), CVQ_ERR);     /* no command byte */
	assert_int_equal(run(&s, ALL, (const uint8_t *)"\x00\x00", 2), CVQ_ERR); /* no payload */
	assert_int_equal(run(&s, ALL, (const uint8_t *)"\x00\x00\x00\x00", 4), CVQ_ERR); /* trailing byte */
	memset(big, 0, sizeof(big));
	assert_int_equal(run(&s, ALL, big, sizeof(big)), CVQ_ERR); /* longer than the bounce buffer */
	/* every command needs its feature */
	assert_int_equal(run(&s, 1ull << VNET_F_CTRL_VQ, (const uint8_t *)"\x00\x00\x00", 3), CVQ_ERR);
	assert_int_equal(run(&s, 0, (const uint8_t *)"\x03\x00", 2), CVQ_ERR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_each_class),
		cmocka_unit_test(test_mac_tables),
		cmocka_unit_test(test_hostile),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
