/* SPDX-License-Identifier: MIT */
/*
 * devices/state.h - one device's part of the state tree (the flattened
 * device tree that snapshots and migrations carry, docs/state-format.md).
 *
 * Every node carries a version "major.minor" (property "version": two
 * big-endian u32 cells; one cell, as tern wrote before format 1.4, reads
 * as minor 0). The rule, the same for every node: a load requires the
 * major this tern writes, refuses a newer minor (it cannot know what was
 * added) and an older one than the node's floor, and reads every minor in
 * between. A change to what a node holds (a saved struct's layout, a new
 * property) needs a version bump: a new minor when an older tern's reader
 * would still be right to ignore it, a new major otherwise.
 */
#ifndef TERN_DEVICES_STATE_H
#define TERN_DEVICES_STATE_H

#include "vmm/util.h"

struct state_version {
	uint16_t major, minor; /* what this tern writes */
	uint16_t floor;        /* the oldest minor of major it reads */
};

/* Node name and property writers; 0 or a negative errno with e set
 * (-ENOBUFS: the buffer is too small, a bigger one may do). */
int state_begin(void *fdt, const char *name, const struct state_version *v, struct err *e);
int state_end(void *fdt, const char *name, struct err *e);
int state_put(void *fdt, const char *prop, const void *p, size_t len, struct err *e);
/* What a libfdt error r while writing what means, in e. */
int state_fdt_err(struct err *e, const char *what, int r);

/* The node name under the root, its version checked against v (the rule
 * above): its offset, or -EPROTO with e set. *minor (may be NULL) gets the
 * node's minor. */
int state_find(const void *fdt, const char *name, const struct state_version *v, unsigned *minor, struct err *e);
/* Copies property prop of node (named name, for messages): it must be
 * exactly len bytes. */
int state_get(const void *fdt, int node, const char *name, const char *prop, void *dst, size_t len,
	      struct err *e);
/* The same for an optional property: 1 copied, 0 absent, -EPROTO when it
 * is there with another size. */
int state_get_optional(const void *fdt, int node, const char *name, const char *prop, void *dst, size_t len,
		       struct err *e);

/* A node that holds one fixed-layout struct in its property "regs" (the
 * legacy devices): written, and read back with its version checked. */
int state_put_regs(void *fdt, const char *name, const struct state_version *v, const void *p, size_t len,
		   struct err *e);
int state_get_regs(const void *fdt, const char *name, const struct state_version *v, void *dst, size_t len,
		   struct err *e);

#endif
