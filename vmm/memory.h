/* SPDX-License-Identifier: MIT */
/*
 * vmm/memory.h - guest RAM: one memfd, mapped MAP_SHARED (vhost-vdpa and
 * VDUSE can only map shared file memory), split around the 32-bit PCI hole:
 *
 *   [0, min(size, 3 GiB))           memfd offset 0
 *   [4 GiB, 4 GiB + size - 3 GiB)   memfd offset 3 GiB, when size > 3 GiB
 *
 * The mapping is MAP_NORESERVE: untouched guest RAM costs nothing, so large
 * sparse guests are cheap.
 */
#ifndef TERN_VMM_MEMORY_H
#define TERN_VMM_MEMORY_H

#include "vmm/util.h"

#define MEM_HOLE_START (3 * GiB) /* 32-bit PCI/MMIO hole */
#define MEM_HOLE_END (4 * GiB)
#define MEM_MIN_SIZE (16 * MiB)
#define MEM_MAX_REGIONS 2

struct mem_region {
	gpa_t gpa;       /* guest physical start */
	uint64_t size;   /* bytes */
	uint64_t offset; /* offset in the memfd and in guest_mem.hva */
};

struct guest_mem {
	int fd;              /* memfd backing all of guest RAM, or -1 */
	bool is_file;        /* RAM is a private mapping of a snapshot file */
	uint8_t *hva;        /* host mapping of the whole memfd */
	uint64_t size;       /* total RAM bytes */
	unsigned nr_regions; /* used entries of regions[] */
	struct mem_region regions[MEM_MAX_REGIONS];
};

/* Creates and maps size bytes (page multiple, >= MEM_MIN_SIZE). */
int mem_init(struct guest_mem *mem, uint64_t size, struct err *e);
/* Guest RAM from a snapshot memory file of exactly size bytes. Mapped
 * privately (copy false): pages load lazily on first touch, guest writes
 * never reach the file, and the time taken does not grow with size.
 * Copied (copy true): shared memfd RAM as mem_init() makes, filled from the
 * file's data extents, for devices that map guest RAM themselves. */
int mem_init_file(struct guest_mem *mem, const char *path, uint64_t size, bool copy, struct err *e);
void mem_destroy(struct guest_mem *mem);

/* Host pointer for [gpa, gpa+len) if it lies entirely inside one RAM region,
 * else NULL. len may be 0 (then gpa must still be inside RAM or at its end). */
void *mem_ptr(const struct guest_mem *mem, gpa_t gpa, uint64_t len);

/* End of the RAM region that starts at 0 (the "low RAM" below the hole). */
gpa_t mem_low_end(const struct guest_mem *mem);
/* Highest guest-physical address + 1 of any RAM. */
gpa_t mem_top(const struct guest_mem *mem);

/* The next extent [*data, *hole) at or after off (offsets in the memfd)
 * that may hold non-zero bytes: holes of the memfd were never written and
 * read as zero. A private file mapping (a restored snapshot) is one extent
 * to the end. false when only holes remain. Reading guest RAM there would
 * allocate it: callers scanning RAM use this to skip what was never used. */
bool mem_next_data(const struct guest_mem *mem, uint64_t off, uint64_t *data, uint64_t *hole);

/* Registers every region with KVM as memslots 0.. on vm_fd. */
int mem_register_kvm(const struct guest_mem *mem, int vm_fd, struct err *e);

#endif
