/* SPDX-License-Identifier: MIT */
/*
 * vmm/dirty.h - which guest pages changed: KVM's dirty log (vCPU writes)
 * united with tern's own bitmap (writes tern or its devices make on the
 * guest's behalf, which KVM never sees).
 *
 * A vDPA device writes guest memory behind KVM's back, so without tern's
 * bitmap it would have to stay suspended for a whole migration, as Cloud
 * Hypervisor's vDPA support does. tern instead relays the device's writes
 * through shadow virtqueues during migration and marks exactly the bytes
 * they wrote here (dirty_mark()), so the device keeps running.
 *
 * KVM's log uses manual protection (KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2)
 * where available: collecting the log does not write-protect anything,
 * clearing does, in chunks, for exactly the pages collected. Bitmaps are
 * indexed by page number within the guest-memory file (struct guest_mem's
 * offsets), one bit per 4 KiB page.
 */
#ifndef TERN_VMM_DIRTY_H
#define TERN_VMM_DIRTY_H

#include <stdatomic.h>

#include "vmm/memory.h"

struct vm;
struct vcpu;

struct dirty_log {
	struct vm *vm;
	uint64_t npages;          /* pages of guest RAM */
	_Atomic uint64_t *tern;   /* tern's bitmap: npages bits, set by dirty_mark() */
	uint64_t *kvm;            /* scratch for one slot's KVM bitmap */
	bool ring;                /* the vCPUs' dirty rings, not KVM's bitmap */
	bool manual;              /* KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 enabled */
	bool initially_set;       /* ... with KVM_DIRTY_LOG_INITIALLY_SET */
	bool started;
};

/* Turns dirty logging on for every memslot (and manual protection when KVM
 * offers it). Every page counts as dirty at the first sync. */
int dirty_start(struct dirty_log *d, struct vm *vm, struct err *e);
/* Turns it off again; safe after a failed start. */
void dirty_stop(struct dirty_log *d);
/* Marks [gpa, gpa+len) dirty; any thread, lock-free. Outside RAM: ignored. */
void dirty_mark(struct dirty_log *d, gpa_t gpa, uint64_t len);
/* ORs every page dirtied since the previous sync into out (npages bits,
 * caller-zeroed or accumulating) and re-arms tracking for them. Returns the
 * number of newly dirty pages reported. */
int64_t dirty_sync(struct dirty_log *d, uint64_t *out, struct err *e);

/* Enables KVM's dirty ring of entries (a power of two) per vCPU on a new
 * VM; -EOPNOTSUPP with a message where KVM has none. */
int dirty_ring_enable(struct vm *vm, unsigned entries, struct err *e);
/* Maps vcpu's ring (vcpu_init(), when the VM has rings). */
int dirty_ring_map(struct vcpu *vcpu, struct err *e);
void dirty_ring_unmap(struct vcpu *vcpu);
/* KVM_EXIT_DIRTY_RING_FULL on vcpu's thread: harvests every ring into
 * the active log (or drops the entries when none is active). */
void dirty_ring_full(struct vcpu *vcpu);

#endif
