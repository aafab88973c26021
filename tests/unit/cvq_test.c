/* SPDX-License-Identifier: MIT */
/* Control-queue commands: each class applied, and hostile commands refused
 * without changing the state (reliability target A5). */
#include <stdlib.h>
#include <string.h>

#include "tests/unit/unit.h"
#include "vdpa/cvq.h"

#define ALL ((1ull << VNET_F_CTRL_VQ) | (1ull << VNET_F_CTRL_RX) | (1ull << VNET_F_CTRL_RX_EXTRA) | \
	     (1ull << VNET_F_CTRL_VLAN) | (1ull << VNET_F_MQ) | (1ull << VNET_F_CTRL_MAC_ADDR) |    \
	     (1ull << VNET_F_GUEST_ANNOUNCE) | (1ull << VNET_F_CTRL_GUEST_OFFLOADS) | (1ull << 1) | (1ull << 7))

static const uint8_t mac[6] = { 0x52, 0x54, 0, 0, 0, 1 };
static const struct cvq_limits lim = { .mac_table_max = 4, .max_pairs = 4, .rss_key_max = 40, .rss_table_max = 64,
				       .hash_types = CVQ_HASH_IPV4 | CVQ_HASH_TCPV4 | CVQ_HASH_UDPV4 };
#define RSSF ((1ull << VNET_F_CTRL_VQ) | (1ull << VNET_F_MQ) | (1ull << VNET_F_RSS) | (1ull << VNET_F_HASH_REPORT))

/* The key of the Toeplitz verification suite that NIC vendors and DPDK's
 * thash test publish, with its IPv4 vectors. */
static const uint8_t ms_key[40] = { 0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
				    0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
				    0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa };

/* An RSS_CONFIG command: n table entries from tbl (or i % 4), key of
 * key_len bytes of ms_key. Returns its length. */
static size_t rss_cmd(uint8_t *b, uint32_t types, uint16_t n, const uint16_t *tbl, uint16_t unclassified,
		      uint16_t max_tx, uint8_t key_len)
{
	size_t o = 0;
	b[o++] = CVQ_MQ;
	b[o++] = CVQ_MQ_RSS_CONFIG;
	memcpy(b + o, &types, 4);
	o += 4;
	uint16_t mask = (uint16_t)(n - 1);
	memcpy(b + o, &mask, 2);
	memcpy(b + o + 2, &unclassified, 2);
	o += 4;
	for (uint16_t i = 0; i < n; i++, o += 2) {
		uint16_t v = tbl ? tbl[i] : (uint16_t)(i % 4);
		memcpy(b + o, &v, 2);
	}
	memcpy(b + o, &max_tx, 2);
	b[o + 2] = key_len;
	o += 3;
	memcpy(b + o, ms_key, key_len);
	return o + key_len;
}

/* An Ethernet + IPv4 + UDP/TCP header from src:sport to dst:dport. */
static size_t ipv4_frame(uint8_t *f, const uint8_t src[4], const uint8_t dst[4], uint8_t proto, uint16_t sport,
			 uint16_t dport, bool vlan)
{
	size_t o = 12;
	memset(f, 0, 80);
	if (vlan) {
		f[o++] = 0x81, f[o++] = 0x00, f[o++] = 0x00, f[o++] = 0x05;
	}
	f[o++] = 0x08, f[o++] = 0x00;
	f[o] = 0x45;
	f[o + 9] = proto;
	memcpy(f + o + 12, src, 4);
	memcpy(f + o + 16, dst, 4);
	f[o + 20] = (uint8_t)(sport >> 8), f[o + 21] = (uint8_t)sport;
	f[o + 22] = (uint8_t)(dport >> 8), f[o + 23] = (uint8_t)dport;
	return o + 28;
}

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

