/* SPDX-License-Identifier: MIT */
/*
 * vdpa/shadow.h - a vDPA device's two modes and the switch between them
 * (docs/switch.md).
 *
 * Passthrough: the device works on the guest's rings, kicked by the
 * guest's ioeventfds and calling its irqfds; tern is not on the path.
 * SVQ: the device works on tern's shadow rings (vdpa/svq.c) and eventfds,
 * and the relay thread (vdpa/relay.c) stands between it and the guest,
 * marking what the device writes in a dirty log.
 *
 * Guest RAM stays mapped at IOVA = GPA in ASID 0 for the device's whole
 * life (unless strategy 4, the reference behaviour, remaps it). The switch
 * picks the best strategy the negotiated backend features allow:
 *   1  SUSPEND + RESUME + DESC_ASID: shadow rings mapped in ASID 1 before
 *      the blackout; suspend, re-point the queues, move the descriptor
 *      group to ASID 1, resume.
 *   2  SUSPEND + RESUME: shadow rings in an IOVA hole above RAM in ASID 0,
 *      mapped before the blackout; suspend, re-point, resume.
 *   3  IOTLB_PERSIST, no RESUME: suspend if it can (else reset first and
 *      rewind to the guest's used index), reset, restart on the new rings;
 *      guest RAM stays mapped.
 *   4  anything: suspend if it can, unmap all of RAM, reset, map it all
 *      again, restart (what QEMU does), kept as the measured baseline.
 * Back to passthrough is the mirror sequence with the same strategy.
 *
 * Every backend call of a switch can fail (tests make each one fail with
 * a device wrapped in vdpa/fault_vdpa.h). A failed switch rolls back to the mode
 * the device was in: the queues resume at the indices they had, no chain
 * is both on the device's ring and back with the guest, every shadow
 * mapping is removed again, and the guest sees no reset. If the rollback
 * itself fails, the device is restarted from scratch in passthrough; only
 * if that fails too is it lost (-ENODEV: the caller tells the guest with
 * NEEDS_RESET).
 *
 * Calls come from one control thread at a time (the vdpa.h contract).
 */
#ifndef TERN_VDPA_SHADOW_H
#define TERN_VDPA_SHADOW_H

#include "vdpa/iova.h"
#include "vdpa/relay.h"
#include "vdpa/vdpa.h"

#define SHADOW_MAX_QUEUES RELAY_MAX_QUEUES

enum shadow_mode { SHADOW_PASSTHROUGH, SHADOW_SVQ };

/* The switch strategies above; their numbers are what --net switch=N and
 * the API's "strategy" show. */
enum shadow_strategy {
	SHADOW_STRATEGY_CHOOSE = 0, /* (forced: none) */
	SHADOW_STRATEGY_ASID = 1,
	SHADOW_STRATEGY_HOLE = 2,
	SHADOW_STRATEGY_PERSIST = 3,
	SHADOW_STRATEGY_REMAP = 4,
};

/* Strategies 1 and 2 suspend and resume the device; 3 and 4 restart it. */
static inline bool shadow_strategy_resumes(unsigned s)
{
	return s == SHADOW_STRATEGY_ASID || s == SHADOW_STRATEGY_HOLE;
}

struct shadow_queue {
	bool enabled, data;            /* data queues are shadowed, the CVQ is not */
	uint16_t num;
	struct vdpa_vring_addr guest;  /* the guest's rings (GPAs) */
	int guest_kick, guest_call;    /* what the device uses in passthrough */
	int dev_kick, dev_call;        /* tern's eventfds, in SVQ mode */
	uint16_t base;                 /* next avail index, read at a switch */
	uint16_t shadow_base;          /* the device's index on the shadow ring */
	bool repointed;                /* this switch re-pointed it */
	uint8_t *ring;                 /* shadow ring memory, or NULL */
	size_t ring_size;
	uint64_t iova;
	bool mapped;
	struct svq svq;
	bool svq_live;
	const uint16_t *own_used;      /* a ring of tern's (the shadow CVQ): its used index */
};

/* Memory of tern's the device sees (the shadow CVQ's ring and buffers). */
struct shadow_own {
	void *hva;
	uint64_t iova, size;
	unsigned asid;
};
#define SHADOW_MAX_OWN 4

struct shadow_stats {
	uint64_t switches, rollbacks, recoveries;
	uint64_t blackout_ns;          /* of the last switch: first device stop to restart */
	unsigned maps;                 /* shadow-ring mappings in place now */
};

