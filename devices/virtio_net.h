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
#include "devices/net_config.h"
#include "devices/virtio_pci.h"
#include "vdpa/cvq_shadow.h"
#include "vdpa/shadow.h"
#include "vdpa/vdpa.h"
#include "vmm/test_faults.h"

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
	/* the test interface's switch fault (vmm/test_faults.h): the device
	 * wrapped for the shadow side (vdpa/fault_vdpa.h), or NULL */
	const struct test_faults *faults;
	struct vdpa_dev *faulty;
	int fault_at;              /* the call the next armed switch fails */
	bool fault_spent;          /* each: every call has failed once */
	bool is_sim;               /* tern's software device (not /dev/vhost-vdpa-N) */
	struct cvq_shadow cvq;     /* the shadow control queue, when the driver has one */
	bool cvq_live;
	unsigned cvq_logged;
	unsigned replayed;         /* commands the last replay sent */
	uint64_t replay_ns;
	/* loaded by the state load, not yet started (virtio_net_migrate.c) */
	bool staged, staged_ctrl;
	uint16_t staged_bases[VPCI_MAX_QUEUES];
	struct net_ctrl_state staged_state;
};

/* The regs of one device's "net@N" node in the state tree
 * (virtio_net_migrate.c): a change here needs a version bump. */
struct net_dev_state {
	struct virtio_pci_state vp;
	uint16_t last_avail[VPCI_MAX_QUEUES]; /* next avail entry per queue */
	uint32_t rsvd;
};
_Static_assert(sizeof(struct net_dev_state) == sizeof(struct virtio_pci_state) + 2 * VPCI_MAX_QUEUES + 4,
	       "net_dev_state layout");

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

#endif
