/* SPDX-License-Identifier: MIT */
/*
 * vdpa/iotlb.h - a device-side IOTLB: the IOVA -> host address mappings of
 * one address space, as a device sees them. Every device access to driver
 * memory goes through iotlb_read()/iotlb_write(): an access that is not
 * entirely inside mappings with the needed permission fails with -EFAULT and
 * touches nothing.
 *
 * Not thread-safe: the owning device serialises updates against its data
 * path.
 */
#ifndef TERN_VDPA_IOTLB_H
#define TERN_VDPA_IOTLB_H

#include "vmm/util.h"

#define IOTLB_MAX_ENTRIES 2048

struct iotlb_entry {
	uint64_t iova, size; /* [iova, iova + size), size > 0, no wrap */
	uint8_t *hva;
	unsigned perm;       /* VDPA_PERM_* */
};

struct iotlb {
	unsigned nr;                  /* sorted by iova, non-overlapping */
	struct iotlb_entry *entries;  /* IOTLB_MAX_ENTRIES allocated */
};

int iotlb_init(struct iotlb *t);
void iotlb_exit(struct iotlb *t);
/* Adds a mapping; -EEXIST if it overlaps one, -ENOSPC when full, -EINVAL if
 * empty or wrapping. */
int iotlb_map(struct iotlb *t, uint64_t iova, uint64_t size, void *hva, unsigned perm);
/* Removes every mapping that lies inside [iova, iova+size); mappings only
 * partly inside are split off. */
int iotlb_unmap(struct iotlb *t, uint64_t iova, uint64_t size);
void iotlb_clear(struct iotlb *t);
/* Copies between device-visible memory and a local buffer. */
int iotlb_read(const struct iotlb *t, uint64_t iova, void *dst, size_t len);
int iotlb_write(const struct iotlb *t, uint64_t iova, const void *src, size_t len);
/* Whether all of [iova, iova+len) is mapped with perm (across mappings). */
bool iotlb_access_ok(const struct iotlb *t, uint64_t iova, size_t len, unsigned perm);
/* A direct pointer when [iova, iova+len) lies in one mapping with perm. */
void *iotlb_ptr(const struct iotlb *t, uint64_t iova, size_t len, unsigned perm);

#endif
