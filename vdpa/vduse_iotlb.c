/* SPDX-License-Identifier: MIT */
/*
 * vdpa/vduse_iotlb.c - see vduse_iotlb.h. The kernel side it mirrors is
 * Linux's drivers/vdpa/vdpa_user/vduse_dev.c (vduse_dev_update_iotlb,
 * VDUSE_IOTLB_GET_FD).
 */
#include "vdpa/vduse_iotlb.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* One entry of the kernel's map as read for an update. */
struct kernel_entry {
	struct vduse_iotlb_entry en;
	int fd;
	struct stat st;
	bool kept; /* the mirror has it already, unchanged */
};

static bool overlaps(const struct vduse_map *m, uint64_t start, uint64_t last)
{
	return m->start <= last && m->last >= start;
}

static bool same(const struct vduse_map *m, const struct kernel_entry *k)
{
	return m->start == k->en.start && m->last == k->en.last && m->perm == k->en.perm &&
	       m->file_dev == k->st.st_dev && m->file_ino == k->st.st_ino && m->offset == k->en.offset;
}

/* Drops mapping i: from the device first (it stops using the memory once
 * the call returns), then our mmap. */
static void drop(struct vduse_iotlb *t, unsigned i)
{
	struct vduse_map *m = &t->maps[i];
	int r = t->dev->ops->iotlb_invalidate(t->dev, 0, m->start, m->last - m->start + 1);

	if (r < 0) /* the device may still use it: leak it rather than pull it away */
		pr_warn("vduse-net %s: device IOTLB invalidate [0x%" PRIx64 ", 0x%" PRIx64 "]: %s", t->name,
			m->start, m->last, strerror(-r));
	else
		munmap(m->base, m->len);
	*m = t->maps[--t->nr_maps];
}

static void drop_range(struct vduse_iotlb *t, uint64_t start, uint64_t last)
{
	for (unsigned i = 0; i < t->nr_maps;)
		if (overlaps(&t->maps[i], start, last))
			drop(t, i);
		else
			i++;
}

/* Maps one kernel entry and gives it to the device. */
static int add(struct vduse_iotlb *t, const struct kernel_entry *k, struct err *e)
{
	const struct vduse_iotlb_entry *en = &k->en;
	uint64_t size = en->last - en->start + 1, delta = en->offset & ((uint64_t)sysconf(_SC_PAGESIZE) - 1);
	int prot = (en->perm & VDUSE_ACCESS_RO ? PROT_READ : 0) | (en->perm & VDUSE_ACCESS_WO ? PROT_WRITE : 0);

	/* size 0 is the whole 64-bit space; mmap offsets are signed */
	if (!size || size > SIZE_MAX - delta || en->offset > INT64_MAX || !prot || en->perm > VDUSE_ACCESS_RW)
		return err_set(e, -EINVAL, "IOTLB entry [0x%" PRIx64 ", 0x%" PRIx64 "] offset 0x%" PRIx64
					   " perm %u: unusable", (uint64_t)en->start, (uint64_t)en->last,
			       (uint64_t)en->offset, (unsigned)en->perm);
	if (t->nr_maps == VDUSE_MAX_MAPS)
		return err_set(e, -ENOSPC, "more than %d IOTLB entries: [0x%" PRIx64 ", 0x%" PRIx64 "] refused",
			       VDUSE_MAX_MAPS, (uint64_t)en->start, (uint64_t)en->last);
	void *base = mmap(NULL, size + delta, prot, MAP_SHARED, k->fd, (off_t)(en->offset - delta));
	if (base == MAP_FAILED)
		return err_errno(e, -errno, "mmap of IOTLB entry [0x%" PRIx64 ", 0x%" PRIx64 "]", (uint64_t)en->start,
				 (uint64_t)en->last);
	struct vduse_map *m = &t->maps[t->nr_maps];
	*m = (struct vduse_map){ .start = en->start, .last = en->last, .base = base, .len = size + delta,
				 .hva = (uint8_t *)base + delta, .perm = en->perm, .file_dev = k->st.st_dev,
				 .file_ino = k->st.st_ino, .offset = en->offset };
	int r = t->dev->ops->iotlb_update(t->dev, 0, m->start, size, m->hva, m->perm);
	if (r < 0) {
		munmap(base, m->len);
		return err_errno(e, r, "device IOTLB update [0x%" PRIx64 ", 0x%" PRIx64 "]", m->start, m->last);
	}
	t->nr_maps++;
	return 0;
}

