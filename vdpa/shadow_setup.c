/* SPDX-License-Identifier: MIT */
/*
 * vdpa/shadow_setup.c - the shadow side's set-up and teardown, the choice
 * of a switch strategy from the backend features, and memory of tern's own
 * that the device sees (see shadow.h; the switch itself is shadow.c).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vdpa/shadow_priv.h"

#define WANTED_BACKEND                                                                                      \
	(BF(VDPA_BF_IOTLB_MSG_V2) | BF(VDPA_BF_IOTLB_BATCH) | BF(VDPA_BF_IOTLB_ASID) | BF(VDPA_BF_SUSPEND) |   \
	 BF(VDPA_BF_RESUME) | BF(VDPA_BF_IOTLB_PERSIST) | BF(VDPA_BF_DESC_ASID) |                             \
	 BF(VDPA_BF_ENABLE_AFTER_DRIVER_OK))

uint64_t shadow_backend_wanted(uint64_t offered)
{
	uint64_t f = offered & WANTED_BACKEND;

	if (!(f & BF(VDPA_BF_IOTLB_MSG_V2)))
		f &= ~(BF(VDPA_BF_IOTLB_ASID) | BF(VDPA_BF_DESC_ASID));
	return f;
}

int shadow_init(struct shadow *sh, struct vdpa_dev *dev, uint64_t backend, const struct guest_mem *mem,
		unsigned nq, struct err *e)
{
	uint64_t first = 0, last = 0;
	int r;

	memset(sh, 0, sizeof(*sh));
	pthread_mutex_init(&sh->log_lock, NULL);
	sh->dev = dev;
	sh->backend = backend;
	sh->mem = mem;
	sh->config_call = -1;
	sh->own_group = -1;
	sh->relay.name = dev->name;
	if (nq > SHADOW_MAX_QUEUES)
		return err_set(e, -EINVAL, "%s: %u queues, at most %d", dev->name, nq, SHADOW_MAX_QUEUES);
	sh->nq = nq;
	for (unsigned i = 0; i < nq; i++)
		sh->q[i].guest_kick = sh->q[i].guest_call = sh->q[i].dev_kick = sh->q[i].dev_call = -1;
	if (iotlb_init(&sh->ram) < 0)
		return err_set(e, -ENOMEM, "out of memory for %s's shadow queues", dev->name);
	for (unsigned i = 0; i < mem->nr_regions; i++)
		if ((r = iotlb_map(&sh->ram, mem->regions[i].gpa, mem->regions[i].size,
				   mem->hva + mem->regions[i].offset, VDPA_PERM_RW)) < 0)
			return err_errno(e, r, "%s: guest memory map for shadow queues", dev->name);
	r = ops(sh)->get_iova_range(dev, &first, &last);
	if (r < 0)
		return err_errno(e, r, "%s: cannot read the device's usable IOVA range", dev->name);
	r = iova_init(&sh->iova, first, last, mem, e);
	if (r < 0)
		return r;
	for (unsigned i = 0; i < nq; i++) {
		sh->q[i].dev_kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		sh->q[i].dev_call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (sh->q[i].dev_kick < 0 || sh->q[i].dev_call < 0)
			return err_errno(e, -errno, "%s: eventfds for shadow queues", dev->name);
	}
	r = shadow_map_ram(sh);
	return r < 0 ? err_errno(e, r, "%s: cannot map guest memory into the vDPA device", dev->name) : 0;
}

void shadow_set_queue(struct shadow *sh, unsigned i, bool data, uint16_t num, const struct vdpa_vring_addr *guest,
		      int kick, int call)
{
	struct shadow_queue *q = &sh->q[i];

	q->enabled = true;
	q->data = data;
	q->num = num;
	q->guest = *guest;
	q->guest_kick = kick;
	q->guest_call = call;
}

void shadow_set_config_call(struct shadow *sh, int fd)
{
	sh->config_call = fd;
}

void shadow_exit(struct shadow *sh)
{
	relay_stop(&sh->relay);
	for (unsigned i = 0; i < sh->nq; i++) {
		struct shadow_queue *q = &sh->q[i];
		if (q->svq_live)
			svq_exit(&q->svq);
		if (q->ring)
			munmap(q->ring, q->ring_size);
		if (q->dev_kick >= 0)
			close(q->dev_kick);
		if (q->dev_call >= 0)
			close(q->dev_call);
		q->dev_kick = q->dev_call = -1;
		q->ring = NULL;
		q->svq_live = false;
	}
	for (unsigned i = 0; i < sh->nown; i++)
		munmap(sh->own[i].hva, sh->own[i].size);
	sh->nown = 0;
	iotlb_exit(&sh->ram);
}

/* ---- strategies ----------------------------------------------------------- */

/* Strategy 1 needs the data rings in a group of their own (not the data
 * buffers', not the CVQ's) that can move to ASID 1. */
bool shadow_desc_group_ok(struct shadow *sh)
{
	unsigned g = 0, dg = 0;
	bool any = false;

	if (!has(sh, VDPA_BF_DESC_ASID) || !has(sh, VDPA_BF_IOTLB_ASID) || ops(sh)->as_num(sh->dev) < 2)
		return false;
	for (unsigned i = 0; i < sh->nq; i++) {
		if (!sh->q[i].enabled || !sh->q[i].data)
			continue;
		if (ops(sh)->get_vring_desc_group(sh->dev, i, &dg) < 0 || ops(sh)->get_vring_group(sh->dev, i, &g) < 0)
			return false;
		if (dg == g || (any && dg != sh->desc_group))
			return false; /* rings move with buffers, or apart from each other */
		sh->desc_group = dg;
		any = true;
	}
	/* no other queue (the CVQ) may share the data rings' group */
	for (unsigned i = 0; i < sh->nq; i++)
		if (sh->q[i].enabled && !sh->q[i].data &&
		    (ops(sh)->get_vring_group(sh->dev, i, &g) < 0 || g == sh->desc_group))
			return false;
	return any;
}

