/* SPDX-License-Identifier: MIT */
/*
 * vdpa/vduse_iotlb.h - the VDUSE daemon's mirror of the kernel's IOTLB:
 * each kernel entry (VDUSE_IOTLB_GET_FD: the file behind it, the VMM's
 * memfd) mmapped here and mapped into the device's ASID 0 at the same IOVA.
 *
 * The kernel announces every change of its map as UPDATE_IOTLB over the
 * whole space (Linux 6.12's vduse_dev_update_iotlb() always says [0, ~0]),
 * while the device may be running: guest RAM, rings and buffers in use. A
 * mirror that dropped everything and mapped it again would leave the live
 * ranges missing for a moment, and a frame or kick then fails the device
 * (NEEDS_RESET, which VDUSE cannot report: a dead NIC). So an update reads
 * the kernel's whole new map first, keeps every entry that did not change
 * (same range, permission, file and offset) mapped throughout, and
 * touches only what was removed or changed.
 */
#ifndef TERN_VDPA_VDUSE_IOTLB_H
#define TERN_VDPA_VDUSE_IOTLB_H

#include <sys/types.h>
#include <linux/vduse.h>

#include "vdpa/vdpa.h"

#define VDUSE_MAX_MAPS 256 /* IOTLB entries mirrored; more are refused */

struct vduse_map {
	uint64_t start, last; /* the kernel's IOTLB entry, inclusive */
	void *base;           /* our mmap of its file (page-aligned) ... */
	size_t len;           /* ... and its length */
	uint8_t *hva;         /* where start lies inside it */
	unsigned perm;        /* VDPA_PERM_* */
	dev_t file_dev;       /* the file and offset it maps: an entry */
	ino_t file_ino;       /* is unchanged when all of these are */
	uint64_t offset;
};

/* Where the kernel's map is read: VDUSE_IOTLB_GET_FD, or a test's. */
struct vduse_iotlb_ops {
	/* en->start, en->last in: the range searched; out: the first entry
	 * overlapping it. Returns a file descriptor the caller closes, or
	 * -errno: -EINVAL or -ENOENT when there is none. */
	int (*get_fd)(void *opaque, struct vduse_iotlb_entry *en);
};

struct vduse_iotlb {
	const struct vduse_iotlb_ops *ops;
	void *opaque;
	struct vdpa_dev *dev; /* mapped into, in ASID 0 */
	const char *name;     /* for messages */
	unsigned nr_maps;     /* used entries of maps[], unordered */
	struct vduse_map maps[VDUSE_MAX_MAPS];
};

/* UPDATE_IOTLB [start, last]: the mirror becomes the kernel's map there.
 * On failure every mapping in the range is dropped (the kernel, told
 * FAILED, takes its new map back out) and e says why. */
int vduse_iotlb_update(struct vduse_iotlb *t, uint64_t start, uint64_t last, struct err *e);
/* Gives the device every mapping again (after a reset that dropped its). */
void vduse_iotlb_reapply(struct vduse_iotlb *t);
/* Unmaps our side of every mapping (the device is gone). */
void vduse_iotlb_free(struct vduse_iotlb *t);

#endif