static void test_toeplitz(void **state)
{
	/* {source, destination, sport, dport, IPv4 hash, TCPv4 hash} */
	static const struct {
		uint8_t src[4], dst[4];
		uint16_t sport, dport;
		uint32_t ip, tcp;
	} v[] = {
		{ { 66, 9, 149, 187 }, { 161, 142, 100, 80 }, 2794, 1766, 0x323e8fc2, 0x51ccc178 },
		{ { 199, 92, 111, 2 }, { 65, 69, 140, 83 }, 14230, 4739, 0xd718262a, 0xc626b0ea },
		{ { 24, 19, 198, 95 }, { 12, 22, 207, 184 }, 12898, 38024, 0xd2d0a5de, 0x5c2b394a },
		{ { 38, 27, 205, 30 }, { 209, 142, 163, 6 }, 48228, 2217, 0x82989176, 0xafc7327f },
		{ { 153, 39, 163, 191 }, { 202, 188, 127, 2 }, 44251, 1303, 0x5d1809c5, 0x10e828a2 },
	};

	(void)state;
	for (unsigned i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		uint8_t in[12];
		memcpy(in, v[i].src, 4);
		memcpy(in + 4, v[i].dst, 4);
		in[8] = (uint8_t)(v[i].sport >> 8), in[9] = (uint8_t)v[i].sport;
		in[10] = (uint8_t)(v[i].dport >> 8), in[11] = (uint8_t)v[i].dport;
		assert_int_equal(cvq_toeplitz(ms_key, sizeof(ms_key), in, 8), v[i].ip);
		assert_int_equal(cvq_toeplitz(ms_key, sizeof(ms_key), in, 12), v[i].tcp);
	}
}

static void test_rss(void **state)
{
	struct net_ctrl_state s;
	uint8_t b[512], f[80];
	static const uint8_t src[4] = { 66, 9, 149, 187 }, dst[4] = { 161, 142, 100, 80 };

	(void)state;
	cvq_state_reset(&s, mac, RSSF);
	assert_int_equal(cvq_rss_queue(&s, f, 0), -1); /* off: the device's choice */
	/* 64 entries i % 4, unclassified to queue 2, 3 pairs, full key */
	size_t n = rss_cmd(b, CVQ_HASH_IPV4 | CVQ_HASH_TCPV4, 64, NULL, 2, 3, 40);
	assert_int_equal(run(&s, RSSF, b, n), CVQ_OK);
	assert_int_equal(s.rss.mode, CVQ_RSS_STEER);
	assert_int_equal(s.rss.table_len, 64);
	assert_int_equal(s.pairs, 3); /* max_tx_vq sets the pairs */
	/* TCP: table[0x51ccc178 & 63] = 0x38 % 4 = 0; IPv4 for UDP (not
	 * hashed by port): table[0x323e8fc2 & 63] = 2 */
	size_t fl = ipv4_frame(f, src, dst, 6, 2794, 1766, false);
	assert_int_equal(cvq_rss_queue(&s, f, fl), (int)((0x51ccc178u & 63) % 4));
	fl = ipv4_frame(f, src, dst, 17, 2794, 1766, true); /* through a VLAN tag */
	assert_int_equal(cvq_rss_queue(&s, f, fl), (int)((0x323e8fc2u & 63) % 4));
	f[16] = 0x86, f[17] = 0xdd; /* IPv6: not hashed here, unclassified */
	assert_int_equal(cvq_rss_queue(&s, f, fl), 2);
	assert_int_equal(cvq_rss_queue(&s, f, 20), 2); /* too short for IPv4 */
	/* every entry queue 1: all hashed traffic there */
	uint16_t ones[8] = { 1, 1, 1, 1, 1, 1, 1, 1 };
	n = rss_cmd(b, CVQ_HASH_IPV4, 8, ones, 0, 2, 40);
	assert_int_equal(run(&s, RSSF, b, n), CVQ_OK);
	fl = ipv4_frame(f, src, dst, 1, 0, 0, false);
	assert_int_equal(cvq_rss_queue(&s, f, fl), 1);
	f[12] = 0x08, f[13] = 0x06; /* ARP: unclassified */
	assert_int_equal(cvq_rss_queue(&s, f, fl), 0);
	/* nothing hashed, no key: RSS off, pairs still set */
	n = rss_cmd(b, 0, 1, NULL, 0, 4, 0);
	assert_int_equal(run(&s, RSSF, b, n), CVQ_OK);
	assert_int_equal(s.rss.mode, CVQ_RSS_OFF);
	assert_int_equal(s.pairs, 4);
	/* HASH_CONFIG: hash types and key, steering off */
	uint8_t h[2 + 13 + 40] = { CVQ_MQ, CVQ_MQ_HASH_CONFIG, 3, 0, 0, 0 };
	h[14] = 40;
	memcpy(h + 15, ms_key, 40);
	assert_int_equal(run(&s, RSSF, h, sizeof(h)), CVQ_OK);
	assert_int_equal(s.rss.mode, CVQ_RSS_HASH);
	assert_int_equal(s.rss.hash_types, 3);
	assert_int_equal(cvq_rss_queue(&s, f, fl), -1);
	/* what HASH_REPORT puts in the header: type and value */
	uint32_t hv = 1;
	assert_int_equal(cvq_rss_hash(&s, f, fl, &hv), CVQ_REPORT_NONE); /* ARP */
	assert_int_equal(hv, 0);
	fl = ipv4_frame(f, src, dst, 6, 2794, 1766, false);
	assert_int_equal(cvq_rss_hash(&s, f, fl, &hv), CVQ_REPORT_TCPV4);
	assert_int_equal(hv, 0x51ccc178u);
	fl = ipv4_frame(f, src, dst, 17, 2794, 1766, true); /* UDPv4 not configured: IPv4 */
	assert_int_equal(cvq_rss_hash(&s, f, fl, &hv), CVQ_REPORT_IPV4);
	assert_int_equal(hv, 0x323e8fc2u);
	h[2] = CVQ_HASH_UDPV4;
	assert_int_equal(run(&s, RSSF, h, sizeof(h)), CVQ_OK);
	assert_int_equal(cvq_rss_hash(&s, f, fl, &hv), CVQ_REPORT_UDPV4);
	assert_int_equal(hv, 0x51ccc178u);
	cvq_state_reset(&s, mac, RSSF); /* off: nothing reported */
	assert_int_equal(cvq_rss_hash(&s, f, fl, &hv), CVQ_REPORT_NONE);
}

