/* SPDX-License-Identifier: MIT */
#include "vdpa/iotlb.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vdpa/vdpa.h"

int iotlb_init(struct iotlb *t)
{
	t->nr = 0;
	t->entries = calloc(IOTLB_MAX_ENTRIES, sizeof(*t->entries));
	return t->entries ? 0 : -ENOMEM;
}

void iotlb_exit(struct iotlb *t)
{
	free(t->entries);
	t->entries = NULL;
	t->nr = 0;
}

void iotlb_clear(struct iotlb *t)
{
	t->nr = 0;
}

/* Index of the first entry whose end lies above iova. */
static unsigned lower_bound(const struct iotlb *t, uint64_t iova)
{
	unsigned lo = 0, hi = t->nr;

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		if (t->entries[mid].iova + t->entries[mid].size <= iova)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int iotlb_map(struct iotlb *t, uint64_t iova, uint64_t size, void *hva, unsigned perm)
{
	uint64_t end;
	unsigned i;

	if (!size || add_overflows(iova, size - 1, &end) || !(perm & VDPA_PERM_RW))
		return -EINVAL;
	i = lower_bound(t, iova);
	if (i < t->nr && t->entries[i].iova <= end)
		return -EEXIST;
	if (t->nr == IOTLB_MAX_ENTRIES)
		return -ENOSPC;
	memmove(&t->entries[i + 1], &t->entries[i], (t->nr - i) * sizeof(t->entries[0]));
	t->entries[i] = (struct iotlb_entry){ .iova = iova, .size = size, .hva = hva, .perm = perm };
	t->nr++;
	return 0;
}

int iotlb_unmap(struct iotlb *t, uint64_t iova, uint64_t size)
{
	uint64_t end;

	if (!size || add_overflows(iova, size, &end))
		return -EINVAL;
	for (unsigned i = lower_bound(t, iova); i < t->nr && t->entries[i].iova < end;) {
		struct iotlb_entry *en = &t->entries[i];
		uint64_t en_end = en->iova + en->size;
		if (en->iova < iova) {
			/* keep the head, and the tail as a new entry if any */
			struct iotlb_entry tail = { end, en_end > end ? en_end - end : 0,
						    en->hva + (end - en->iova), en->perm };
			en->size = iova - en->iova;
			i++;
			if (tail.size) {
				if (t->nr == IOTLB_MAX_ENTRIES)
					return -ENOSPC;
				memmove(&t->entries[i + 1], &t->entries[i], (t->nr - i) * sizeof(*en));
				t->entries[i] = tail;
				t->nr++;
				return 0;
			}
		} else if (en_end > end) {
			en->hva += end - en->iova;
			en->size = en_end - end;
			en->iova = end;
			return 0;
		} else {
			memmove(en, en + 1, (t->nr - i - 1) * sizeof(*en));
			t->nr--;
		}
	}
	return 0;
}

/* Walks [iova, iova+len) mapping by mapping; fn gets host pieces. */
static int walk(const struct iotlb *t, uint64_t iova, size_t len, unsigned perm,
		void (*fn)(uint8_t *hva, size_t n, size_t done, void *arg), void *arg)
{
	uint64_t end;
	size_t done = 0;

	if (add_overflows(iova, len, &end))
		return -EFAULT;
	/* check first, copy second: a failed access changes nothing */
	for (int pass = 0; pass < 2; pass++) {
		uint64_t cur = iova;
		unsigned i = lower_bound(t, iova);
		done = 0;
		while (cur < end) {
			if (i >= t->nr || t->entries[i].iova > cur || (t->entries[i].perm & perm) != perm)
				return -EFAULT;
			const struct iotlb_entry *en = &t->entries[i];
			uint64_t n = en->iova + en->size - cur;
			if (n > end - cur)
				n = end - cur;
			if (pass)
				fn(en->hva + (cur - en->iova), (size_t)n, done, arg);
			cur += n;
			done += (size_t)n;
			i++;
		}
	}
	return 0;
}

static void copy_out(uint8_t *hva, size_t n, size_t done, void *arg)
{
	memcpy((uint8_t *)arg + done, hva, n);
}

static void copy_in(uint8_t *hva, size_t n, size_t done, void *arg)
{
	memcpy(hva, (const uint8_t *)arg + done, n);
}

int iotlb_read(const struct iotlb *t, uint64_t iova, void *dst, size_t len)
{
	return walk(t, iova, len, VDPA_PERM_RO, copy_out, dst);
}

int iotlb_write(const struct iotlb *t, uint64_t iova, const void *src, size_t len)
{
	return walk(t, iova, len, VDPA_PERM_WO, copy_in, (void *)(uintptr_t)src);
}

static void nothing(uint8_t *hva, size_t n, size_t done, void *arg)
{
	(void)hva, (void)n, (void)done, (void)arg;
}

bool iotlb_access_ok(const struct iotlb *t, uint64_t iova, size_t len, unsigned perm)
{
	return walk(t, iova, len, perm, nothing, NULL) == 0;
}

void *iotlb_ptr(const struct iotlb *t, uint64_t iova, size_t len, unsigned perm)
{
	uint64_t end;
	unsigned i = lower_bound(t, iova);

	if (add_overflows(iova, len, &end) || i >= t->nr)
		return NULL;
	const struct iotlb_entry *en = &t->entries[i];
	if (en->iova > iova || end > en->iova + en->size || (en->perm & perm) != perm)
		return NULL;
	return en->hva + (iova - en->iova);
}
