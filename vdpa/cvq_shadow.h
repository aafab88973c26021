/* SPDX-License-Identifier: MIT */
/*
 * vdpa/cvq_shadow.h - the virtio-net control queue, shadowed (issue 9;
 * docs/net.md "The control queue").
 *
 * tern is the device of the guest's control queue and the driver of a
 * control queue of its own towards the vDPA device. Every guest command
 * is copied out of guest memory, validated (class, command, lengths, MAC
 * table sizes, VLAN ids, queue pairs against the device's maximum: the
 * same rules as vdpa/cvq.c), and only then forwarded, from tern's own
 * buffer, so the guest cannot change it under the device. The device's
 * answer goes back to the guest, and the command changes tern's record of
 * the device state only when the device acknowledged it. ANNOUNCE_ACK is
 * answered by tern (the device knows nothing of moves).
 *
 * The record is what a destination (or a restore) replays to a new device
 * before its data queues run: cvq_shadow_replay() sends only what differs
 * from the device's defaults, several commands in flight at once.
 *
 * The shadow queue's ring and buffers live in memory tern maps into the
 * device (vdpa/shadow.h's shadow_own_map()): in ASID 1 when the control
 * queue has a group of its own, so the device's control path sees nothing
 * of the guest's memory; in the IOVA hole of ASID 0 otherwise.
 */
#ifndef TERN_VDPA_CVQ_SHADOW_H
#define TERN_VDPA_CVQ_SHADOW_H

#include <pthread.h>

#include "vmm/dirty.h"
#include "vdpa/cvq.h"
#include "vdpa/shadow.h"
#include "vdpa/vdpa.h"
#include "vdpa/vring.h"

#define CVQS_NUM 64     /* shadow ring entries */
#define CVQS_SLOTS 32   /* command buffers (two descriptors each) */
#define CVQS_SLOT 8192  /* command at 0 (up to CVQ_CMD_MAX), ack at 4096 */
#define CVQS_RING 8192  /* ring bytes before the slots */
#define CVQS_SIZE (CVQS_RING + CVQS_SLOTS * CVQS_SLOT)

/* The record as it travels in snapshots and migration streams (the "ctrl"
 * property of a net@N node, docs/state-format.md): fixed layout, little
 * endian, validated on load. A change here needs a version bump of the
 * net@N node (devices/virtio_net_migrate.c). */
struct cvq_record {
	uint8_t mac[6];
	uint8_t rx;            /* bit i: RX mode i (PROMISC .. NOBCAST) on */
	uint8_t overflow;      /* bit 0: unicast table overflowed, bit 1: multicast */
	uint16_t uni_count, multi_count, pairs, rsvd0;
	uint64_t offloads;
	uint8_t uni[64][6], multi[64][6];
	uint64_t vlans[64];
};
_Static_assert(sizeof(struct cvq_record) == 24 + 2 * 64 * 6 + 64 * 8, "cvq_record layout");

struct cvq_shadow {
	struct vdpa_dev *dev;
	const struct sandbox *sandbox; /* its thread's filter (NULL: none) */
	unsigned idx;               /* the control queue's index */
	uint64_t features;          /* negotiated */
	struct cvq_limits lim;      /* what tern records (64 entries per table) */
	uint8_t default_mac[6];     /* the device's, for replay's defaults */
	/* the guest's side: tern is the device */
	const struct iotlb *ram;
	struct vring_dev guest;
	struct dirty_log *const *log; /* where the migration's log is (may hold NULL) */
	pthread_mutex_t *log_lock;    /* held while marking it (struct shadow's) */
	int guest_kick, guest_call;
	/* the device's side: tern's ring and buffers */
	uint8_t *mem;               /* CVQS_SIZE bytes */
	uint64_t iova;
	int dev_kick, dev_call;
	uint16_t avail_idx, last_used;
	/* what the thread has on the device (one guest command at a time) */
	bool busy;
	uint16_t busy_slot;
	/* replayed commands the device has not answered yet (a replay that
	 * timed out): bit s for slot s, and each one's length. No guest
	 * command goes to the device, and no replay starts, until they are
	 * answered; an OK among them goes into the record then, since the
	 * device applied it. */
	uint32_t owed;
	uint16_t owed_len[CVQS_SLOTS];
	/* RX modes (bit m: PROMISC, ALLMULTI, ALLUNI) a replay turned on in
	 * the device, beyond the record, for a table too large to record:
	 * turned off again (slot 1, while the guest command that made its
	 * table fit waits for its answer) once no longer needed. */
	uint8_t folded, fix_mode;
	bool fixing;
	unsigned timeout_ms;        /* a replay's wait for each answer (5000) */
	struct vring_chain chain;   /* the guest command being answered */
	struct net_ctrl_state trial; /* the record if the device says OK */
	/* the record, and who reads it */
	pthread_mutex_t lock;
	struct net_ctrl_state rec;
	uint64_t forwarded, refused, nacked, announce_acks;
	/* ANNOUNCE_ACK goes to the owner of S_ANNOUNCE */
	void (*announce_ack)(void *opaque);
	void *opaque;
	pthread_t thread;
	bool running, paused;
	int stop_fd;
	pthread_cond_t cond;
};

