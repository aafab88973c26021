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

#define SNAP_MAGIC "TERNSNAP" /* its version: STATE_MAJOR.STATE_MINOR (record.h) */
#define SNAP_STATE_FILE "state"
#define SNAP_MAX_FILE (64u << 20) /* state file limit */
#define SNAP_MAX_CHAIN 32  /* diffs over one full snapshot */

/* The state file's record types, in the order a file holds them. */
#define REC_CONFIG 1u
#define REC_STATE 2u
#define REC_PAGES 3u
#define SNAP_CONFIG_MAX (64u << 10) /* configuration tree limit */
#define SNAP_FDT_MAX (16u << 20)    /* state tree limit */

struct snap_lineage;

/* A diff snapshot's memory, laid over its parent's at restore. */
struct snapshot_layer {
	char mem_path[4096];
	uint64_t *pages;     /* bitmap: the pages its memory file holds */
};

/* What a state file says, after every check passed. */
struct snapshot {
	void *config;        /* FDT: the machine's configuration */
	void *state;         /* FDT: device and vCPU state */
	char dir[4096];      /* the snapshot directory, absolute */
	char mem_name[64];   /* its memory file's name: the snapshot's identity */
	char mem_path[4096]; /* the memory file restore maps: after
			      * snapshot_read(), the chain's full snapshot's */
	unsigned nr_cpus;
	uint64_t mem_size;
	bool test_device;
	unsigned nr_nets;    /* --net devices the restore must be given */
	unsigned nr_disks;   /* and --disk devices */
	bool has_vm_id;      /* the VM's id (older terns wrote none) */
	uint8_t vm_id[16];
	/* diff snapshots only */
	char parent[4096];      /* the parent's directory (absolute), or "" */
	char parent_mem[64];    /* the parent's memory file name */
	uint64_t *pages;        /* this diff's page bitmap */
	/* after snapshot_read(): the diffs to lay over mem_path, oldest first,
	 * this snapshot last if it is a diff */
	unsigned nr_layers;
	struct snapshot_layer *layers;
};

struct snapshot_opts {
	bool diff;         /* only pages dirtied since the VM's last snapshot */
	/* the devices are frozen already and must stay so (a hand-over left
	 * unresolved): they are neither suspended nor resumed here */
	bool devices_frozen;
	uint64_t pages;    /* out: pages written to the memory file as data */
};

/* Saves a paused VM into dir (created if needed). A diff needs
 * vm->lineage with a base (tern run --track-dirty, then a snapshot or a
 * restore) and never replaces a snapshot its own chain depends on. */
int snapshot_create(struct vm *vm, const char *dir, struct snapshot_opts *o, struct err *e);
/* Reads and checks dir's state file: magic, version, sizes, CRCs, records,
 * fdt_check_full() of both trees, the configuration's ranges; then, for a
 * diff, every snapshot of its chain the same way, each parent still the one
 * the child was taken against. */
int snapshot_read(const char *dir, struct snapshot *s, struct err *e);
/* The same, for a snapshot from elsewhere (a restore): every parent of a
 * diff's chain must lie under root (NULL: the directory that holds dir),
 * since a crafted diff naming any directory would map that snapshot's
 * memory - another VM's - into this guest. */
int snapshot_read_within(const char *dir, const char *root, struct snapshot *s, struct err *e);
/* Loads the state into a VM created from s's configuration (and s's memory
 * file), lays the chain's diffs over its RAM, before it starts:
 * snapshot_stage() then snapshot_start_devices(). */
int snapshot_load(struct vm *vm, const struct snapshot *s, struct err *e);
/* Everything snapshot_load() does except starting the network devices:
 * nothing is sent or announced (a migration's destination before GO). */
int snapshot_stage(struct vm *vm, const struct snapshot *s, struct err *e);
/* Starts the devices snapshot_stage() loaded (each device's start(), through the device table). */
int snapshot_start_devices(struct vm *vm, struct err *e);
void snapshot_free(struct snapshot *s);

/* The pieces the migration stream shares. Trees are built into fdt, of
 * size bytes; memory-file is left out when mem_name is NULL. */
int snapshot_build_config(struct vm *vm, const char *mem_name, const struct snap_lineage *parent, void *fdt,
			  size_t size, struct err *e);
int snapshot_build_state(struct vm *vm, void *fdt, size_t size, struct err *e);
/* The state tree in a malloc'd buffer sized to fit, or NULL with e set. */
void *snapshot_state_tree(struct vm *vm, struct err *e);
/* fdt_check_full() and size checks of a tree of len bytes. */
int snapshot_check_tree(const void *p, size_t len, const char *what, struct err *e);
/* Reads s->config (a checked tree) into s's fields, with their ranges;
 * memory-file is required when memory_file. */
int snapshot_parse_config(struct snapshot *s, bool memory_file, struct err *e);

/* The record layer, exposed for tests: parses a whole state file image. */
int snapshot_parse(const uint8_t *buf, size_t len, struct snapshot *s, struct err *e);

#endif
