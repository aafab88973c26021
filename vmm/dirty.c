/* SPDX-License-Identifier: MIT */
/*
 * vmm/dirty.c - see dirty.h. KVM facts from its API documentation
 * (KVM_GET_DIRTY_LOG, KVM_CLEAR_DIRTY_LOG, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2)
 * and docs/switch.md (what shadow virtqueues add to it).
 */
#include "vmm/dirty.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm/vcpu.h"
#include "vmm/vm.h"

#define PAGE_SHIFT 12
#define CLEAR_CHUNK (64u * 1024) /* pages re-protected per KVM_CLEAR_DIRTY_LOG */

static int set_slot_logging(struct vm *vm, unsigned i, bool on)
{
	const struct guest_mem *m = &vm->mem;
	struct kvm_userspace_memory_region slot = {
		.slot = i,
		.flags = on ? KVM_MEM_LOG_DIRTY_PAGES : 0,
		.guest_phys_addr = m->regions[i].gpa,
		.memory_size = m->regions[i].size,
		.userspace_addr = (uint64_t)(uintptr_t)(m->hva + m->regions[i].offset),
	};

	return ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0 ? -errno : 0;
}

/* All slots or none: a slot that refuses to start logging turns the ones
 * before it off again (they would otherwise log, and cost, for ever). */
static int set_logging(struct vm *vm, bool on)
{
	int r = 0;

	for (unsigned i = 0; i < vm->mem.nr_regions; i++) {
		r = set_slot_logging(vm, i, on);
		if (r < 0 && on) {
			while (i--)
				if (set_slot_logging(vm, i, false) < 0)
					pr_warn("memory slot %u: cannot turn dirty logging off", i);
			return r;
		}
		if (r < 0)
			pr_warn("memory slot %u: cannot turn dirty logging off: %s", i, strerror(-r));
	}
	return r;
}


/* ---- dirty rings ---------------------------------------------------------- */

int dirty_ring_enable(struct vm *vm, unsigned entries, struct err *e)
{
	struct kvm_enable_cap cap = { .cap = KVM_CAP_DIRTY_LOG_RING_ACQ_REL };
	uint64_t bytes = (uint64_t)entries * sizeof(struct kvm_dirty_gfn);
	int max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, cap.cap);

	if (max <= 0) {
		cap.cap = KVM_CAP_DIRTY_LOG_RING;
		max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, cap.cap);
	}
	if (max <= 0)
		return err_set(e, -EOPNOTSUPP, "--dirty-ring: this KVM has no dirty ring (KVM_CAP_DIRTY_LOG_RING)");
	if (bytes > (uint64_t)max)
		return err_set(e, -EINVAL, "--dirty-ring: %u entries exceed this KVM's %llu", entries,
			       (unsigned long long)((uint64_t)max / sizeof(struct kvm_dirty_gfn)));
	cap.args[0] = bytes;
	if (ioctl(vm->vm_fd, KVM_ENABLE_CAP, &cap) < 0)
		return err_errno(e, -errno, "--dirty-ring: cannot enable a ring of %u entries", entries);
	vm->ring_entries = entries;
	return 0;
}

int dirty_ring_map(struct vcpu *v, struct err *e)
{
	size_t bytes = (size_t)v->vm->ring_entries * sizeof(struct kvm_dirty_gfn);
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd,
		       (off_t)KVM_DIRTY_LOG_PAGE_OFFSET * sysconf(_SC_PAGESIZE));

	if (p == MAP_FAILED)
		return err_errno(e, -errno, "vCPU %u: cannot map its dirty ring", v->id);
	v->ring = p;
	v->ring_next = 0;
	return 0;
}

void dirty_ring_unmap(struct vcpu *v)
{
	if (v->ring)
		munmap(v->ring, (size_t)v->vm->ring_entries * sizeof(struct kvm_dirty_gfn));
	v->ring = NULL;
}

/* Takes every entry KVM published in v's ring and marks its page in bm
 * (atomically when shared), handing the entry back for reset. Returns the
 * pages newly set. Caller holds vm->ring_lock. */
