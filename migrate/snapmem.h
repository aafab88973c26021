/* SPDX-License-Identifier: MIT */
/*
 * migrate/snapmem.h - the memory files of snapshots, and what diff
 * snapshots need: a record of which pages changed since the last snapshot.
 *
 * A full snapshot's memory file holds all of guest RAM, zero pages left as
 * holes. A diff snapshot's memory file holds only the pages dirtied since
 * its parent (the snapshot this VM last took, or was restored from); the
 * page bitmap in its state file says which, so a zero page that was dirtied
 * can stay a hole too. Restore maps (or copies) the chain's full snapshot
 * and lays the diffs over it, oldest first.
 *
 * Tracking is opt-in (tern run --track-dirty), as in Firecracker: KVM's
 * dirty log write-protects pages, which costs a fault on the first write to
 * each page after every snapshot.
 */
#ifndef TERN_MIGRATE_SNAPMEM_H
#define TERN_MIGRATE_SNAPMEM_H

#include "vmm/dirty.h"

struct vm;

struct snap_lineage {
	struct dirty_log log;
	uint64_t *pending;   /* pages dirtied since the base: synced from the
			      * log, kept until a snapshot has saved them */
	uint64_t words;      /* length of pending in u64 */
	bool has_base;       /* a snapshot to diff against exists */
	char dir[4096];      /* the base snapshot's directory (absolute) */
	char mem_name[64];   /* and its memory file: the base's identity */
};

/* Starts dirty tracking for diff snapshots (vm->lineage). Refused for VMs
 * whose devices write guest memory outside KVM's dirty log. */
int snapmem_track_start(struct vm *vm, struct err *e);
/* Stops it and frees vm->lineage; safe when it never started. */
void snapmem_track_stop(struct vm *vm);
/* Moves every page dirtied since the last call into lineage->pending. */
int snapmem_collect(struct vm *vm, struct err *e);
/* The VM's RAM now equals the snapshot in dir (absolute) with that memory
 * file: later diffs are taken against it. Call with the VM paused. */
void snapmem_set_base(struct vm *vm, const char *dir, const char *mem_name);

/* Writes guest RAM into fd (a new file, sized here) at its own offsets:
 * every page when pages is NULL, else only the pages whose bit is set.
 * Zero pages are left as holes either way; *written counts the pages
 * written as data. Ends with fsync. */
int snapmem_write(const struct guest_mem *m, int fd, const uint64_t *pages, uint64_t *written, struct err *e);
/* Copies the pages set in pages from the diff memory file at path (of
 * exactly m->size bytes) into guest RAM, before the VM runs. */
int snapmem_apply(struct guest_mem *m, const char *path, const uint64_t *pages, struct err *e);

#endif
