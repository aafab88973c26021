/* SPDX-License-Identifier: MIT */
#include "vmm/memory.h"

#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static void mem_layout(struct guest_mem *mem, uint64_t size)
{
	mem->size = size;
	mem->regions[0] = (struct mem_region){ .gpa = 0, .size = size < MEM_HOLE_START ? size : MEM_HOLE_START };
	mem->nr_regions = 1;
	if (size > MEM_HOLE_START) {
		mem->regions[1] = (struct mem_region){
			.gpa = MEM_HOLE_END, .size = size - MEM_HOLE_START, .offset = MEM_HOLE_START };
		mem->nr_regions = 2;
	}
}

int mem_init(struct guest_mem *mem, uint64_t size, struct err *e)
{
	long page = sysconf(_SC_PAGESIZE);
	int r;

	memset(mem, 0, sizeof(*mem));
	mem->fd = -1;
	if (size < MEM_MIN_SIZE)
		return err_set(e, -EINVAL, "memory size %llu MiB is too small (minimum %llu MiB)",
			       (unsigned long long)(size / MiB), (unsigned long long)(MEM_MIN_SIZE / MiB));
	if (size % (uint64_t)page)
		return err_set(e, -EINVAL, "memory size must be a multiple of %ld bytes", page);

	mem->fd = memfd_create("tern-guest-ram", MFD_CLOEXEC);
	if (mem->fd < 0)
		return err_errno(e, -errno, "memfd_create for guest memory");
	if (ftruncate(mem->fd, (off_t)size) < 0) {
		r = err_errno(e, -errno, "cannot size guest memory to %llu MiB", (unsigned long long)(size / MiB));
		goto err_close;
	}
	mem->hva = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, mem->fd, 0);
	if (mem->hva == MAP_FAILED) {
		mem->hva = NULL;
		r = err_errno(e, -errno, "cannot map %llu MiB of guest memory", (unsigned long long)(size / MiB));
		goto err_close;
	}
	mem_layout(mem, size);
	return 0;

err_close:
	close(mem->fd);
	mem->fd = -1;
	return r;
}

/* Copies the data extents of a sparse snapshot memory file into RAM that
 * mem_init() made (holes are zero there already). */
static int mem_copy_file(struct guest_mem *mem, int fd, const char *path, struct err *e)
{
	off_t off = 0, size = (off_t)mem->size;

	while (off < size) {
		off_t data = lseek(fd, off, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			break; /* only holes remain */
		if (data < 0)
			return err_errno(e, -errno, "cannot read the extents of '%s'", path);
		off_t hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0 || hole > size)
			hole = size;
		int r = pread_all(fd, mem->hva + data, (size_t)(hole - data), data);
		if (r < 0)
			return err_errno(e, r, "cannot read snapshot memory '%s'", path);
		off = hole;
	}
	return 0;
}

int mem_init_file(struct guest_mem *mem, const char *path, uint64_t size, bool copy, struct err *e)
{
	struct stat st;
	int fd, r;

	memset(mem, 0, sizeof(*mem));
	mem->fd = -1;
	fd = open_regular(path, "snapshot memory", e);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0) {
		r = err_errno(e, -errno, "cannot stat '%s'", path);
		goto out_close;
	}
	if ((uint64_t)st.st_size != size) {
		r = err_set(e, -EINVAL, "snapshot memory '%s' has %lld bytes, the snapshot needs %llu", path,
			    (long long)st.st_size, (unsigned long long)size);
		goto out_close;
	}
	if (copy) {
		/* shared memfd RAM, as a device that maps guest memory itself
		 * (kernel vhost-vdpa, VDUSE) requires; costs a read of the file */
		r = mem_init(mem, size, e);
		if (r == 0)
			r = mem_copy_file(mem, fd, path, e);
		if (r < 0)
			mem_destroy(mem);
		goto out_close;
	}
	mem->hva = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, 0);
	if (mem->hva == MAP_FAILED) {
		mem->hva = NULL;
		r = err_errno(e, -errno, "cannot map snapshot memory '%s'", path);
		goto out_close;
	}
	mem->fd = fd;
	mem->is_file = true;
	mem_layout(mem, size);
	return 0;

out_close:
	close(fd);
	return r;
}

bool mem_next_data(const struct guest_mem *mem, uint64_t off, uint64_t *data, uint64_t *hole)
{
	off_t d, h;

	if (off >= mem->size)
		return false;
	if (mem->is_file || mem->fd < 0) {
		*data = off;
		*hole = mem->size;
		return true;
	}
	d = lseek(mem->fd, (off_t)off, SEEK_DATA);
	if (d < 0)
		return false; /* ENXIO: only holes remain */
	h = lseek(mem->fd, d, SEEK_HOLE);
	*data = (uint64_t)d;
	*hole = h < 0 || (uint64_t)h > mem->size ? mem->size : (uint64_t)h;
	return true;
}

void mem_destroy(struct guest_mem *mem)
{
	if (mem->hva)
		munmap(mem->hva, mem->size);
	if (mem->fd >= 0)
		close(mem->fd);
	mem->hva = NULL;
	mem->fd = -1;
	mem->nr_regions = 0;
}

void *mem_ptr(const struct guest_mem *mem, gpa_t gpa, uint64_t len)
{
	uint64_t end;

	if (add_overflows(gpa, len, &end))
		return NULL;
	for (unsigned i = 0; i < mem->nr_regions; i++) {
		const struct mem_region *r = &mem->regions[i];
		if (gpa >= r->gpa && end <= r->gpa + r->size)
			return mem->hva + r->offset + (gpa - r->gpa);
	}
	return NULL;
}

gpa_t mem_low_end(const struct guest_mem *mem)
{
	return mem->nr_regions ? mem->regions[0].size : 0;
}

gpa_t mem_top(const struct guest_mem *mem)
{
	if (!mem->nr_regions)
		return 0;
	const struct mem_region *r = &mem->regions[mem->nr_regions - 1];
	return r->gpa + r->size;
}

int mem_register_kvm(const struct guest_mem *mem, int vm_fd, struct err *e)
{
	for (unsigned i = 0; i < mem->nr_regions; i++) {
		struct kvm_userspace_memory_region slot = {
			.slot = i,
			.guest_phys_addr = mem->regions[i].gpa,
			.memory_size = mem->regions[i].size,
			.userspace_addr = (uint64_t)(uintptr_t)(mem->hva + mem->regions[i].offset),
		};
		if (ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0)
			return err_errno(e, -errno, "KVM_SET_USER_MEMORY_REGION (slot %u, %llu MiB)", i,
					 (unsigned long long)(mem->regions[i].size / MiB));
	}
	return 0;
}
