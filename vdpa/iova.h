/* SPDX-License-Identifier: MIT */
/*
 * vdpa/iova.h - where things live in a vDPA device's I/O virtual address
 * space (issue 8; docs/switch.md).
 *
 * Guest RAM is mapped at IOVA = GPA for the device's whole life, so the
 * switch into shadow virtqueues never remaps it. The shadow rings need
 * IOVAs of their own that no guest buffer can name: this allocator hands
 * them out of the device's usable range (VHOST_VDPA_GET_IOVA_RANGE) minus
 * guest RAM, above the top of RAM first (the hole that grows with nothing),
 * then in gaps below it (the 32-bit PCI hole). Not thread-safe: the switch
 * runs on one control thread.
 */
#ifndef TERN_VDPA_IOVA_H
#define TERN_VDPA_IOVA_H

#include "vmm/memory.h"

#define IOVA_MAX_ALLOCS 128

struct iova_range {
	uint64_t start, size; /* [start, start + size), size > 0 */
};

struct iova_space {
	uint64_t first, last;  /* the device's usable IOVAs, inclusive */
	uint64_t ram_top;      /* end of the highest RAM region */
	unsigned nr_ram;
	struct iova_range ram[MEM_MAX_REGIONS];
	unsigned nr;           /* allocations, sorted by start */
	struct iova_range alloc[IOVA_MAX_ALLOCS];
};

/* Sets up the space of a device whose usable IOVAs are [first, last] for
 * guest RAM m at IOVA = GPA; -ERANGE with a message when RAM does not fit
 * the range (the device cannot use IOVA = GPA). */
int iova_init(struct iova_space *s, uint64_t first, uint64_t last, const struct guest_mem *m, struct err *e);
/* size bytes (rounded up to pages) at an IOVA aligned to align (a power of
 * two, at least a page), outside RAM and every other allocation:
 * -EINVAL for a bad size or alignment, -ENOSPC when nothing fits. */
int iova_alloc(struct iova_space *s, uint64_t size, uint64_t align, uint64_t *iova);
/* Frees the allocation that starts at iova; -ENOENT if there is none. */
int iova_free(struct iova_space *s, uint64_t iova);
/* Whether [iova, iova + len) touches guest RAM or an allocation. */
bool iova_busy(const struct iova_space *s, uint64_t iova, uint64_t len);

#endif