static void test_rss_hostile(void **state)
{
	struct net_ctrl_state s;
	uint8_t b[512];
	uint16_t big[8] = { 0, 1, 2, 3, 4, 0, 0, 0 };
	size_t n;

	(void)state;
	cvq_state_reset(&s, mac, RSSF);
	n = rss_cmd(b, CVQ_HASH_IPV4, 8, NULL, 0, 2, 40);
	assert_int_equal(run(&s, RSSF & ~(1ull << VNET_F_RSS), b, n), CVQ_ERR); /* not negotiated */
	assert_int_equal(run(&s, RSSF, b, n - 1), CVQ_ERR);                      /* key cut short */
	b[n] = 0;
	assert_int_equal(run(&s, RSSF, b, n + 1), CVQ_OK); /* a byte after the key: Linux 6.12 sends one */
	assert_int_equal(s.rss.key_len, 40);
	cvq_state_reset(&s, mac, RSSF);
	for (size_t cut = 0; cut < n; cut++)
		assert_int_equal(run(&s, RSSF, b, cut), CVQ_ERR);
	n = rss_cmd(b, CVQ_HASH_IPV4, 6, NULL, 0, 2, 40); /* 6 entries: not a power of two */
	assert_int_equal(run(&s, RSSF, b, n), CVQ_ERR);
	n = rss_cmd(b, CVQ_HASH_IPV4, 128, NULL, 0, 2, 40); /* more than the device's 64 */
	assert_int_equal(run(&s, RSSF, b, n), CVQ_ERR);
	n = rss_cmd(b, CVQ_HASH_IPV4, 8, big, 0, 2, 40); /* queue 4 of 4 */
	assert_int_equal(run(&s, RSSF, b, n), CVQ_ERR);
	n = rss_cmd(b, CVQ_HASH_IPV4, 8, NULL, 4, 2, 40); /* unclassified queue 4 */
	assert_int_equal(run(&s, RSSF, b, n), CVQ_ERR);
	n = rss_cmd(b, CVQ_HASH_IPV4, 8, NULL, 0, 0, 40); /* max_tx_vq 0 */
	assert_int_equal(run(&s, RSSF, b, n), CVQ_ERR);
	n = rss_cmd(b, CVQ_HASH_IPV4, 8, NULL, 0, 5, 40); /* max_tx_vq 5 of 4 */
	assert_int_equal(run(&s, RSSF, b, n), CVQ_ERR);
	n = rss_cmd(b, 1u << 3, 8, NULL, 0, 2, 40); /* IPv6: not supported */
	assert_int_equal(run(&s, RSSF, b, n), CVQ_ERR);
	n = rss_cmd(b, CVQ_HASH_IPV4, 8, NULL, 0, 2, 0); /* hashing without a key */
	assert_int_equal(run(&s, RSSF, b, n), CVQ_ERR);
	n = rss_cmd(b, CVQ_HASH_IPV4, 8, NULL, 0, 2, 40);
	b[2 + 8 + 16 + 2] = 41; /* key length beyond the device's */
	assert_int_equal(run(&s, RSSF, b, n + 1), CVQ_ERR);
	uint8_t h[2 + 13 + 40] = { CVQ_MQ, CVQ_MQ_HASH_CONFIG, 1 };
	h[14] = 40;
	assert_int_equal(run(&s, RSSF, h, sizeof(h) - 1), CVQ_ERR);
	assert_int_equal(run(&s, RSSF & ~(1ull << VNET_F_HASH_REPORT), h, sizeof(h)), CVQ_ERR);
	uint8_t other[] = { CVQ_MQ, 3, 0, 0 }; /* no such command */
	assert_int_equal(run(&s, RSSF, other, sizeof(other)), CVQ_ERR);
	assert_int_equal(s.rss.mode, CVQ_RSS_OFF);
	assert_int_equal(s.pairs, 1);
}