/* Reads the kernel's entries overlapping [start, last], in order. */
static int read_kernel(struct vduse_iotlb *t, uint64_t start, uint64_t last, struct kernel_entry *k, unsigned *n,
		       struct err *e)
{
	uint64_t cur = start;

	for (*n = 0;;) {
		struct vduse_iotlb_entry en = { .start = cur, .last = last };
		int fd = t->ops->get_fd(t->opaque, &en);

		if (fd < 0) /* else: no more mappings */
			return fd == -EINVAL || fd == -ENOENT ? 0 : err_errno(e, fd, "VDUSE_IOTLB_GET_FD 0x%" PRIx64, cur);
		/* the first entry overlapping [cur, last]; it cannot end before cur */
		int r = 0;
		if (NEVER(en.last < cur || en.start > en.last))
			r = err_set(e, -EPROTO, "VDUSE_IOTLB_GET_FD 0x%" PRIx64 ": entry [0x%" PRIx64 ", 0x%" PRIx64 "]",
				    cur, (uint64_t)en.start, (uint64_t)en.last);
		else if (*n == VDUSE_MAX_MAPS)
			r = err_set(e, -ENOSPC, "more than %d IOTLB entries: [0x%" PRIx64 ", 0x%" PRIx64 "] refused",
				    VDUSE_MAX_MAPS, (uint64_t)en.start, (uint64_t)en.last);
		else if (fstat(fd, &k[*n].st) < 0)
			r = err_errno(e, -errno, "IOTLB entry [0x%" PRIx64 ", 0x%" PRIx64 "]: fstat", (uint64_t)en.start,
				      (uint64_t)en.last);
		if (r < 0) {
			close(fd);
			return r;
		}
		k[*n].en = en;
		k[*n].fd = fd;
		k[*n].kept = false;
		(*n)++;
		if (en.last >= last)
			return 0;
		cur = en.last + 1;
	}
}

int vduse_iotlb_update(struct vduse_iotlb *t, uint64_t start, uint64_t last, struct err *e)
{
	struct kernel_entry *k = calloc(VDUSE_MAX_MAPS, sizeof(*k));
	unsigned n = 0;
	int r;

	if (last < start)
		r = err_set(e, -EINVAL, "UPDATE_IOTLB [0x%" PRIx64 ", 0x%" PRIx64 "]: empty range", start, last);
	else if (!k)
		r = err_set(e, -ENOMEM, "out of memory for an IOTLB update");
	else
		r = read_kernel(t, start, last, k, &n, e);
	/* What is in the range and not in the new map, unchanged, goes (an
	 * entry reaching outside the range that changed goes whole); what
	 * stayed is never touched; then what is new comes. */
	for (unsigned i = 0; r == 0 && i < t->nr_maps;) {
		bool stays = false, hit = overlaps(&t->maps[i], start, last);
		for (unsigned j = 0; j < n && !stays; j++) {
			hit = hit || overlaps(&t->maps[i], k[j].en.start, k[j].en.last);
			if (!k[j].kept && same(&t->maps[i], &k[j]))
				stays = k[j].kept = true;
		}
		if (hit && !stays)
			drop(t, i);
		else
			i++;
	}
	for (unsigned j = 0; r == 0 && j < n; j++)
		if (!k[j].kept)
			r = add(t, &k[j], e);
	for (unsigned j = 0; j < n; j++)
		close(k[j].fd); /* the mmap keeps the file */
	free(k);
	/* On FAILED the kernel takes the whole new map back out: so do we. */
	if (r < 0 && last >= start)
		drop_range(t, start, last);
	return r;
}

void vduse_iotlb_reapply(struct vduse_iotlb *t)
{
	for (unsigned i = 0; i < t->nr_maps; i++) {
		const struct vduse_map *m = &t->maps[i];
		int r = t->dev->ops->iotlb_update(t->dev, 0, m->start, m->last - m->start + 1, m->hva, m->perm);

		if (r < 0)
			pr_warn("vduse-net %s: device IOTLB [0x%" PRIx64 ", 0x%" PRIx64 "] after reset: %s", t->name,
				m->start, m->last, strerror(-r));
	}
}

void vduse_iotlb_free(struct vduse_iotlb *t)
{
	for (unsigned i = 0; i < t->nr_maps; i++)
		munmap(t->maps[i].base, t->maps[i].len);
	t->nr_maps = 0;
}
