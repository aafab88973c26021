/* SPDX-License-Identifier: MIT */
/*
 * migrate/snapshot.h - snapshots to a directory: a state file in tern's
 * state format (docs/state-format.md) and a sparse memory file that restore
 * maps lazily. Written under temporary names, fsynced and renamed, so a
 * crash never leaves a partial file under a final name.
 */
#ifndef TERN_MIGRATE_SNAPSHOT_H
#define TERN_MIGRATE_SNAPSHOT_H

#include "vmm/util.h"

struct vm;

#define SNAP_MAJOR 1
#define SNAP_MINOR 0
#define SNAP_STATE_FILE "state"
#define SNAP_MAX_FILE (64u << 20) /* state file limit */

/* What a state file says, after every check passed. */
struct snapshot {
	void *config;        /* FDT: the machine's configuration */
	void *state;         /* FDT: device and vCPU state */
	char mem_path[4096]; /* the memory file, in the snapshot directory */
	unsigned nr_cpus;
	uint64_t mem_size;
	bool test_device;
	unsigned nr_nets;    /* --net devices the restore must be given */
};

/* Saves a paused VM into dir (created if needed). */
int snapshot_create(struct vm *vm, const char *dir, struct err *e);
/* Reads and checks dir's state file: magic, version, sizes, CRCs, records,
 * fdt_check_full() of both trees, the configuration's ranges. */
int snapshot_read(const char *dir, struct snapshot *s, struct err *e);
/* Loads the state into a VM created from s's configuration (and s's memory
 * file), before it starts. */
int snapshot_load(struct vm *vm, const struct snapshot *s, struct err *e);
void snapshot_free(struct snapshot *s);

/* The record layer, exposed for tests: parses a whole state file image. */
int snapshot_parse(const uint8_t *buf, size_t len, struct snapshot *s, struct err *e);

#endif
