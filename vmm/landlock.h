/* SPDX-License-Identifier: MIT */
/*
 * vmm/landlock.h - filesystem confinement with Landlock (tern run
 * --landlock; docs/security.md).
 *
 * Once restricted, the process may open only beneath the paths it was
 * given, each with the access it was given: a file to read (the kernel), a
 * file to read and write (a disk image, /dev/kvm), a tree to read (a
 * snapshot to restore) or a tree to write (where snapshots go, where a
 * UNIX socket is made). Descriptors opened before stay as they are. The
 * rights handled are those of the running kernel's Landlock ABI (1..),
 * so an older kernel enforces what it knows; a kernel without Landlock
 * is an error, not a silent no-op.
 */
#ifndef TERN_VMM_LANDLOCK_H
#define TERN_VMM_LANDLOCK_H

#include <stdbool.h>

#include "vmm/util.h"

enum landlock_access {
	LANDLOCK_READ_FILE,  /* a file, read */
	LANDLOCK_RW_FILE,    /* a file or device node, read and written */
	LANDLOCK_READ_TREE,  /* a directory and all beneath it, read */
	LANDLOCK_WRITE_TREE, /* a directory and all beneath it: read, write, create, remove, rename, sockets */
};

#define LANDLOCK_MAX_PATHS 64

struct landlock_path {
	const char *path;
	enum landlock_access access;
	bool optional; /* a path that does not exist is skipped, not an error */
};

struct landlock {
	unsigned n;
	struct landlock_path paths[LANDLOCK_MAX_PATHS];
};

/* Adds path with access; -E2BIG past LANDLOCK_MAX_PATHS. */
int landlock_allow(struct landlock *l, const char *path, enum landlock_access access, bool optional,
		   struct err *e);

/* The running kernel's Landlock ABI version, 0 if it has none. */
int landlock_abi(void);

/* Restricts the calling thread and the threads it starts later (call it
 * while it is the only thread) to l's paths; sets no_new_privs. */
int landlock_restrict(const struct landlock *l, struct err *e);

#endif
