/* SPDX-License-Identifier: MIT */
/*
 * vdpa/cvq.h - virtio-net control-virtqueue commands (virtio 1.x §5.1.6.5,
 * docs/net.md "The control queue"): parsing and validation of one command
 * into a receive-filter/queue state, and the filter that state implies.
 *
 * The command bytes are copied out of guest memory by the caller before
 * cvq_apply() sees them (the guest cannot change them underneath).
 */
#ifndef TERN_VDPA_CVQ_H
#define TERN_VDPA_CVQ_H

#include "vdpa/virtio_bits.h"
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
#define CVQ_MQ_RSS_CONFIG 1
#define CVQ_MQ_HASH_CONFIG 2
#define CVQ_GUEST_OFFLOADS 5
#define CVQ_GUEST_OFFLOADS_SET 0

#define CVQ_OK 0
#define CVQ_ERR 1


/* The receive offloads GUEST_OFFLOADS_SET turns on and off, by feature
 * bit (virtio 1.2 5.1.6.5.6.1): GUEST_CSUM (1), GUEST_TSO4/6, GUEST_ECN,
 * GUEST_UFO (7-10), GUEST_USO4/6 (54, 55). A device starts with every one
 * of them that was negotiated on. */
#define CVQ_GUEST_OFFLOADS_MASK ((1ull << 1) | (0xfull << 7) | (3ull << 54))

#define CVQ_CMD_MAX 4096 /* longest command accepted (bounce buffer) */

/* RSS hash types (virtio 1.2 5.1.6.5.7.1); tern's devices hash IPv4 only */
#define CVQ_HASH_IPV4 (1u << 0)
#define CVQ_HASH_TCPV4 (1u << 1)
#define CVQ_HASH_UDPV4 (1u << 2)
#define CVQ_HASH_ALL 0x1ffu /* IPv4 .. UDP_EX: every type the spec defines */

#define CVQ_RSS_KEY_MAX 40    /* key bytes tern records (the spec's usual size) */
#define CVQ_RSS_TABLE_MAX 128 /* indirection entries tern records */

struct cvq_limits {
	unsigned mac_table_max; /* unicast + multicast entries the device keeps */
	uint16_t max_pairs;     /* max_virtqueue_pairs */
	/* from the config space with RSS or HASH_REPORT (0: none) */
	uint8_t rss_key_max;    /* rss_max_key_size */
	uint16_t rss_table_max; /* rss_max_indirection_table_length */
	uint32_t hash_types;    /* supported_hash_types */
};

enum { CVQ_RSS_OFF, CVQ_RSS_STEER, CVQ_RSS_HASH };

/* What RSS_CONFIG (mode STEER) or HASH_CONFIG (mode HASH) set last. The
 * layout is also the "rss" property of snapshots and streams
 * (docs/state-format.md), little endian; max_tx_vq is not kept: it set
 * the queue pairs, which net_ctrl_state holds. A change here needs a
 * version bump of the net@N node (devices/virtio_net_migrate.c). */
struct cvq_rss {
	uint8_t mode;          /* CVQ_RSS_* */
	uint8_t key_len;
	uint16_t table_len;    /* indirection entries, a power of two (STEER) */
	uint16_t unclassified; /* receive queue for what is not hashed (STEER) */
	uint16_t rsvd;
	uint32_t hash_types;
	uint16_t table[CVQ_RSS_TABLE_MAX];
	uint8_t key[CVQ_RSS_KEY_MAX];
};
_Static_assert(sizeof(struct cvq_rss) == 12 + 2 * CVQ_RSS_TABLE_MAX + CVQ_RSS_KEY_MAX, "cvq_rss layout");

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
	struct cvq_rss rss;
	unsigned announce_acks;
};

/* Device defaults after reset (promiscuous on until the driver says
 * otherwise, as QEMU's model assumes; one pair). */
void cvq_state_reset(struct net_ctrl_state *s, const uint8_t mac[6], uint64_t features);

/* The features a guest of a vDPA net device is offered out of the
 * device's: only those whose rings tern's shadow virtqueues can parse and
 * whose state it records and replays (as QEMU's SVQ keeps a list).
 * Packed rings, IN_ORDER, NOTIFICATION_DATA, RING_RESET, DEVICE_STATS,
 * the notification-coalescing commands and any bit tern does not know
 * stay hidden: a guest using them would defeat the switch or the replay. */
uint64_t cvq_guest_features(uint64_t device_features);

/* The control queue's index under negotiated features (virtio 1.2 5.1.2,
 * Linux's virtnet_probe): 2N when MQ or RSS is negotiated, N being
 * max_virtqueue_pairs, else 2. */
unsigned cvq_queue_index(uint64_t features, uint16_t max_pairs);
/* The queue pairs the device may use: max_virtqueue_pairs with MQ or RSS,
 * else one. */
uint16_t cvq_pairs_max(uint64_t features, uint16_t max_pairs);
/* Applies one command (hdr: class, cmd; then payload). Returns CVQ_OK or
 * CVQ_ERR; s changes only on CVQ_OK. */
uint8_t cvq_apply(struct net_ctrl_state *s, const struct cvq_limits *lim, uint64_t features, const uint8_t *cmd,
		  size_t len);
/* Whether a frame with this destination MAC (and VLAN id, or -1 if
 * untagged) passes the receive filter. */
bool cvq_filter_pass(const struct net_ctrl_state *s, const uint8_t *dst, int vlan);
/* The receive queue RSS steering picks for a frame (from its Ethernet
 * header on), or -1 when steering is off and the device chooses. */
int cvq_rss_queue(const struct net_ctrl_state *s, const uint8_t *f, size_t len);
/* Hash reports (virtio_net_hdr_v1_hash.hash_report; IPv4 kinds only). */
#define CVQ_REPORT_NONE 0
#define CVQ_REPORT_IPV4 1
#define CVQ_REPORT_TCPV4 2
#define CVQ_REPORT_UDPV4 3
/* The hash of a frame under the RSS or hash configuration (steering or
 * hash mode): its report type and, unless NONE, *hash (Toeplitz over the
 * IPv4 addresses, and the ports for the TCP/UDP types configured). */
unsigned cvq_rss_hash(const struct net_ctrl_state *s, const uint8_t *f, size_t len, uint32_t *hash);
/* The Toeplitz hash of in[0..n) under key (virtio 1.2 5.1.6.4.3.1; a
 * key shorter than n + 4 bytes is padded with zeros). */
uint32_t cvq_toeplitz(const uint8_t *key, size_t key_len, const uint8_t *in, size_t n);

#endif
