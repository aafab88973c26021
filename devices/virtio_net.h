/* SPDX-License-Identifier: MIT */
/*
 * devices/virtio_net.h - virtio-net over vDPA: the guest sees a virtio-pci
 * network device; its data path (and its control queue) belong to a vDPA
 * backend, wired to the guest with ioeventfds and irqfds. tern programs the
 * backend when the driver sets FEATURES_OK and DRIVER_OK, and maps all guest
 * RAM into the backend's ASID 0 at IOVA = GPA once, for the device's life.
 */
#ifndef TERN_DEVICES_VIRTIO_NET_H
#define TERN_DEVICES_VIRTIO_NET_H

#include "devices/net_announce.h"
#include "devices/virtio_pci.h"
#include "vdpa/cvq_shadow.h"
#include "vdpa/shadow.h"
#include "vdpa/vdpa.h"

#define NET_MAX_DEVS 4

/* svq=: when the data queues go through shadow virtqueues. */
enum net_svq {
	NET_SVQ_AUTO, /* while a migration tracks dirty pages (the default) */
	NET_SVQ_ON,   /* always */
	NET_SVQ_OFF,  /* never: the device is frozen while pages are tracked */
};

/* What --net asks for. */
struct net_config {
	char socket[108], peer[108]; /* UNIX socket paths, or "" */
	char tap[16];                /* TAP interface name, or "" */
	bool kernel;                 /* vhost-vdpa,dev=: the kernel's device */
	char dev[108];               /* its path */
	uint8_t mac[6];
	bool mac_set;
	unsigned queues;        /* queue pairs */
	uint64_t features_off;  /* virtio feature bits to withhold */
	uint64_t backend_off;   /* backend feature bits to withhold */
	bool cost_mlx5;         /* cost=mlx5: the device-cost model */
	bool hash_report;       /* hash-report=on: vdpa-sim offers HASH_REPORT */
	bool strict;            /* strict=on: vdpa-sim as strict as hardware (sim_net.h) */
	enum net_svq svq;
	unsigned strategy;      /* switch=1..4, or 0: the best the device allows */
};

struct net_dev {
	struct virtio_pci vp;
	struct vdpa_dev *vdpa;
	uint64_t backend_features; /* negotiated with the backend */
	uint64_t offered;          /* features offered to the guest */
	struct net_announce announce; /* S_ANNOUNCE, and the CVQ watch behind it */
	struct shadow sh;          /* bring-up, passthrough <-> SVQ (vdpa/shadow.h) */
	bool sh_live;
	enum net_svq svq;
	bool frozen_for_log;       /* svq=off during tracking: suspended */
	bool unlogged;             /* tracking, but the device ran without the log
				    * (atomic: the migration thread reads it) */
	bool tracking;             /* a migration's log is attached (svq=auto|on) */
	bool lost;                 /* the device or a shadowed queue is lost: NEEDS_RESET (atomic) */
	bool fail_each;            /* TERN_SWITCH_FAIL=DIR:each */
	bool is_sim;               /* tern's software device (not /dev/vhost-vdpa-N) */
	struct cvq_shadow cvq;     /* the shadow control queue, when the driver has one */
	bool cvq_live;
	unsigned cvq_logged;
	unsigned replayed;         /* commands the last replay sent */
	uint64_t replay_ns;
	/* loaded by net_dev_load(), not yet started (net_dev_start()) */
	bool staged, staged_ctrl;
	uint16_t staged_bases[VPCI_MAX_QUEUES];
	struct net_ctrl_state staged_state;
};

/* Snapshot state of one device (fixed layout, stored by migrate/). */
struct net_dev_state {
	struct virtio_pci_state vp;
	uint16_t last_avail[VPCI_MAX_QUEUES]; /* next avail entry per queue */
	uint32_t rsvd;
};
_Static_assert(sizeof(struct net_dev_state) == sizeof(struct virtio_pci_state) + 2 * VPCI_MAX_QUEUES + 4,
	       "net_dev_state layout");