static uint64_t harvest(struct vm *vm, struct vcpu *v, uint64_t *plain, _Atomic uint64_t *shared)
{
	const struct guest_mem *m = &vm->mem;
	uint32_t mask = vm->ring_entries - 1;
	uint64_t n = 0;

	for (;;) {
		struct kvm_dirty_gfn *g = &v->ring[v->ring_next & mask];
		/* acquire: slot and offset are valid once DIRTY is seen */
		if (!(__atomic_load_n(&g->flags, __ATOMIC_ACQUIRE) & KVM_DIRTY_GFN_F_DIRTY))
			break;
		uint32_t slot = g->slot & 0xffff;
		uint64_t off = g->offset;
		if (slot < m->nr_regions && off < m->regions[slot].size >> PAGE_SHIFT) {
			uint64_t p = (m->regions[slot].offset >> PAGE_SHIFT) + off, bit = 1ull << (p % 64);
			if (plain) {
				n += !(plain[p / 64] & bit);
				plain[p / 64] |= bit;
			} else if (shared) {
				atomic_fetch_or(&shared[p / 64], bit);
			}
		}
		/* release: KVM may reuse the entry once it reads RESET */
		__atomic_store_n(&g->flags, KVM_DIRTY_GFN_F_RESET, __ATOMIC_RELEASE);
		v->ring_next++;
	}
	return n;
}

/* Harvests every vCPU's ring, then lets KVM reuse the entries. */
static int64_t harvest_all(struct vm *vm, uint64_t *plain, _Atomic uint64_t *shared)
{
	int64_t n = 0;

	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		if (vm->vcpus[i].ring)
			n += (int64_t)harvest(vm, &vm->vcpus[i], plain, shared);
	if (ioctl(vm->vm_fd, KVM_RESET_DIRTY_RINGS, 0) < 0)
		return -errno;
	return n;
}

void dirty_ring_full(struct vcpu *v)
{
	struct vm *vm = v->vm;

	pthread_mutex_lock(&vm->ring_lock);
	int64_t r = harvest_all(vm, NULL, vm->ring_log ? vm->ring_log->tern : NULL);
	pthread_mutex_unlock(&vm->ring_lock);
	if (r < 0)
		vm_fail(vm, "vCPU %u: KVM_RESET_DIRTY_RINGS: %s", v->id, strerror((int)-r));
}

int dirty_start(struct dirty_log *d, struct vm *vm, struct err *e)
{
	uint64_t words;
	int r;

	memset(d, 0, sizeof(*d));
	d->vm = vm;
	d->npages = vm->mem.size >> PAGE_SHIFT;
	words = (d->npages + 63) / 64;
	d->tern = calloc(words, sizeof(*d->tern));
	d->kvm = calloc(words, sizeof(*d->kvm));
	if (!d->tern || !d->kvm) {
		dirty_stop(d);
		return err_set(e, -ENOMEM, "out of memory for dirty bitmaps");
	}
	/* tern's bitmap starts full: everything is unsent at first */
	for (uint64_t i = 0; i < words; i++)
		atomic_store(&d->tern[i], ~0ull);
	if (d->npages % 64)
		atomic_store(&d->tern[words - 1], (1ull << (d->npages % 64)) - 1);
	/* The check returns the flags KVM supports. With INITIALLY_SET,
	 * turning logging on write-protects nothing: the bitmap starts full
	 * and each KVM_CLEAR_DIRTY_LOG chunk protects what it clears, so the
	 * cost is spread over the first sync instead of one long stall. */
	d->ring = vm->ring_entries != 0;
	int caps = d->ring ? 0 : ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2);
	if (caps > 0) {
		struct kvm_enable_cap cap = { .cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 };
		cap.args[0] = KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | ((uint64_t)caps & KVM_DIRTY_LOG_INITIALLY_SET);
		d->manual = ioctl(vm->vm_fd, KVM_ENABLE_CAP, &cap) == 0;
		d->initially_set = d->manual && (caps & KVM_DIRTY_LOG_INITIALLY_SET);
	}
	if (d->ring) {
		/* entries left from an earlier log belong to nobody */
		pthread_mutex_lock(&vm->ring_lock);
		harvest_all(vm, NULL, NULL);
		vm->ring_log = d;
		pthread_mutex_unlock(&vm->ring_lock);
	}
	r = set_logging(vm, true);
	if (r < 0) {
		dirty_stop(d);
		return err_errno(e, r, "cannot enable dirty logging");
	}
	d->started = true;
	return 0;
}

