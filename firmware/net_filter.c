/* SPDX-License-Identifier: MIT */
/*
 * firmware/net_filter.c - test=net-filter: does the device's receive filter
 * do what the control queue told it? The guest sets filters in phases; a
 * peer on the wire (tests/kvm/test_net_filter.py) sends, after each
 * "filter phase=K ready" report, FILTER_BURST frames to each of:
 *   own    the device MAC                 other  52:54:00:cc:cc:cc
 *   bcast  ff:ff:ff:ff:ff:ff              mcast  01:00:5e:00:00:fb
 *   v42    the device MAC, VLAN tag 42    v43    the device MAC, VLAN tag 43
 * then one untagged frame to the device MAC whose FRNT flags have END (bit 1).
 * The guest counts what arrived by class until END and reports
 * "filter phase=K own=.. other=.. bcast=.. mcast=.. v42=.. v43=..".
 *
 * Phases: 0 PROMISC off; 1 PROMISC on; 2 PROMISC off with the MAC table
 * {other} / {mcast}; 3 empty tables and VLAN 42 added (skipped without
 * CTRL_VLAN). Exit status 0 when every phase ended with END (the host side
 * judges the counts).
 *
 * With hold=N, the guest then sets a state with every filter item it can
 * (PROMISC and ALLMULTI off, the MAC tables {other} / {mcast}, VLAN 42, and
 * NOBCAST with CTRL_RX_EXTRA), reports "filter hold set", and runs N more
 * phases (4 .. 3+N) changing nothing: a migration or a restore between
 * them must leave every count as it was (issue 9's replay). With
 * bigtable=N (1..100) the unicast table holds N addresses 52:54:00:dd:00:i
 * instead of {other}: more than the device keeps (and, above 64, more than
 * tern records), so "other" frames still pass, by the device's overflow.
 *
 * With rss=1 the guest runs two queue pairs (VQ_PAIRS_SET 2), negotiates
 * RSS and, in the held state, steers everything to receive queue 1 (an
 * 8-entry table of 1s, unclassified queue 1: the test frames are not IP);
 * each report then adds "q0=.. q1=..", the frames each queue got. A
 * device that lost the pairs or the RSS state delivers on queue 0. It
 * negotiates GUEST_CSUM and turns that offload off (GUEST_OFFLOADS_SET 0),
 * which only the device's state shows. It also
 * sends one RSS_CONFIG that must be refused (3 entries), and after each
 * phase from 5 on an RX command that must be answered OK.
 *
 * With hash=1 the guest negotiates HASH_REPORT (20-byte headers) and, in
 * the held state, configures hash reporting only (MQ_HASH_CONFIG: IPv4,
 * TCPv4, UDPv4 with the same key; one with a 41-byte key must be
 * refused). IPv4 frames are counted in no class; each report adds
 * "ip4=N hashed=N hash=R:0xV": the IPv4 frames that arrived, the frames
 * whose header carried a hash report,
 * and the last one's type and value, for the host to check against its
 * own Toeplitz hash. A device that lost the configuration reports none.
 */
#include "lib.h"
#include "virtio_net.h"

#define ETHERTYPE_FRNT 0x88b5
#define FLAG_END 0x0002