/* What a device with these negotiated features accepts, from its config
 * space: max_virtqueue_pairs with MQ, the RSS fields with RSS or
 * HASH_REPORT; the MAC table size is what the record holds (64). */
void cvq_limits_read(struct vdpa_dev *dev, uint64_t features, struct cvq_limits *lim);
/* Sets up the shadow of the guest's control queue (ring g, in RAM ram)
 * over tern's memory mem (CVQS_SIZE bytes, zeroed, at iova in the
 * device), for a device with limits lim and MAC mac. */
int cvq_shadow_init(struct cvq_shadow *c, struct vdpa_dev *dev, unsigned idx, uint64_t features,
		    const struct cvq_limits *lim, const uint8_t mac[6], const struct vring_dev *g,
		    const struct iotlb *ram, void *mem, uint64_t iova, struct err *e);
/* Everything at once, for queue idx of the device behind sh: tern's
 * memory mapped (shadow_own_map(): *asid says where), the shadow set up
 * over the guest's ring guest, and the device's queue idx pointed at it
 * for shadow_start(). The thread starts with cvq_shadow_start(). */
int cvq_shadow_setup(struct cvq_shadow *c, struct shadow *sh, unsigned idx, uint64_t features, const uint8_t mac[6],
		     const struct vring_dev *guest, unsigned *asid, struct err *e);
/* The shadow ring's IOVAs and size, for the device. */
void cvq_shadow_addrs(const struct cvq_shadow *c, struct vdpa_vring_addr *a, uint16_t *num);
/* Where the shadow ring's used index lives (the device's progress). */
const uint16_t *cvq_shadow_used_idx(const struct cvq_shadow *c);
/* Serves the guest: a thread of its own, from here until cvq_shadow_exit. */
int cvq_shadow_start(struct cvq_shadow *c, int guest_kick, int guest_call, struct err *e);
void cvq_shadow_exit(struct cvq_shadow *c);
/* Sends want's state to the device (which must be running, with its data
 * queues not yet): only what differs from the device's defaults, with up
 * to CVQS_SLOTS commands in flight when pipelined, else one at a time.
 * Any NACK (or silence for timeout_ms) fails with a message naming the
 * command. The record is always what the device holds: on success want
 * (a MAC table too large to record passes on the device through ALLUNI,
 * or PROMISC without RX_EXTRA, and ALLMULTI, which the shadow turns off
 * again once the guest's tables fit), after a NACK the defaults plus every command the
 * device acknowledged (a failed batch is collected whole first), after
 * silence the same, with the unanswered commands owed: neither a guest
 * command nor another replay reaches the device until it answers them.
 * The thread, if running, waits meanwhile (-EBUSY if a guest command is
 * on the device). want NULL: the record itself, after a reset - what the
 * device had then (a guest command, owed commands) is taken again and
 * answered first, and the record replayed includes what it said OK to;
 * if it stays silent, nothing is replayed (-ETIMEDOUT). *sent: commands
 * placed on the device. */
int cvq_shadow_replay(struct cvq_shadow *c, const struct net_ctrl_state *want, bool pipelined, unsigned *sent,
		      struct err *e);
/* Paused, the thread answers nothing and takes no guest command, so the
 * guest's control ring holds still while a VM's state is saved; on
 * unpausing it catches up. */
void cvq_shadow_pause(struct cvq_shadow *c, bool paused);
/* Where the guest's control ring resumes (a destination's or a restore's
 * base): its used index - tern answers in order, so a command the device
 * still has is taken again there. Not the device's index: tern answers
 * some commands itself (refusals, ANNOUNCE_ACK), so the two differ. */
uint16_t cvq_shadow_guest_base(struct cvq_shadow *c);
/* A copy of the record. */
void cvq_shadow_record(struct cvq_shadow *c, struct net_ctrl_state *out);

/* The record in its travelling form, and back (-EPROTO for a record that
 * is out of range for a device with features and limits lim: counts,
 * pairs, reserved bits, RSS against the device). The RSS part travels as
 * the struct cvq_rss itself (NULL: RSS off, as in streams before 1.2). */
void cvq_record_pack(const struct net_ctrl_state *s, struct cvq_record *r);
int cvq_record_unpack(const struct cvq_record *r, const struct cvq_rss *rss, uint64_t features,
		      const struct cvq_limits *lim, struct net_ctrl_state *s, struct err *e);

#endif
