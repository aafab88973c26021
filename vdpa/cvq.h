/* SPDX-License-Identifier: MIT */
/*
 * vdpa/cvq.h - virtio-net control-virtqueue commands (virtio 1.x §5.1.6.5,
 * shared/docs/vdpa-reference.md §5): parsing and validation of one command
 * into a receive-filter/queue state, and the filter that state implies.
 *
 * The command bytes are copied out of guest memory by the caller before
 * cvq_apply() sees them (the guest cannot change them underneath).
 */
#ifndef TERN_VDPA_CVQ_H
#define TERN_VDPA_CVQ_H

#include "vmm/util.h"

/* classes and commands */
#define CVQ_RX 0
#define CVQ_RX_PROMISC 0
#define CVQ_RX_ALLMULTI 1
#define CVQ_RX_ALLUNI 2
#define CVQ_RX_NOMULTI 3
#define CVQ_RX_NOUNI 4
#define CVQ_RX_NOBCAST 5
#define CVQ_MAC 1
#define CVQ_MAC_TABLE_SET 0
#define CVQ_MAC_ADDR_SET 1
#define CVQ_VLAN 2
#define CVQ_VLAN_ADD 0
#define CVQ_VLAN_DEL 1
#define CVQ_ANNOUNCE 3
#define CVQ_ANNOUNCE_ACK 0
#define CVQ_MQ 4
#define CVQ_MQ_VQ_PAIRS_SET 0
#define CVQ_GUEST_OFFLOADS 5
#define CVQ_GUEST_OFFLOADS_SET 0

#define CVQ_OK 0
#define CVQ_ERR 1

/* virtio-net feature bits the commands depend on */
#define VNET_F_CTRL_GUEST_OFFLOADS 2
#define VNET_F_MAC 5
#define VNET_F_STATUS 16
#define VNET_F_CTRL_VQ 17
#define VNET_F_CTRL_RX 18
#define VNET_F_CTRL_VLAN 19
#define VNET_F_CTRL_RX_EXTRA 20
#define VNET_F_GUEST_ANNOUNCE 21
#define VNET_F_MQ 22
#define VNET_F_CTRL_MAC_ADDR 23
#define VIRTIO_F_VERSION_1 32
#define VIRTIO_F_ACCESS_PLATFORM 33

#define CVQ_CMD_MAX 4096 /* longest command accepted (bounce buffer) */

struct cvq_limits {
	unsigned mac_table_max; /* unicast + multicast entries the device keeps */
	uint16_t max_pairs;     /* max_virtqueue_pairs */
};

struct net_ctrl_state {
	uint8_t mac[6];         /* the default filter MAC */
	bool promisc, allmulti, alluni, nomulti, nouni, nobcast;
	unsigned uni_count, multi_count;
	bool uni_overflow, multi_overflow; /* table larger than the device keeps */
	uint8_t uni[64][6], multi[64][6];
	uint64_t vlans[4096 / 64];  /* bitmap of VLAN ids */
	bool vlan_filtering;        /* CTRL_VLAN negotiated: filter by the table */
	uint16_t pairs;             /* active queue pairs */
	uint64_t offloads;          /* guest offloads */
	unsigned announce_acks;
};

/* Device defaults after reset (promiscuous on until the driver says
 * otherwise, as QEMU's model assumes; one pair). */
void cvq_state_reset(struct net_ctrl_state *s, const uint8_t mac[6], uint64_t features);
/* Applies one command (hdr: class, cmd; then payload). Returns CVQ_OK or
 * CVQ_ERR; s changes only on CVQ_OK. */
uint8_t cvq_apply(struct net_ctrl_state *s, const struct cvq_limits *lim, uint64_t features, const uint8_t *cmd,
		  size_t len);
/* Whether a frame with this destination MAC (and VLAN id, or -1 if
 * untagged) passes the receive filter. */
bool cvq_filter_pass(const struct net_ctrl_state *s, const uint8_t *dst, int vlan);

#endif
