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
	/* offloads default to every negotiated guest offload: bits 1, 7-10 */
	s->offloads = features & ((1ull << 1) | (0xfull << 7));
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
	case CVQ_MQ: {
		if (!has(features, VNET_F_MQ) || cmd[1] != CVQ_MQ_VQ_PAIRS_SET || left != 2)
			return CVQ_ERR;
		uint16_t pairs = le16(p);
		if (!pairs || pairs > lim->max_pairs)
			return CVQ_ERR;
		s->pairs = pairs;
		return CVQ_OK;
	}
	case CVQ_GUEST_OFFLOADS: {
		if (!has(features, VNET_F_CTRL_GUEST_OFFLOADS) || cmd[1] != CVQ_GUEST_OFFLOADS_SET || left != 8)
			return CVQ_ERR;
		uint64_t off = le32(p) | ((uint64_t)le32(p + 4) << 32);
		if (off & ~features)
			return CVQ_ERR; /* only negotiated offloads can be enabled */
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
