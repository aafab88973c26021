/* SPDX-License-Identifier: MIT */
/*
 * vdpa/sim_net_priv.h - the software vDPA net device's insides, shared by
 * its data path (sim_net.c: the device thread) and its control path
 * (sim_net_ctl.c: the vdpa_ops). Nothing outside vdpa/sim_net*.c includes it.
 *
 * Locking: one mutex covers all device state; the data thread holds it
 * while it processes a round of queue work and never while it sleeps in
 * poll(). Control calls that change what the data thread waits on call
 * sim_wake().
 */
#ifndef TERN_VDPA_SIM_NET_PRIV_H
#define TERN_VDPA_SIM_NET_PRIV_H

#include <pthread.h>

#include "vdpa/cvq.h"
#include "vdpa/iotlb.h"
#include "vdpa/sim_net.h"
#include "vdpa/vring.h"
#include "vdpa/wire.h"

#define VNET_HDR_LEN 12      /* struct virtio_net_hdr_v1 */
#define VNET_HDR_HASH_LEN 20 /* struct virtio_net_hdr_v1_hash (HASH_REPORT) */
#define NR_GROUPS 3 /* data, CVQ, data descriptor rings (DESC_ASID) */
#define DESC_GROUP 2
#define NR_AS 2
#define MAX_VQS (2 * SIM_NET_MAX_PAIRS + 1)
#define QUEUE_MAX 1024
#define BATCH 64 /* chains per queue per round, for fairness */

struct sim_vq {
	struct vring_dev ring;
	bool ready;     /* SET_VRING_ENABLE */
	bool attached;  /* rings resolved through the IOTLB */
	bool starved;   /* strict: found empty (or reset), waits for a kick */
	int kick_fd, call_fd;
};

struct sim_net {
	struct vdpa_dev vdpa;
	struct sim_net_config cfg;
	pthread_mutex_t lock;
	pthread_t thread;
	bool thread_started, stop;
	int ctl_fd;
	uint64_t dev_features, features, backend_offered, backend;
	uint8_t status;
	bool suspended;
	/* an IOTLB batch is open, for this ASID (vhost_vdpa_process_iotlb_msg) */
	bool in_batch;
	unsigned batch_asid;
	/* mac[6], status, max_virtqueue_pairs, mtu, speed, duplex,
	 * rss_max_key_size, rss_max_indirection_table_length,
	 * supported_hash_types (virtio 1.2 5.1.4; little endian) */
	uint8_t config[24];
	unsigned nvqs;
	struct sim_vq vq[MAX_VQS];
	struct iotlb tlb[NR_AS];
	unsigned group_asid[NR_GROUPS];
	struct net_ctrl_state ctrl;
	struct cvq_limits lim;
	struct wire wire;
	int config_call_fd;
	/* A frame from the wire waiting for an RX buffer, and one for the wire
	 * waiting for the peer to drain: back-pressure, never loss. */
	size_t rx_len, tx_len;
	bool rx_held, tx_held;
	uint8_t rx_frame[WIRE_MAX_FRAME];
	uint8_t tx_frame[WIRE_MAX_FRAME];
	struct vring_chain chain;
	struct sim_net_stats stats;
	uint64_t nack_at;  /* config nack_at: the K-th control command fails */
};

static inline struct sim_net *to_sim(struct vdpa_dev *d)
{
	return container_of(d, struct sim_net, vdpa);
}

static inline bool neg(const struct sim_net *s, unsigned bit)
{
	return s->features & (1ull << bit);
}

/* The header before each frame, both ways (Linux sizes both alike). */
static inline unsigned hdr_len(const struct sim_net *s)
{
	return neg(s, VNET_F_HASH_REPORT) ? VNET_HDR_HASH_LEN : VNET_HDR_LEN;
}

static inline unsigned cvq_index(const struct sim_net *s)
{
	return cvq_queue_index(s->features, s->cfg.max_pairs);
}

static inline bool has_cvq(const struct sim_net *s)
{
	return s->dev_features & (1ull << VNET_F_CTRL_VQ);
}

static inline unsigned vq_group(const struct sim_net *s, unsigned idx)
{
	return has_cvq(s) && idx == cvq_index(s) ? 1 : 0;
}

static inline const struct iotlb *vq_tlb(const struct sim_net *s, unsigned idx)
{
	return &s->tlb[s->group_asid[vq_group(s, idx)]];
}

/* With DESC_ASID the data queues' rings (not their buffers) belong to a
 * group of their own, so they can move to another ASID on their own. */
static inline unsigned vq_desc_group(const struct sim_net *s, unsigned idx)
{
	bool desc_asid = s->backend & (1ull << VDPA_BF_DESC_ASID);
	return desc_asid && vq_group(s, idx) == 0 ? DESC_GROUP : vq_group(s, idx);
}

/* Data path (sim_net.c). */
void sim_wake(struct sim_net *s);
/* Lock held. Strict mode: kicks pending on every queue are dropped, as a
 * device that is suspended or reset does not see them. */
void sim_forget_kicks(struct sim_net *s);
void *sim_thread(void *arg);
/* Sleeps ns (called without the device lock) and accounts for it. */
void sim_cost_delay(struct sim_net *s, uint64_t ns);
/* ns_per_gib scaled to bytes, without overflow. */
uint64_t sim_per_gib(uint64_t ns_per_gib, uint64_t bytes);

#endif