static const uint8_t other_mac[6] = { 0x52, 0x54, 0x00, 0xcc, 0xcc, 0xcc };
static const uint8_t mcast_mac[6] = { 0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb };
static const uint8_t bcast_mac[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

enum { C_OWN, C_OTHER, C_BCAST, C_MCAST, C_V42, C_V43, C_NR };

/* Class of a frame, C_NR if unknown; *end set for the END marker. */
static int classify(const struct vnet *v, const uint8_t *p, uint32_t len, int *end)
{
	unsigned off = 12;
	int vid = -1;

	*end = 0;
	if (len < 14)
		return C_NR;
	if (p[12] == 0x81 && p[13] == 0x00) {
		if (len < 18)
			return C_NR;
		vid = ((p[14] << 8) | p[15]) & 0xfff;
		off = 16;
	}
	if (len >= off + 2 && p[off] == 0x08 && p[off + 1] == 0x00)
		return C_NR; /* IPv4: hash=1's probes, counted apart */
	if (len >= off + 2 + 8 && ((p[off] << 8) | p[off + 1]) == ETHERTYPE_FRNT &&
	    ((p[off + 2 + 6] | (p[off + 2 + 7] << 8)) & FLAG_END)) {
		*end = 1;
		return C_NR;
	}
	if (vid == 42)
		return C_V42;
	if (vid == 43)
		return C_V43;
	if (vid >= 0)
		return C_NR;
	if (!memcmp(p, v->mac, 6))
		return C_OWN;
	if (!memcmp(p, other_mac, 6))
		return C_OTHER;
	if (!memcmp(p, bcast_mac, 6))
		return C_BCAST;
	if (!memcmp(p, mcast_mac, 6))
		return C_MCAST;
	return C_NR;
}

static int run_phase(struct vnet *v, unsigned phase, unsigned timeout_s)
{
	unsigned count[C_NR] = { 0 }, perq[VNET_MAX_PAIRS] = { 0 }, hashed = 0, last_report = 0, ip4 = 0;
	uint32_t last_hash = 0;
	struct timeout t;
	int end = 0;

	report("filter phase=%u ready", phase);
	timeout_start(&t, timeout_s);
	while (!end && !timeout_expired(&t)) {
		uint8_t *p;
		uint32_t len;
		uint16_t id;
		/* END is the peer's last frame, but another queue's earlier
		 * frames may land after this pass looked at that queue: one
		 * more pass once END is seen */
		for (int pass = 0; pass < 1 + end; pass++) {
			for (unsigned q = 0; q < v->pairs; q++) {
				while (vnet_rx_poll(v, q, &p, &len, &id)) {
					int e = 0, c = classify(v, p, len, &e);
					uint32_t h;
					unsigned rep = vnet_rx_hash(v, p, &h);
					ip4 += len >= 14 && p[12] == 0x08 && p[13] == 0x00;
					if (rep) {
						hashed++;
						last_report = rep;
						last_hash = h;
					}
					if (c < C_NR)
						count[c]++;
					end |= e;
					perq[q] += c < C_NR || e;
					vnet_rx_release(v, q, id);
				}
				vnet_rx_kick(v, q);
			}
		}
	}
	char qs[96] = "";
	if (v->pairs > 1)
		snprintf(qs, sizeof(qs), " q0=%u q1=%u", perq[0], perq[1]);
	else if (v->hdr_len == VNET_HDR_HASH_LEN)
		snprintf(qs, sizeof(qs), " ip4=%u hashed=%u hash=%u:0x%x", ip4, hashed, last_report, last_hash);
	report("filter phase=%u own=%u other=%u bcast=%u mcast=%u v42=%u v43=%u%s%s", phase, count[C_OWN],
	       count[C_OTHER], count[C_BCAST], count[C_MCAST], count[C_V42], count[C_V43], qs, end ? "" : " timeout=1");
	return end ? 0 : -1;
}

static uint8_t big_uc[100][6];

static const uint8_t hash_key[41] = { 0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67,
				      0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb,
				      0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30,
				      0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa, 0x00 };

unsigned net_filter_run(struct vnet *v, unsigned timeout_s, unsigned hold, unsigned bigtable, unsigned rss,
			unsigned hash)
{
	int fail = 0;

	if (rss)
		v->want_extra = (1ull << VIRTIO_NET_F_RSS) | (1ull << VIRTIO_NET_F_GUEST_CSUM);
	if (hash)
		v->want_extra |= 1ull << VIRTIO_NET_F_HASH_REPORT;
	if (vnet_up(v, rss ? 2 : 1, 1) < 0 || vnet_set_pairs(v) < 0) {
		report("error bring-up: %s (status=0x%x)", v->error, vnet_status(v));
		return GUEST_EXIT_FAIL;
	}
	if (!(v->features & (1ull << VIRTIO_NET_F_CTRL_RX))) {
		report("error net-filter needs CTRL_RX");
		return GUEST_EXIT_FAIL;
	}
	fail |= vnet_ctrl_rx(v, VIRTIO_NET_CTRL_RX_PROMISC, 0) != VIRTIO_NET_OK;
	fail |= vnet_ctrl_rx(v, VIRTIO_NET_CTRL_RX_ALLMULTI, 0) != VIRTIO_NET_OK;
	fail |= run_phase(v, 0, timeout_s);
	fail |= vnet_ctrl_rx(v, VIRTIO_NET_CTRL_RX_PROMISC, 1) != VIRTIO_NET_OK;
	fail |= run_phase(v, 1, timeout_s);
	fail |= vnet_ctrl_rx(v, VIRTIO_NET_CTRL_RX_PROMISC, 0) != VIRTIO_NET_OK;
	fail |= vnet_ctrl_mac_table_set(v, &other_mac, 1, &mcast_mac, 1) != VIRTIO_NET_OK;
	fail |= run_phase(v, 2, timeout_s);
	if (v->features & (1ull << VIRTIO_NET_F_CTRL_VLAN)) {
		fail |= vnet_ctrl_mac_table_set(v, 0, 0, 0, 0) != VIRTIO_NET_OK;
		fail |= vnet_ctrl_vlan(v, VIRTIO_NET_CTRL_VLAN_ADD, 42) != VIRTIO_NET_OK;
		fail |= run_phase(v, 3, timeout_s);
	} else {
		report("filter phase=3 skipped (no CTRL_VLAN)");
	}
	if (hold && bigtable) {
		unsigned n = bigtable < 100 ? bigtable : 100;
		for (unsigned i = 0; i < n; i++) {
			static const uint8_t base[6] = { 0x52, 0x54, 0x00, 0xdd, 0x00, 0x00 };
			memcpy(big_uc[i], base, 6);
			big_uc[i][5] = (uint8_t)i;
		}
		fail |= vnet_ctrl_mac_table_set(v, (const uint8_t(*)[6])big_uc, n, &mcast_mac, 1) != VIRTIO_NET_OK;
	} else if (hold) {
		fail |= vnet_ctrl_mac_table_set(v, &other_mac, 1, &mcast_mac, 1) != VIRTIO_NET_OK;
	}
	if (hold && hash) {
		if (!(v->features & (1ull << VIRTIO_NET_F_HASH_REPORT))) {
			report("error hash=1 needs VIRTIO_NET_F_HASH_REPORT");
			fail = 1;
		} else {
			/* a key longer than the device's 40 bytes: refused */
			fail |= vnet_ctrl_hash(v, 7, hash_key, 41) != VIRTIO_NET_ERR;
			fail |= vnet_ctrl_hash(v, 7, hash_key, 40) != VIRTIO_NET_OK;
		}
	}
	if (hold && rss) {
		const uint8_t *key = hash_key; /* its first 40 bytes */
		static const uint16_t ones[8] = { 1, 1, 1, 1, 1, 1, 1, 1 };
		if (!(v->features & (1ull << VIRTIO_NET_F_RSS))) {
			report("error rss=1 needs VIRTIO_NET_F_RSS");
			fail = 1;
		} else {
			/* a table of 3 entries (not a power of two): refused */
			fail |= vnet_ctrl_rss(v, 7, ones, 3, 1, 2, key, 40) != VIRTIO_NET_ERR;
			fail |= vnet_ctrl_rss(v, 7, ones, 8, 1, 2, key, 40) != VIRTIO_NET_OK;
		}
		/* the checksum offload off: a state only the device shows */
		if (v->features & (1ull << VIRTIO_NET_F_CTRL_GUEST_OFFLOADS))
			fail |= vnet_ctrl_guest_offloads(v, 0) != VIRTIO_NET_OK;
	}
	if (hold) {
		if (v->features & (1ull << VIRTIO_NET_F_CTRL_RX_EXTRA))
			fail |= vnet_ctrl_rx(v, VIRTIO_NET_CTRL_RX_NOBCAST, 1) != VIRTIO_NET_OK;
		report("filter hold set fail=%d", fail);
	}
	for (unsigned k = 0; k < hold; k++) {
		/* with rss=1 the control queue must answer after each move
		 * too (where it resumes is the guest's index, not the
		 * device's: tern answered the refused command itself) */
		if (rss && k > 0 && vnet_ctrl_rx(v, VIRTIO_NET_CTRL_RX_NOBCAST, 1) != VIRTIO_NET_OK) {
			report("error control queue after phase %u: no OK", 3 + k);
			fail = 1;
		}
		fail |= run_phase(v, 4 + k, timeout_s);
	}
	return fail ? GUEST_EXIT_FAIL : GUEST_EXIT_PASS;
}
