/* SPDX-License-Identifier: MIT */
/*
 * vdpa/sim_net.h - tern's software vDPA virtio-net device. It behaves like a
 * vDPA NIC: it has its own thread, touches driver memory only through its
 * per-ASID IOTLBs, and answers the vdpa_ops contract of vdpa/vdpa.h. Its
 * port is a wire (TAP or UNIX datagram socket).
 *
 * Queues: rx0=0, tx0=1, ..., rxN-1, txN-1, then the CVQ (when offered).
 * Groups: data queues are group 0, the CVQ group 1; 2 ASIDs.
 * A driver that breaks the ring rules gets NEEDS_RESET and a config
 * interrupt; tern keeps running.
 */
#ifndef TERN_VDPA_SIM_NET_H
#define TERN_VDPA_SIM_NET_H

#include "vdpa/vdpa.h"

struct sandbox;

#define SIM_NET_MAX_PAIRS 16

/*
 * Device-cost model: real delays on the control path, so switch and
 * migration benchmarks see what a hardware vDPA NIC costs. All zero means
 * free. sim_net_cost_mlx5() gives defaults calibrated to published mlx5
 * figures (docs/net.md lists the sources).
 */
struct sim_net_cost {
	uint64_t pin_ns_per_gib;   /* mapping guest memory (pin + IOMMU/MKEY) */
	uint64_t unpin_ns_per_gib; /* unmapping it */
	uint64_t map_entry_ns;     /* per IOTLB update/invalidate message */
	uint64_t reset_ns;         /* set_status(0) */
	uint64_t vq_setup_ns;      /* per queue enabled at DRIVER_OK */
	uint64_t suspend_ns, resume_ns; /* per device */
};

void sim_net_cost_mlx5(struct sim_net_cost *c);

struct sim_net_config {
	const struct sandbox *sandbox; /* the device thread's filter (NULL: none) */
	uint8_t mac[6];
	uint16_t max_pairs;        /* 1..SIM_NET_MAX_PAIRS */
	uint16_t mtu;
	uint64_t features_off;     /* virtio feature bits not to offer */
	uint64_t backend_off;      /* backend feature bits not to offer */
	unsigned mac_table_max;    /* MAC filter entries the device keeps */
	bool hash_report;          /* offer VIRTIO_NET_F_HASH_REPORT (with a CVQ) */
	/* As strict as a hardware NIC may be: a queue found empty is served
	 * again only after a kick (after the avail_event it published, with
	 * EVENT_IDX), kicks that arrive while the device is suspended, reset
	 * or not yet running are forgotten, and a reset queue waits for its
	 * first kick. Off, the device looks at every queue on each round. */
	bool strict;
	const char *socket_path;   /* wire: UNIX datagram socket ... */
	const char *peer_path;     /* ... joined to this peer */
	const char *tap;           /* or a TAP interface */
	struct sim_net_cost cost;
	/* for tests (the test interface's cvq-nack): the nack_at-th control
	 * command (from 1) is refused, unapplied; 0: none */
	uint64_t nack_at;
};

/* Statistics, readable at any time (approximate while running). */
struct sim_net_stats {
	uint64_t tx_frames, rx_frames, rx_filtered, rx_too_big, cvq_cmds, ring_errors;
	uint64_t cost_ns; /* delay the cost model has applied so far */
	uint64_t last_used_ns, max_gap_ns; /* data buffers used: the last, the longest pause */
	unsigned iotlb_entries;            /* mappings, all ASIDs (at the time of reading) */
};

struct vdpa_dev *sim_net_create(const struct sim_net_config *cfg, struct err *e);
void sim_net_get_stats(struct vdpa_dev *d, struct sim_net_stats *s);
struct net_ctrl_state;
/* The device's own control state (what its control queue accepted), and
 * whether it has one (features negotiated with a control queue). */
bool sim_net_get_ctrl(struct vdpa_dev *d, struct net_ctrl_state *out);
/* Changes the cost model (benchmarks set up guest memory for free first). */
void sim_net_set_cost(struct vdpa_dev *d, const struct sim_net_cost *c);
/* Starts a new measurement of the longest pause between used buffers. */
void sim_net_clear_gap(struct vdpa_dev *d);
/* Puts a frame on the device's wire as if it came from the host side of
 * the NIC (no queue involved): how tern announces a guest that cannot
 * announce itself. 0, or -errno (-EAGAIN: the peer is not there). */
int sim_net_wire_send(struct vdpa_dev *d, const void *frame, size_t len);

#endif
