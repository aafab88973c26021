/* SPDX-License-Identifier: MIT */
#include "vdpa/cvq.h"

#include <string.h>

#define TABLE_MAX 64 /* entries per table that struct net_ctrl_state can hold */

static bool has(uint64_t features, unsigned bit)
{
	return features & (1ull << bit);
}

void cvq_state_reset(struct net_ctrl_state *s, const uint8_t mac[6], uint64_t features)
{
	memset(s, 0, sizeof(*s));
	memcpy(s->mac, mac, 6);
	s->promisc = true;
	s->pairs = 1;
	s->vlan_filtering = has(features, VNET_F_CTRL_VLAN);
	s->offloads = features & CVQ_GUEST_OFFLOADS_MASK;
}

/* by bit: transport ANY_LAYOUT (27), INDIRECT_DESC (28), EVENT_IDX (29),
 * VERSION_1 (32), ORDER_PLATFORM (36, only ever makes the driver's
 * barriers stronger); net CSUM .. CTRL_MAC_ADDR without the legacy GSO
 * bits (0-3, 5, 7-23), GUEST_USO4/6 and HOST_USO (54-56), HASH_REPORT
 * (57), RSS (60), RSC_EXT (61), STANDBY (62), SPEED_DUPLEX (63) */
#define SHADOWABLE_FEATURES                                                                                 \
	((0xfull << 0) | (1ull << 5) | (0x1ffffull << 7) | (7ull << 27) | (1ull << 32) | (1ull << 36) |     \
	 (7ull << 54) | (1ull << 57) | (0xfull << 60))

uint64_t cvq_guest_features(uint64_t device_features)
{
	return device_features & SHADOWABLE_FEATURES;
}

uint16_t cvq_pairs_max(uint64_t features, uint16_t max_pairs)
{
	bool n = has(features, VNET_F_MQ) || has(features, VNET_F_RSS);

	return n && max_pairs ? max_pairs : 1;
}