/* What a guest is offered out of a device's features: nothing tern's
 * shadow cannot parse or replay, and everything it can. */
static void test_guest_features(void **state)
{
	static const unsigned hidden[] = { 33 /* ACCESS_PLATFORM */, 34 /* RING_PACKED */, 35 /* IN_ORDER */,
					   38 /* NOTIFICATION_DATA */, 40 /* RING_RESET */, 50 /* DEVICE_STATS */,
					   52 /* VQ_NOTF_COAL */, 53 /* NOTF_COAL */, 59 /* GUEST_HDRLEN */,
					   4, 6, 24, 30, 41, 49 };
	static const unsigned kept[] = { 0, 1, 2, 3, 5, 7, 10, 14, 15, 16, 17, 22, 23, 28, 29, 32, 54, 55, 57, 60 };

	(void)state;
	for (unsigned i = 0; i < sizeof(hidden) / sizeof(hidden[0]); i++)
		assert_int_equal(cvq_guest_features(1ull << hidden[i]), 0);
	for (unsigned i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
		assert_int_equal(cvq_guest_features(1ull << kept[i]), 1ull << kept[i]);
	/* the GUEST_OFFLOADS_SET defaults follow: USO is among them */
	struct net_ctrl_state st;
	const uint8_t own[6] = { 0x52, 0x54, 0, 0, 0, 1 };
	cvq_state_reset(&st, own, ~0ull);
	assert_int_equal(st.offloads, CVQ_GUEST_OFFLOADS_MASK);
	assert_true(st.offloads & (1ull << VNET_F_GUEST_USO4));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_each_class),
		cmocka_unit_test(test_mac_tables),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_toeplitz),
		cmocka_unit_test(test_rss),
		cmocka_unit_test(test_rss_hostile),
		cmocka_unit_test(test_guest_features),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