unsigned shadow_pick(struct shadow *sh, const char **why)
{
	bool sr = has(sh, VDPA_BF_SUSPEND) && has(sh, VDPA_BF_RESUME);

	if (sr && shadow_desc_group_ok(sh)) {
		*why = "SUSPEND, RESUME and descriptor-ring ASIDs";
		return SHADOW_STRATEGY_ASID;
	}
	if (sr) {
		*why = "SUSPEND and RESUME, no descriptor-ring ASID";
		return SHADOW_STRATEGY_HOLE;
	}
	if (persist(sh)) {
		*why = has(sh, VDPA_BF_IOTLB_PERSIST) ? "no RESUME; mappings persist across reset (IOTLB_PERSIST)"
						     : "no RESUME; the device keeps its mappings across reset (VDUSE)";
		return SHADOW_STRATEGY_PERSIST;
	}
	*why = "no RESUME and no IOTLB_PERSIST: guest memory is remapped";
	return SHADOW_STRATEGY_REMAP;
}

int shadow_force(struct shadow *sh, unsigned s, struct err *e)
{
	const char *why = "";
	bool sr = has(sh, VDPA_BF_SUSPEND) && has(sh, VDPA_BF_RESUME);

	if (s < SHADOW_STRATEGY_ASID || s > SHADOW_STRATEGY_REMAP)
		return err_set(e, -EINVAL, "%s: switch strategy %u is not 1..4", sh->dev->name, s);
	bool asids = has(sh, VDPA_BF_DESC_ASID) && has(sh, VDPA_BF_IOTLB_ASID) && ops(sh)->as_num(sh->dev) >= 2;

	/* strategy 1's group layout is checked at the switch, once the
	 * driver has said which queues exist */
	if ((s == SHADOW_STRATEGY_ASID && !(sr && asids)) || (s == SHADOW_STRATEGY_HOLE && !sr) ||
	    (s == SHADOW_STRATEGY_PERSIST && !persist(sh)))
		return err_set(e, -EOPNOTSUPP, "%s: switch strategy %u needs backend features the device lacks (it "
					       "allows %u: %s)", sh->dev->name, s, shadow_pick(sh, &why), why);
	sh->forced = s;
	return 0;
}

void shadow_set_log(struct shadow *sh, struct dirty_log *log)
{
	pthread_mutex_lock(&sh->log_lock);
	sh->log = log;
	pthread_mutex_unlock(&sh->log_lock);
	if (sh->mode == SHADOW_SVQ)
		relay_set_log(&sh->relay, log);
}

/* ---- memory of tern's own ------------------------------------------------- */

int shadow_own_map(struct shadow *sh, uint64_t size, int group, void **hva, uint64_t *iova, unsigned *asid,
		   struct err *e)
{
	unsigned g = 0;
	int r;

	if (sh->nown >= SHADOW_MAX_OWN)
		return err_set(e, -ENOSPC, "%s: too many shadow mappings", sh->dev->name);
	/* isolated: the group is its own (no data queue in it) and can move */
	bool iso = group >= 0 && has(sh, VDPA_BF_IOTLB_ASID) && ops(sh)->as_num(sh->dev) >= 2;
	for (unsigned i = 0; iso && i < sh->nq; i++)
		if (sh->q[i].data && (ops(sh)->get_vring_group(sh->dev, i, &g) < 0 || g == (unsigned)group))
			iso = false;
	int fd = memfd_create("tern-shadow-own", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
		r = -errno;
		if (fd >= 0)
			close(fd);
		return err_errno(e, r, "%s: memory for the shadow control queue", sh->dev->name);
	}
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return err_errno(e, -errno, "%s: memory for the shadow control queue", sh->dev->name);
	if ((r = iova_alloc(&sh->iova, size, 4096, iova)) < 0) {
		munmap(p, size);
		return err_errno(e, r, "%s: no IOVA for the shadow control queue", sh->dev->name);
	}
	*asid = iso ? 1 : 0;
	r = ops(sh)->iotlb_update(sh->dev, *asid, *iova, size, p, VDPA_PERM_RW);
	if (r < 0) {
		iova_free(&sh->iova, *iova);
		munmap(p, size);
		return err_errno(e, r, "%s: map the shadow control queue in ASID %u", sh->dev->name, *asid);
	}
	sh->own[sh->nown++] = (struct shadow_own){ p, *iova, size, *asid };
	if (iso) {
		sh->own_group = group;
		sh->own_asid = 1;
	}
	*hva = p;
	return 0;
}

void shadow_own_unmap_all(struct shadow *sh)
{
	for (unsigned i = 0; i < sh->nown; i++) {
		struct shadow_own *o = &sh->own[i];
		ops(sh)->iotlb_invalidate(sh->dev, o->asid, o->iova, o->size);
		iova_free(&sh->iova, o->iova);
		munmap(o->hva, o->size);
	}
	sh->nown = 0;
	sh->own_group = -1;
	sh->own_asid = 0;
	for (unsigned i = 0; i < sh->nq; i++)
		sh->q[i].own_used = NULL;
}

void shadow_set_own_ring(struct shadow *sh, unsigned i, const uint16_t *used)
{
	sh->q[i].own_used = used;
}

int shadow_enable_data(struct shadow *sh)
{
	int r = 0;

	for (unsigned i = 0; r == 0 && i < sh->nq; i++)
		if (sh->q[i].enabled && sh->q[i].data)
			r = ops(sh)->set_vring_enable(sh->dev, i, true);
	return r;
}
