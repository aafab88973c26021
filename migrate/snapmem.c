/* SPDX-License-Identifier: MIT */
/*
 * migrate/snapmem.c - snapshot memory files and the dirty tracking behind
 * diff snapshots (see snapmem.h).
 */
#include "migrate/snapmem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/vm.h"


int snapmem_track_start(struct vm *vm, struct err *e)
{
	struct snap_lineage *l;
	int r;

	if (vm->cfg.nr_nets)
		return err_set(e, -EOPNOTSUPP,
			       "--track-dirty: the vDPA network device writes guest memory outside KVM's dirty log, "
			       "so diff snapshots of a VM with --net are not possible yet (full snapshots are)");
	if (vm->cfg.nr_disks)
		return err_set(e, -EOPNOTSUPP, "--track-dirty: diff snapshots of a VM with --disk are not possible yet "
					       "(full snapshots are)");
	l = calloc(1, sizeof(*l));
	if (!l)
		return err_set(e, -ENOMEM, "out of memory for dirty tracking");
	l->words = ((vm->mem.size / PAGE) + 63) / 64;
	l->pending = calloc(l->words, sizeof(uint64_t));
	if (!l->pending) {
		free(l);
		return err_set(e, -ENOMEM, "out of memory for dirty tracking");
	}
	r = dirty_start(&l->log, vm, e);
	/* the first sync reports every page: nothing is a diff of anything yet */
	if (r == 0 && dirty_sync(&l->log, l->pending, e) < 0)
		r = -EIO;
	if (r < 0) {
		dirty_stop(&l->log);
		free(l->pending);
		free(l);
		return r;
	}
	memset(l->pending, 0, l->words * sizeof(uint64_t));
	vm->lineage = l;
	return 0;
}

void snapmem_track_stop(struct vm *vm)
{
	struct snap_lineage *l = vm->lineage;

	if (!l)
		return;
	dirty_stop(&l->log);
	free(l->pending);
	free(l);
	vm->lineage = NULL;
}

int snapmem_collect(struct vm *vm, struct err *e)
{
	struct snap_lineage *l = vm->lineage;

	/* dirty_sync ORs into pending: a failed snapshot loses nothing */
	return l && dirty_sync(&l->log, l->pending, e) < 0 ? -EIO : 0;
}

void snapmem_set_base(struct vm *vm, const char *dir, const char *mem_name)
{
	struct snap_lineage *l = vm->lineage;

	if (!l)
		return;
	memset(l->pending, 0, l->words * sizeof(uint64_t));
	snprintf(l->dir, sizeof(l->dir), "%s", dir);
	snprintf(l->mem_name, sizeof(l->mem_name), "%s", mem_name);
	l->has_base = true;
}

static bool page_set(const uint64_t *pages, uint64_t pg)
{
	return (pages[pg / 64] >> (pg % 64)) & 1;
}

int snapmem_write(const struct guest_mem *m, int fd, const uint64_t *pages, uint64_t *written, struct err *e)
{
	uint64_t off = 0, data, hole;

	*written = 0;
	if (ftruncate(fd, (off_t)m->size) < 0)
		return err_errno(e, -errno, "cannot size the memory file");
	while (mem_next_data(m, off, &data, &hole)) {
		for (uint64_t p = data & ~(uint64_t)(PAGE - 1); p < hole; p += PAGE) {
			uint64_t pg = (uint64_t)p / PAGE;
			if (pages) {
				/* skip whole clean words quickly: diffs are sparse */
				if (!pages[pg / 64] && !(pg % 64)) {
					p += (64 - 1) * (uint64_t)PAGE;
					continue;
				}
				if (!page_set(pages, pg))
					continue;
			}
			if (page_is_zero(m->hva + p))
				continue;
			int r = pwrite_all(fd, m->hva + p, PAGE, (off_t)p);
			if (r < 0)
				return err_errno(e, r, "cannot write the memory file");
			(*written)++;
		}
		off = hole;
	}
	if (fsync(fd) < 0)
		return err_errno(e, -errno, "fsync of the memory file");
	return 0;
}

int snapmem_apply(struct guest_mem *m, const char *path, const uint64_t *pages, struct err *e)
{
	uint64_t npages = m->size / PAGE;
	int fd = open_regular(path, "snapshot memory", e), r = 0;
	off_t size;

	if (fd < 0)
		return fd;
	size = lseek(fd, 0, SEEK_END);
	if (size != (off_t)m->size) {
		r = err_set(e, -EINVAL, "snapshot memory '%s' has %lld bytes, the snapshot needs %llu", path,
			    (long long)size, (unsigned long long)m->size);
		goto out;
	}
	for (uint64_t pg = 0; pg < npages; pg++) {
		if (!page_set(pages, pg))
			continue;
		/* one read per run of set pages */
		uint64_t end = pg + 1;
		while (end < npages && page_set(pages, end))
			end++;
		r = pread_all(fd, m->hva + pg * PAGE, (end - pg) * PAGE, (off_t)(pg * PAGE));
		if (r < 0) {
			r = err_errno(e, r, "cannot read snapshot memory '%s'", path);
			goto out;
		}
		pg = end;
	}
out:
	close(fd);
	return r;
}