unsigned cvq_queue_index(uint64_t features, uint16_t max_pairs)
{
	return 2u * cvq_pairs_max(features, max_pairs);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

/* Parses one MAC table at *p; checks it fits in what remains. */
static bool parse_table(const uint8_t **p, size_t *left, uint32_t *n, const uint8_t **macs)
{
	if (*left < 4)
		return false;
	*n = le32(*p);
	if (*n > (*left - 4) / 6)
		return false;
	*macs = *p + 4;
	*p += 4 + (size_t)*n * 6;
	*left -= 4 + (size_t)*n * 6;
	return true;
}

static uint8_t mac_table_set(struct net_ctrl_state *s, const struct cvq_limits *lim, const uint8_t *p, size_t left)
{
	uint32_t nu, nm;
	const uint8_t *u, *m;
	unsigned max = lim->mac_table_max < TABLE_MAX ? lim->mac_table_max : TABLE_MAX;

	if (!parse_table(&p, &left, &nu, &u) || !parse_table(&p, &left, &nm, &m) || left)
		return CVQ_ERR;
	for (uint32_t i = 0; i < nu; i++)
		if (u[6 * i] & 1)
			return CVQ_ERR; /* a multicast address in the unicast table */
	for (uint32_t i = 0; i < nm; i++)
		if (!(m[6 * i] & 1))
			return CVQ_ERR;
	/* Entries beyond what the device keeps turn into promiscuous /
	 * all-multicast for that class, as the virtio spec lets devices do. */
	s->uni_overflow = nu > max;
	s->multi_overflow = nm > max;
	s->uni_count = s->uni_overflow ? 0 : nu;
	s->multi_count = s->multi_overflow ? 0 : nm;
	memcpy(s->uni, u, (size_t)s->uni_count * 6);
	memcpy(s->multi, m, (size_t)s->multi_count * 6);
	return CVQ_OK;
}

/* The hash types and key both commands carry: supported types only, a
 * key the device can take, and a key whenever something is hashed. */
static bool hash_ok(const struct cvq_limits *lim, uint32_t types, uint8_t key_len)
{
	if (types & ~lim->hash_types)
		return false;
	if (key_len > lim->rss_key_max || key_len > CVQ_RSS_KEY_MAX)
		return false;
	return key_len || !types;
}

/* RSS_CONFIG: hash_types le32, indirection_table_mask le16,
 * unclassified_queue le16, indirection_table le16[mask + 1], max_tx_vq
 * le16, hash_key_length u8, hash_key_data[length]. Bytes after the key
 * are ignored, as QEMU's model does: Linux 6.12's driver sends one (it
 * sizes its trailer with struct_size() over a padded struct). It also
 * sets the queue pairs (max_tx_vq), as QEMU's model and Linux's driver
 * (which then skips VQ_PAIRS_SET) take it. */
static uint8_t rss_config(struct net_ctrl_state *s, const struct cvq_limits *lim, const uint8_t *p, size_t left)
{
	struct cvq_rss r = { .mode = CVQ_RSS_STEER };

	if (left < 8)
		return CVQ_ERR;
	r.hash_types = le32(p);
	uint32_t n = le16(p + 4) + 1u;
	r.unclassified = le16(p + 6);
	if ((n & (n - 1)) || n > lim->rss_table_max || n > CVQ_RSS_TABLE_MAX || left < 8 + 2 * n + 3)
		return CVQ_ERR;
	const uint8_t *t = p + 8, *q = t + 2 * n;
	uint16_t max_tx = le16(q);
	r.key_len = q[2];
	if (left < 8 + 2 * n + 3 + r.key_len || !hash_ok(lim, r.hash_types, r.key_len))
		return CVQ_ERR;
	if (!max_tx || max_tx > lim->max_pairs || r.unclassified >= lim->max_pairs)
		return CVQ_ERR;
	r.table_len = (uint16_t)n;
	for (uint32_t i = 0; i < n; i++) {
		r.table[i] = le16(t + 2 * i);
		if (r.table[i] >= lim->max_pairs)
			return CVQ_ERR; /* a receive queue the device does not have */
	}
	memcpy(r.key, q + 3, r.key_len);
	s->pairs = max_tx;
	/* nothing hashed and no key: RSS off (how QEMU's model reads it) */
	if (!r.hash_types && !r.key_len)
		memset(&r, 0, sizeof(r));
	s->rss = r;
	return CVQ_OK;
}

/* HASH_CONFIG: hash_types le32, reserved le16[4], hash_key_length u8,
 * hash_key_data[length] (bytes after it ignored, as for RSS_CONFIG). Hash
 * reporting only; steering goes off. */
static uint8_t hash_config(struct net_ctrl_state *s, const struct cvq_limits *lim, const uint8_t *p, size_t left)
{
	struct cvq_rss r = { .mode = CVQ_RSS_HASH };

	if (left < 13)
		return CVQ_ERR;
	r.hash_types = le32(p);
	r.key_len = p[12];
	if (left < 13u + r.key_len || !hash_ok(lim, r.hash_types, r.key_len))
		return CVQ_ERR;
	memcpy(r.key, p + 13, r.key_len);
	if (!r.hash_types && !r.key_len)
		memset(&r, 0, sizeof(r));
	s->rss = r;
	return CVQ_OK;
}

uint8_t cvq_apply(struct net_ctrl_state *s, const struct cvq_limits *lim, uint64_t features, const uint8_t *cmd,
		  size_t len)
{
	const uint8_t *p = cmd + 2;
	size_t left;

	if (len < 2 || len > CVQ_CMD_MAX || !has(features, VNET_F_CTRL_VQ))
		return CVQ_ERR;
	left = len - 2;
	switch (cmd[0]) {
	case CVQ_RX: {
		bool *flag[] = { &s->promisc, &s->allmulti, &s->alluni, &s->nomulti, &s->nouni, &s->nobcast };
		if (!has(features, VNET_F_CTRL_RX) || left != 1 || cmd[1] >= 6)
			return CVQ_ERR;
		if (cmd[1] >= CVQ_RX_ALLUNI && !has(features, VNET_F_CTRL_RX_EXTRA))
			return CVQ_ERR;
		if (p[0] > 1)
			return CVQ_ERR;
		*flag[cmd[1]] = p[0];
		return CVQ_OK;
	}
	case CVQ_MAC:
		if (cmd[1] == CVQ_MAC_TABLE_SET && has(features, VNET_F_CTRL_RX))
			return mac_table_set(s, lim, p, left);
		if (cmd[1] == CVQ_MAC_ADDR_SET && has(features, VNET_F_CTRL_MAC_ADDR) && left == 6 && !(p[0] & 1)) {
			memcpy(s->mac, p, 6);
			return CVQ_OK;
		}
		return CVQ_ERR;
	case CVQ_VLAN: {
		if (!has(features, VNET_F_CTRL_VLAN) || left != 2 || cmd[1] > CVQ_VLAN_DEL)
			return CVQ_ERR;
		uint16_t vid = le16(p);
		if (vid >= 4096)
			return CVQ_ERR;
		if (cmd[1] == CVQ_VLAN_ADD)
			s->vlans[vid / 64] |= 1ull << (vid % 64);
		else
			s->vlans[vid / 64] &= ~(1ull << (vid % 64));
		return CVQ_OK;
	}
	case CVQ_ANNOUNCE:
		if (!has(features, VNET_F_GUEST_ANNOUNCE) || cmd[1] != CVQ_ANNOUNCE_ACK || left)
			return CVQ_ERR;
		s->announce_acks++;
		return CVQ_OK;
	case CVQ_MQ:
		if (cmd[1] == CVQ_MQ_RSS_CONFIG && has(features, VNET_F_RSS))
			return rss_config(s, lim, p, left);
		if (cmd[1] == CVQ_MQ_HASH_CONFIG && has(features, VNET_F_HASH_REPORT))
			return hash_config(s, lim, p, left);
		if (has(features, VNET_F_MQ) && cmd[1] == CVQ_MQ_VQ_PAIRS_SET && left == 2) {
			uint16_t pairs = le16(p);
			if (!pairs || pairs > lim->max_pairs)
				return CVQ_ERR;
			s->pairs = pairs;
			return CVQ_OK;
		}
		return CVQ_ERR;
	case CVQ_GUEST_OFFLOADS: {
		if (!has(features, VNET_F_CTRL_GUEST_OFFLOADS) || cmd[1] != CVQ_GUEST_OFFLOADS_SET || left != 8)
			return CVQ_ERR;
		uint64_t off = le32(p) | ((uint64_t)le32(p + 4) << 32);
		if (off & ~(features & CVQ_GUEST_OFFLOADS_MASK))
			return CVQ_ERR; /* only negotiated receive offloads can be enabled */
		s->offloads = off;
		return CVQ_OK;
	}
	default:
		return CVQ_ERR;
	}
}

bool cvq_filter_pass(const struct net_ctrl_state *s, const uint8_t *dst, int vlan)
{
	static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

	/* promiscuous mode passes everything, VLAN filter included (as
	 * QEMU's virtio-net model does) */
	if (s->promisc)
		return true;
	if (vlan >= 0 && s->vlan_filtering && !(s->vlans[vlan / 64] & (1ull << (vlan % 64))))
		return false;
	if (!memcmp(dst, bcast, 6))
		return !s->nobcast;
	if (dst[0] & 1) {
		if (s->nomulti)
			return false;
		if (s->allmulti || s->multi_overflow)
			return true;
		for (unsigned i = 0; i < s->multi_count; i++)
			if (!memcmp(dst, s->multi[i], 6))
				return true;
		return false;
	}
	if (s->nouni)
		return false;
	if (s->alluni || s->uni_overflow || !memcmp(dst, s->mac, 6))
		return true;
	for (unsigned i = 0; i < s->uni_count; i++)
		if (!memcmp(dst, s->uni[i], 6))
			return true;
	return false;
}

uint32_t cvq_toeplitz(const uint8_t *key, size_t key_len, const uint8_t *in, size_t n)
{
	uint32_t h = 0, v = 0;
	size_t next = 4; /* the key byte that feeds v next */

	for (size_t i = 0; i < 4; i++)
		v = (v << 8) | (i < key_len ? key[i] : 0);
	/* v is the key's 32-bit window at the current input bit */
	for (size_t i = 0; i < n; i++, next++) {
		uint8_t k = next < key_len ? key[next] : 0;
		for (int b = 7; b >= 0; b--) {
			if (in[i] & (1u << b))
				h ^= v;
			v = (v << 1) | ((k >> b) & 1u);
		}
	}
	return h;
}

unsigned cvq_rss_hash(const struct net_ctrl_state *s, const uint8_t *f, size_t len, uint32_t *hash)
{
	const struct cvq_rss *r = &s->rss;
	unsigned report = CVQ_REPORT_NONE;
	size_t off = 14;
	uint8_t in[12];
	size_t n = 0;

	*hash = 0;
	if (r->mode == CVQ_RSS_OFF)
		return CVQ_REPORT_NONE;
	if (len >= 18 && f[12] == 0x81 && f[13] == 0x00)
		off += 4; /* one 802.1Q tag */
	/* IPv4 without options beyond the header length it states */
	if (len >= off + 20 && f[off - 2] == 0x08 && f[off - 1] == 0x00 && (f[off] >> 4) == 4) {
		const uint8_t *ip = f + off;
		size_t ihl = (size_t)(ip[0] & 15) * 4;
		bool frag = ((ip[6] & 0x3f) | ip[7]) != 0; /* MF or an offset */
		uint32_t l4 = ip[9] == 6 ? CVQ_HASH_TCPV4 : ip[9] == 17 ? CVQ_HASH_UDPV4 : 0;
		if (ihl >= 20 && len >= off + ihl) {
			memcpy(in, ip + 12, 8); /* source, destination */
			if (l4 && (r->hash_types & l4) && !frag && len >= off + ihl + 4) {
				memcpy(in + 8, ip + ihl, 4); /* source, destination port */
				n = 12;
				report = l4 == CVQ_HASH_TCPV4 ? CVQ_REPORT_TCPV4 : CVQ_REPORT_UDPV4;
			} else if (r->hash_types & CVQ_HASH_IPV4) {
				n = 8;
				report = CVQ_REPORT_IPV4;
			}
		}
	}
	if (n)
		*hash = cvq_toeplitz(r->key, r->key_len, in, n);
	return report;
}

int cvq_rss_queue(const struct net_ctrl_state *s, const uint8_t *f, size_t len)
{
	const struct cvq_rss *r = &s->rss;
	uint32_t h;

	if (r->mode != CVQ_RSS_STEER)
		return -1;
	if (cvq_rss_hash(s, f, len, &h) == CVQ_REPORT_NONE)
		return r->unclassified;
	return r->table[h & (uint32_t)(r->table_len - 1)];
}
