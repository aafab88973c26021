/* SPDX-License-Identifier: MIT */
/*
 * vdpa/svq.h - a shadow virtqueue: tern stands
 * between the guest's split ring and the vDPA device. Towards the guest it
 * is the device: it takes the guest's chains (checked by vdpa/vring.c:
 * bounded, inside RAM, overflow-checked, indirect tables flattened) and
 * returns them in the guest's used ring. Towards the device it is the
 * driver of a ring of its own, whose buffers keep IOVA = GPA. Every used
 * element the device returns is checked (an id that is out of range or
 * not in flight, a length past the chain's writable bytes) before anything
 * reaches the guest, and exactly the bytes the device wrote, plus the
 * guest's used-ring entry, are marked dirty.
 *
 * Notification suppression is honoured both ways: the guest's used_event
 * or NO_INTERRUPT decides its interrupts, and tern publishes avail_event
 * to it (vring.c); towards the device tern publishes used_event and
 * honours the device's avail_event or NO_NOTIFY.
 *
 * The relay thread (vdpa/relay.c) drives it; the switch (vdpa/shadow.c)
 * points a running device at it. Not here: packed rings.
 */
#ifndef TERN_VDPA_SVQ_H
#define TERN_VDPA_SVQ_H

#include "vmm/dirty.h"
#include "vdpa/iotlb.h"
#include "vdpa/vring.h"

struct svq_inflight {
	bool busy;
	uint16_t guest_head;
	unsigned ndesc;             /* shadow descriptors it holds: */
	uint16_t descs[VRING_MAX_SEGS]; /* which (never read back from the ring) */
	struct vring_chain chain;   /* as the guest made it available */
};

struct svq {
	uint16_t num;
	/* the guest's side: tern acts as the device */
	struct vring_dev guest;
	const struct iotlb *ram;    /* guest RAM at IOVA = GPA */
	struct dirty_log *log;      /* may be NULL: nothing is marked */
	/* the device's side: tern's ring, at iova in the device's space */
	uint8_t *mem;
	uint64_t iova;
	struct vring_desc *desc;
	uint16_t *avail;            /* flags, idx, ring[num] */
	uint8_t *used;              /* flags, idx, {id, len}[num] */
	uint16_t avail_idx;         /* next shadow avail entry */
	uint16_t last_used;         /* next shadow used entry to read */
	/* Free shadow descriptors, chained through next_free[]: tern's own
	 * memory, never the ring's desc[].next, which the device can write
	 * (a device, or a VDUSE daemon, that rewrote a link would otherwise
	 * send place() outside inflight[] and desc[]; QEMU keeps its free
	 * list in desc_next[] for the same reason). */
	uint16_t free_head, nfree;
	uint16_t *next_free;        /* num entries */
	struct svq_inflight *inflight; /* num entries, by shadow head */
	struct vring_chain parked;  /* taken from the guest, not yet placed */
	bool have_parked;
	bool dev_event_idx;         /* VIRTIO_F_EVENT_IDX towards the device */
	int error;                  /* first device or guest error, sticky */
};

/* Bytes of the shadow ring for num entries (page-rounded). */
size_t svq_ring_size(uint16_t num);
/* Sets up a shadow queue of num entries (a power of two) over the guest
 * ring described by g (num, desc/avail/used GPAs, last_avail, used_idx),
 * with its own ring in mem (svq_ring_size(num) zeroed bytes) at iova. */
int svq_init(struct svq *q, const struct vring_dev *g, const struct iotlb *ram, struct dirty_log *log, void *mem,
	     uint64_t iova, struct err *e);
void svq_exit(struct svq *q);
/* The shadow ring's IOVAs, for the device's set_vring_addr. */
void svq_addrs(const struct svq *q, uint64_t *desc, uint64_t *avail, uint64_t *used);
/* Moves what the guest made available onto the shadow ring. Returns the
 * chains placed, or -errno on a guest ring error (sticky: the queue then
 * stops, as the device would); a chain with more buffers than the shadow
 * ring has descriptors could never be placed and is such an error
 * (-EINVAL). *kick says whether the device asked to be kicked for them
 * (its NO_NOTIFY flag or event index). Chains of only empty buffers go
 * back to the guest at once; *notify says whether the guest wants an
 * interrupt for them. */
int svq_kick(struct svq *q, bool *kick, bool *notify);
/* The device was reset, or is about to be restarted or resumed: its event
 * index and NO_NOTIFY flag in the shadow used ring are stale. Clears them
 * so that the next placement kicks; the caller also kicks once, since a
 * device may forget kicks it got while stopped. */
void svq_device_restarted(struct svq *q);
/* Returns what the device used to the guest. *notify says whether the
 * guest wants an interrupt. Returns the chains returned, or -errno on a
 * device error (sticky). */
int svq_used(struct svq *q, bool *notify);

#endif