void dirty_stop(struct dirty_log *d)
{
	if (d->started)
		set_logging(d->vm, false);
	if (d->ring && d->vm) {
		pthread_mutex_lock(&d->vm->ring_lock);
		if (d->vm->ring_log == d)
			d->vm->ring_log = NULL;
		pthread_mutex_unlock(&d->vm->ring_lock);
	}
	free((void *)d->tern);
	free(d->kvm);
	d->tern = NULL;
	d->kvm = NULL;
	d->started = false;
}

void dirty_mark(struct dirty_log *d, gpa_t gpa, uint64_t len)
{
	const struct guest_mem *m = &d->vm->mem;
	uint64_t end;

	if (!len || add_overflows(gpa, len, &end))
		return;
	for (unsigned i = 0; i < m->nr_regions; i++) {
		const struct mem_region *r = &m->regions[i];
		uint64_t lo = gpa > r->gpa ? gpa : r->gpa, hi = end < r->gpa + r->size ? end : r->gpa + r->size;
		if (lo >= hi)
			continue;
		uint64_t first = (r->offset + (lo - r->gpa)) >> PAGE_SHIFT;
		uint64_t last = (r->offset + (hi - 1 - r->gpa)) >> PAGE_SHIFT;
		for (uint64_t p = first; p <= last; p++)
			atomic_fetch_or(&d->tern[p / 64], 1ull << (p % 64));
	}
}

int64_t dirty_sync(struct dirty_log *d, uint64_t *out, struct err *e)
{
	const struct guest_mem *m = &d->vm->mem;
	int64_t count = 0;

	if (d->ring) {
		pthread_mutex_lock(&d->vm->ring_lock);
		count = harvest_all(d->vm, out, NULL);
		pthread_mutex_unlock(&d->vm->ring_lock);
		if (count < 0)
			return err_errno(e, (int)count, "KVM_RESET_DIRTY_RINGS");
	}
	for (unsigned s = 0; !d->ring && s < m->nr_regions; s++) {
		uint64_t pages = m->regions[s].size >> PAGE_SHIFT, base = m->regions[s].offset >> PAGE_SHIFT;
		struct kvm_dirty_log log = { .slot = s, .dirty_bitmap = d->kvm };

		memset(d->kvm, 0, (pages + 63) / 64 * 8);
		if (ioctl(d->vm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0)
			return err_errno(e, -errno, "KVM_GET_DIRTY_LOG (slot %u)", s);
		/* Manual protection: re-arm exactly what we collected, before
		 * copying it anywhere, so a write after this point is caught
		 * again by the next sync. */
		for (uint64_t first = 0; d->manual && first < pages; first += CLEAR_CHUNK) {
			uint64_t n = pages - first < CLEAR_CHUNK ? pages - first : CLEAR_CHUNK;
			struct kvm_clear_dirty_log clr = { .slot = s, .num_pages = (uint32_t)n, .first_page = first,
							   .dirty_bitmap = d->kvm + first / 64 };
			if (ioctl(d->vm->vm_fd, KVM_CLEAR_DIRTY_LOG, &clr) < 0)
				return err_errno(e, -errno, "KVM_CLEAR_DIRTY_LOG (slot %u)", s);
		}
		for (uint64_t p = 0; p < pages; p++) {
			if (!(d->kvm[p / 64] & (1ull << (p % 64))))
				continue;
			uint64_t g = base + p;
			if (!(out[g / 64] & (1ull << (g % 64))))
				count++;
			out[g / 64] |= 1ull << (g % 64);
		}
	}
	/* then tern's own marks, taken atomically word by word */
	for (uint64_t w = 0; w < (d->npages + 63) / 64; w++) {
		uint64_t bits = atomic_exchange(&d->tern[w], 0);
		count += __builtin_popcountll(bits & ~out[w]);
		out[w] |= bits;
	}
	return count;
}