struct shadow {
	struct vdpa_dev *dev;
	const struct guest_mem *mem;
	uint64_t backend;              /* negotiated backend features */
	uint64_t features;             /* negotiated device features */
	int config_call;
	unsigned nq;
	struct shadow_queue q[SHADOW_MAX_QUEUES];
	struct iotlb ram;              /* guest RAM, GPA -> HVA, for the SVQs */
	struct iova_space iova;
	enum shadow_mode mode;
	unsigned forced;               /* 1..4, or 0: choose */
	unsigned strategy;             /* the one the device is in SVQ by */
	unsigned desc_group;           /* the data rings' group (strategy 1) */
	struct relay relay;
	const struct sandbox *sandbox; /* the filter of its threads (set after shadow_init) */
	/* The dirty log, and the lock that keeps it alive while a writer of
	 * tern's own (the shadow control queue) marks it: shadow_set_log()
	 * takes it, so once it returns nobody marks the old log. */
	struct dirty_log *log;
	pthread_mutex_t log_lock;
	bool frozen_by_reset;          /* shadow_freeze() without SUSPEND */
	unsigned nown;
	struct shadow_own own[SHADOW_MAX_OWN];
	int own_group;                 /* a group moved to own_asid at each start, or -1 */
	unsigned own_asid;
	bool defer_data;               /* shadow_start() leaves data queues disabled */
	/* called after every restart from a reset (strategies 3 and 4, a
	 * freeze without SUSPEND, a recovery): the owner replays what the
	 * reset dropped */
	void (*on_restart)(void *opaque);
	void *on_restart_opaque;
	/* called when a shadowed queue stops because the guest or the device
	 * broke the ring rules (struct relay's on_error: no lock of the relay
	 * held, must not wait for the device's owner lock); the owner signals
	 * NEEDS_RESET to the guest */
	void (*on_queue_error)(void *opaque, unsigned queue, int err);
	void *on_queue_error_opaque;
	struct shadow_stats stats;
};

/* The backend features to negotiate from those offered: each one tern
 * uses, minus the ASID features when IOTLB_MSG_V2 is missing (a v1
 * IOTLB message cannot name an ASID: its map would land in ASID 0). */
uint64_t shadow_backend_wanted(uint64_t offered);

/* Sets up the shadow side of dev (whose backend features are negotiated)
 * for a guest with memory mem, and maps guest RAM at IOVA = GPA. */
int shadow_init(struct shadow *sh, struct vdpa_dev *dev, uint64_t backend, const struct guest_mem *mem,
		unsigned nq, struct err *e);
void shadow_exit(struct shadow *sh);
/* Maps all of guest RAM at IOVA = GPA into ASID 0 (batched). */
int shadow_map_ram(struct shadow *sh);
/* The best strategy the backend allows (1..4), and why not a better one. */
unsigned shadow_pick(struct shadow *sh, const char **why);
/* Checks that a forced strategy is possible; 0 or -EOPNOTSUPP. */
int shadow_force(struct shadow *sh, unsigned strategy, struct err *e);

/* Device bring-up, in passthrough: features (ACK, DRIVER, FEATURES_OK),
 * then each queue as the driver set it and DRIVER_OK. */
int shadow_set_features(struct shadow *sh, uint64_t features);
void shadow_set_queue(struct shadow *sh, unsigned i, bool data, uint16_t num, const struct vdpa_vring_addr *guest,
		      int kick, int call);
void shadow_set_config_call(struct shadow *sh, int fd);
/* Starts every enabled queue at bases[i] (0 without bases). */
int shadow_start(struct shadow *sh, const uint16_t *bases);
/* Enables the data queues shadow_start() left disabled (defer_data). */
int shadow_enable_data(struct shadow *sh);
/* One kick on every enabled data queue's guest kick fd: a device that
 * starts on rings already holding buffers (a restore, a migration's
 * destination) may not look at them until it is kicked, and the guest,
 * which kicked the old device, will not kick again. */
void shadow_kick_guest_rings(struct shadow *sh);
/* The guest reset the device: SVQ torn down, device reset (and RAM mapped
 * again where mappings do not survive a reset). */
void shadow_reset(struct shadow *sh);

/* The switch. 0, or -errno with the device back in the mode it was in
 * (-ENODEV: it could not be brought back at all). */
int shadow_to_svq(struct shadow *sh, struct err *e);
int shadow_to_passthrough(struct shadow *sh, struct err *e);

/* Freezes the data path (device suspended, relay paused, used elements
 * returned to the guest) so memory and indices hold still; and thaws it.
 * A device without SUSPEND freezes only on shadow queues, by a reset, and
 * thaws by a restart on them. */
int shadow_freeze(struct shadow *sh, struct err *e);
void shadow_thaw(struct shadow *sh);
/* With the data path frozen: the next avail index of each queue as the
 * guest's rings see it (chains on a shadow ring the device has not taken
 * are the guest's again). */
int shadow_bases(struct shadow *sh, uint16_t *bases, struct err *e);
/* Maps size bytes of new shared memory (zeroed) into the device for
 * tern's own use: in ASID 1 with the control queue's group moved there
 * when group (>= 0) is a group of its own and the device has two address
 * spaces, else in ASID 0's IOVA hole. Kept across resets and switches
 * until shadow_own_unmap_all(). *asid says which. */
int shadow_own_map(struct shadow *sh, uint64_t size, int group, void **hva, uint64_t *iova, unsigned *asid,
		   struct err *e);
void shadow_own_unmap_all(struct shadow *sh);
/* Queue i is a ring of tern's whose used index is at used (its base after
 * a stop without SUSPEND). */
void shadow_set_own_ring(struct shadow *sh, unsigned i, const uint16_t *used);

/* Attaches the dirty log the SVQs and the shadow control queue mark (NULL
 * detaches); after it returns, nothing marks the previous one. */
void shadow_set_log(struct shadow *sh, struct dirty_log *log);

#endif