/* Freezes the backend's data path (vDPA SUSPEND) and pauses the control
 * queue tern answers, so guest memory and ring indices hold still;
 * -EOPNOTSUPP if the backend cannot suspend. A device that tracking froze
 * (svq=off) only has its control queue paused, and net_dev_resume() leaves
 * it frozen for net_dev_track_end(). */
int net_dev_suspend(struct net_dev *n, struct err *e);
void net_dev_resume(struct net_dev *n);
/* Dirty tracking (a migration) starts: from here the device's writes must
 * reach log. svq=auto|on: its data queues go through shadow virtqueues
 * that mark them; svq=off: it is frozen until net_dev_track_end(), and
 * only the control queue's answers (tern's writes) are marked. On
 * failure the device is as it was. */
int net_dev_track_begin(struct net_dev *n, struct dirty_log *log, struct err *e);
/* Tracking ended without a hand-over: svq=auto goes back to passthrough,
 * svq=off thaws. */
void net_dev_track_end(struct net_dev *n);
/* Whether the device wrote guest memory behind the log since tracking
 * began: its driver restarted it (svq=off: it runs again; svq=auto|on: the
 * switch into shadow virtqueues failed). The migration must then fail. */
bool net_dev_unlogged(const struct net_dev *n);
/* Reads the state of a suspended device. */
int net_dev_save(struct net_dev *n, struct net_dev_state *st, struct err *e);
/* Loads state into a new device before the VM runs: the transport's
 * state and the features are set, the rings and the control-queue state
 * ctrl (or NULL) with its RSS part rss (or NULL: off) checked and kept;
 * nothing starts, so nothing is sent. */
int net_dev_load(struct net_dev *n, const struct net_dev_state *st, const struct cvq_record *ctrl,
		 const struct cvq_rss *rss, struct err *e);
/* Starts a loaded device where its driver left it (no-op if there is
 * nothing to start): the control-queue state is replayed before the data
 * queues are enabled, a NACK fails it; then the guest is asked to announce
 * itself (GUEST_ANNOUNCE) or tern sends a RARP: the VM moved. A migration's
 * destination calls it only after GO. */
int net_dev_start(struct net_dev *n, struct err *e);
/* The control-queue state to carry (1), or 0 when the driver has none;
 * rss->mode says whether there is RSS state to carry too. */
int net_dev_ctrl(struct net_dev *n, struct cvq_record *r, struct cvq_rss *rss);

/* A control-queue state as the control API shows it (GET /vm, docs/api.md). */
struct net_ctrl_info {
	bool valid;
	uint8_t mac[6];
	unsigned rx;               /* bit i: RX mode i on (PROMISC .. NOBCAST) */
	unsigned uni, multi;       /* MAC table entries */
	bool uni_overflow, multi_overflow;
	unsigned vlans;            /* VLAN ids in the filter */
	unsigned pairs;
	uint64_t offloads;
	unsigned rss_mode;         /* 0 off, 1 steering (RSS_CONFIG), 2 hash only */
	uint32_t hash_types;
	unsigned rss_unclassified, rss_table_len;
	uint16_t rss_table[128];
};

/* A network device's data path and control state, as GET /vm shows it. */
struct net_info {
	const char *mode;          /* "passthrough" or "svq" */
	const char *svq;           /* the svq= setting: "auto", "on", "off" */
	unsigned strategy;         /* of the last switch, 0 before one */
	uint64_t switches, rollbacks, recoveries;
	uint64_t blackout_us;      /* of the last switch */
	unsigned shadow_maps;      /* shadow-ring mappings in the device now */
	int64_t iotlb_entries;     /* the software device's mappings, -1 unknown */
	int64_t rx_frames, tx_frames; /* the software device's, -1 unknown */
	struct net_ctrl_info ctrl;  /* tern's record of what the guest set */
	struct net_ctrl_info device_ctrl; /* the software device's own state */
};

/* The device's data-path mode and switch statistics, for GET /vm. */
void net_dev_info(struct net_dev *n, struct net_info *out);

/* Parses "vhost-vdpa,dev=PATH,..." or "vdpa-sim,socket=A,peer=B,mac=..,queues=N,...". */
int net_config_parse(const char *spec, struct net_config *c, struct err *e);

#endif
