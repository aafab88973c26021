/* SPDX-License-Identifier: MIT */
/*
 * vdpa/iova.c - see iova.h. First fit over the free space: the device's
 * range minus RAM minus allocations, searched from the top of RAM upward,
 * then from the bottom of the range up to the top of RAM.
 */
#include "vdpa/iova.h"

#include <errno.h>
#include <string.h>

int iova_init(struct iova_space *s, uint64_t first, uint64_t last, const struct guest_mem *m, struct err *e)
{
	memset(s, 0, sizeof(*s));
	if (first > last)
		return err_set(e, -ERANGE, "the device's IOVA range [0x%llx, 0x%llx] is empty", (unsigned long long)first,
			       (unsigned long long)last);
	s->first = first;
	s->last = last;
	for (unsigned i = 0; i < m->nr_regions; i++) {
		const struct mem_region *r = &m->regions[i];
		if (r->gpa < first || r->gpa + r->size - 1 > last)
			return err_set(e, -ERANGE,
				       "guest RAM at 0x%llx-0x%llx lies outside the device's IOVA range [0x%llx, 0x%llx]: "
				       "it cannot be mapped at IOVA = GPA",
				       (unsigned long long)r->gpa, (unsigned long long)(r->gpa + r->size - 1),
				       (unsigned long long)first, (unsigned long long)last);
		s->ram[s->nr_ram++] = (struct iova_range){ r->gpa, r->size };
		if (r->gpa + r->size > s->ram_top)
			s->ram_top = r->gpa + r->size;
	}
	return 0;
}

static bool overlaps(const struct iova_range *r, uint64_t start, uint64_t end_incl)
{
	return start <= r->start + (r->size - 1) && r->start <= end_incl;
}

bool iova_busy(const struct iova_space *s, uint64_t iova, uint64_t len)
{
	uint64_t end;

	if (!len || __builtin_add_overflow(iova, len - 1, &end))
		return true;
	for (unsigned i = 0; i < s->nr_ram; i++)
		if (overlaps(&s->ram[i], iova, end))
			return true;
	for (unsigned i = 0; i < s->nr; i++)
		if (overlaps(&s->alloc[i], iova, end))
			return true;
	return false;
}

/* The first free aligned start in [lo, hi] (inclusive bounds) where size
 * bytes fit, stepping over whatever is in the way. */
static bool fit(const struct iova_space *s, uint64_t lo, uint64_t hi, uint64_t size, uint64_t align, uint64_t *out)
{
	uint64_t at = lo;

	for (;;) {
		uint64_t end;
		if (at & (align - 1)) {
			if (__builtin_add_overflow(at | (align - 1), 1, &at))
				return false;
		}
		if (at > hi || __builtin_add_overflow(at, size - 1, &end) || end > hi)
			return false;
		/* the first obstacle in [at, end], if any: jump past it */
		uint64_t next = 0;
		bool blocked = false;
		for (unsigned i = 0; i < s->nr_ram + s->nr; i++) {
			const struct iova_range *r = i < s->nr_ram ? &s->ram[i] : &s->alloc[i - s->nr_ram];
			if (overlaps(r, at, end)) {
				uint64_t past = r->start + r->size; /* may be 2^64: then nothing fits past it */
				if (past == 0 || past < r->start)
					return false;
				if (!blocked || past > next)
					next = past;
				blocked = true;
			}
		}
		if (!blocked) {
			*out = at;
			return true;
		}
		at = next;
	}
}

int iova_alloc(struct iova_space *s, uint64_t size, uint64_t align, uint64_t *iova)
{
	uint64_t at;

	if (!size || size > UINT64_MAX - PAGE || align < PAGE || (align & (align - 1)))
		return -EINVAL;
	size = (size + PAGE - 1) & ~(uint64_t)(PAGE - 1);
	if (s->nr == IOVA_MAX_ALLOCS)
		return -ENOSPC;
	/* above RAM first, then anywhere below its top */
	bool found = (s->ram_top <= s->last && fit(s, s->ram_top > s->first ? s->ram_top : s->first, s->last, size,
						   align, &at)) ||
		     fit(s, s->first, s->ram_top ? s->ram_top - 1 : s->first, size, align, &at);
	if (!found)
		return -ENOSPC;
	unsigned i = s->nr;
	while (i > 0 && s->alloc[i - 1].start > at) {
		s->alloc[i] = s->alloc[i - 1];
		i--;
	}
	s->alloc[i] = (struct iova_range){ at, size };
	s->nr++;
	*iova = at;
	return 0;
}

int iova_free(struct iova_space *s, uint64_t iova)
{
	for (unsigned i = 0; i < s->nr; i++) {
		if (s->alloc[i].start != iova)
			continue;
		memmove(&s->alloc[i], &s->alloc[i + 1], (s->nr - i - 1) * sizeof(s->alloc[0]));
		s->nr--;
		return 0;
	}
	return -ENOENT;
}
