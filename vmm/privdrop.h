/* SPDX-License-Identifier: MIT */
/*
 * vmm/privdrop.h - no root while the guest runs (tern run --user).
 *
 * tern opens what needs root (/dev/kvm, TAPs, /dev/vhost-vdpa-N, disk
 * images, the API and migration sockets) and then becomes USER:GROUP with
 * no capabilities left (libcap-ng: the permitted, effective, inheritable,
 * ambient and bounding sets all empty), no supplementary groups,
 * no_new_privs, no core dumps (they would hold guest memory) and no raising
 * of its descriptor limit. What tern opens afterwards (snapshot
 * directories, a restore's parents, migration UNIX sockets) goes through
 * paths that user may use.
 */
#ifndef TERN_VMM_PRIVDROP_H
#define TERN_VMM_PRIVDROP_H

#include <stdbool.h>
#include <sys/types.h>

#include "vmm/util.h"

struct privdrop {
	bool enabled;
	uid_t uid;
	gid_t gid;
	char spec[96]; /* as given, for messages */
};

/* USER[:GROUP], each a name or a number; GROUP defaults to USER's own
 * group. Refuses root (uid 0) and names the system does not know. */
int privdrop_parse(const char *spec, struct privdrop *p, struct err *e);

/* While tern is still one thread and root: empties the capability
 * bounding set (a per-thread set, which threads started before the drop
 * inherit), leaving what tern may do until the drop unchanged. A no-op
 * unless p->enabled and tern runs as root. */
int privdrop_prepare(const struct privdrop *p, struct err *e);

/* Drops to p's ids on every thread of the process and checks that it
 * holds: no way back to root, no capability in any set. -errno (and the
 * process is not to go on) if any step fails. A no-op unless p->enabled. */
int privdrop_apply(const struct privdrop *p, struct err *e);

#endif
