/* SPDX-License-Identifier: MIT */
/*
 * vdpa/shadow.c - see shadow.h. The bring-up order follows
 * Linux's vhost-vdpa and QEMU's hw/virtio/vhost-vdpa.c (features, then each queue's num,
 * base, addresses, eventfds and enable, then DRIVER_OK); the switch
 * sequences are explained in docs/switch.md.
 * Set-up, strategy choice and tern's own memory are in shadow_setup.c,
 * freezing and thawing in shadow_freeze.c.
 *
 * A switch is a list of backend calls; a rollback undoes exactly what the
 * switch changed (the per-queue repointed flags, and struct switch_done
 * below). Tests make any call fail by giving the shadow a device wrapped
 * in vdpa/fault_vdpa.h: there is no fault hook here.
 */
#include "vdpa/shadow.h"
#include "vdpa/shadow_priv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#define S_RUNNING (VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER | VIRTIO_S_FEATURES_OK)

/* What one switch has done so far (for its rollback). */
struct switch_done {
	bool suspended, reset, ram_unmapped, asid_moved;
};

int shadow_map_ram(struct shadow *sh)
{
	const struct guest_mem *m = sh->mem;
	int r = ops(sh)->iotlb_batch_begin(sh->dev, 0);

	if (r < 0)
		return r;
	for (unsigned i = 0; r == 0 && i < m->nr_regions; i++)
		r = ops(sh)->iotlb_update(sh->dev, 0, m->regions[i].gpa, m->regions[i].size,
						    m->hva + m->regions[i].offset, VDPA_PERM_RW);
	/* ended even after a failure: an open batch would refuse every later
	 * message for another ASID */
	int end = ops(sh)->iotlb_batch_end(sh->dev, 0);
	return r < 0 ? r : end;
}

static int unmap_ram(struct shadow *sh)
{
	const struct guest_mem *m = sh->mem;
	int r = ops(sh)->iotlb_batch_begin(sh->dev, 0);

	if (r < 0)
		return r;
	for (unsigned i = 0; r == 0 && i < m->nr_regions; i++)
		r = ops(sh)->iotlb_invalidate(sh->dev, 0, m->regions[i].gpa, m->regions[i].size);
	int end = ops(sh)->iotlb_batch_end(sh->dev, 0);
	return r < 0 ? r : end;
}

/* ---- shadow rings --------------------------------------------------------- */

static unsigned ring_asid(const struct shadow *sh, unsigned strategy)
{
	(void)sh;
	return strategy == SHADOW_STRATEGY_ASID ? 1 : 0;
}

/* Allocates, places and maps every data queue's shadow ring (one batch):
 * done before the blackout, since a new mapping disturbs nothing. */
static int rings_map(struct shadow *sh, unsigned strategy, struct err *e)
{
	unsigned asid = ring_asid(sh, strategy);
	int r = 0;

	for (unsigned i = 0; i < sh->nq; i++) {
		struct shadow_queue *q = &sh->q[i];
		if (!q->enabled || !q->data)
			continue;
		/* shared file memory: a VA-mode parent (VDUSE) silently skips
		 * private anonymous ranges (vdpa-reference §1.5) */
		q->ring_size = svq_ring_size(q->num);
		int fd = memfd_create("tern-shadow-ring", MFD_CLOEXEC);
		if (fd < 0 || ftruncate(fd, (off_t)q->ring_size) < 0) {
			r = -errno;
			if (fd >= 0)
				close(fd);
			return err_errno(e, r, "%s: memory for shadow ring %u", sh->dev->name, i);
		}
		q->ring = mmap(NULL, q->ring_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		close(fd);
		if (q->ring == MAP_FAILED) {
			q->ring = NULL;
			return err_errno(e, -errno, "%s: memory for shadow ring %u", sh->dev->name, i);
		}
		if ((r = iova_alloc(&sh->iova, q->ring_size, 4096, &q->iova)) < 0)
			return err_errno(e, r, "%s: no IOVA for shadow ring %u", sh->dev->name, i);
	}
	if ((r = ops(sh)->iotlb_batch_begin(sh->dev, asid)) < 0)
		return err_errno(e, r, "%s: IOTLB batch begin", sh->dev->name);
	for (unsigned i = 0; i < sh->nq; i++) {
		struct shadow_queue *q = &sh->q[i];
		if (!q->ring)
			continue;
		r = ops(sh)->iotlb_update(sh->dev, asid, q->iova, q->ring_size, q->ring, VDPA_PERM_RW);
		if (r < 0) {
			/* a batch the kernel has half applied is ended, then undone */
			ops(sh)->iotlb_batch_end(sh->dev, asid);
			return err_errno(e, r, "%s: map shadow ring %u at IOVA 0x%llx in ASID %u", sh->dev->name, i,
					 (unsigned long long)q->iova, asid);
		}
		q->mapped = true;
		sh->stats.maps++;
	}
	r = ops(sh)->iotlb_batch_end(sh->dev, asid);
	return r < 0 ? err_errno(e, r, "%s: IOTLB batch end", sh->dev->name) : 0;
}

/* Removes what rings_map() made. A mapping the device lost in a reset is
 * gone already; the invalidate of it is harmless. Nothing here can be
 * rolled back, so a refused call is made once more before the mapping is
 * given up (reported: the device may keep it). */
static void rings_unmap(struct shadow *sh, unsigned strategy)
{
	unsigned asid = ring_asid(sh, strategy);
	bool batched = ops(sh)->iotlb_batch_begin(sh->dev, asid) == 0;

	for (unsigned i = 0; i < sh->nq; i++) {
		struct shadow_queue *q = &sh->q[i];
		if (q->mapped) {
			int r = ops(sh)->iotlb_invalidate(sh->dev, asid, q->iova, q->ring_size);
			if (r < 0) /* once more */
				r = ops(sh)->iotlb_invalidate(sh->dev, asid, q->iova, q->ring_size);
			if (r < 0)
				pr_warn("%s: cannot unmap shadow ring %u", sh->dev->name, i);
			q->mapped = false;
			sh->stats.maps--;
		}
	}
	if (batched && ops(sh)->iotlb_batch_end(sh->dev, asid) < 0 && ops(sh)->iotlb_batch_end(sh->dev, asid) < 0)
		pr_warn("%s: cannot end the IOTLB batch that unmapped the shadow rings", sh->dev->name);
	for (unsigned i = 0; i < sh->nq; i++) {
		struct shadow_queue *q = &sh->q[i];
		if (q->svq_live)
			svq_exit(&q->svq);
		q->svq_live = false;
		if (q->ring) {
			iova_free(&sh->iova, q->iova);
			munmap(q->ring, q->ring_size);
			q->ring = NULL;
		}
	}
}

/* Maps the shadow rings again after a reset that dropped them. */
static int rings_remap(struct shadow *sh, unsigned strategy)
{
	int r = 0;

	/* vhost-vdpa's own bookkeeping outlives a reset: invalidate first, or
	 * the update overlaps and fails */
	for (unsigned i = 0; r == 0 && i < sh->nq; i++)
		if (sh->q[i].ring) {
			r = ops(sh)->iotlb_invalidate(sh->dev, ring_asid(sh, strategy), sh->q[i].iova,
								sh->q[i].ring_size);
			if (!r)
				r = ops(sh)->iotlb_update(sh->dev, ring_asid(sh, strategy), sh->q[i].iova,
								    sh->q[i].ring_size, sh->q[i].ring, VDPA_PERM_RW);
		}
	return r;
}

/* Maps tern's own memory (the control queue's shadow) again after a reset
 * that dropped it; a no-op where mappings persist. Invalidated first for
 * the same reason as rings_remap(). */
static int own_remap(struct shadow *sh)
{
	int r = 0;

	for (unsigned i = 0; !r && !persist(sh) && i < sh->nown; i++) {
		struct shadow_own *o = &sh->own[i];
		r = ops(sh)->iotlb_invalidate(sh->dev, o->asid, o->iova, o->size);
		if (!r)
			r = ops(sh)->iotlb_update(sh->dev, o->asid, o->iova, o->size, o->hva, VDPA_PERM_RW);
	}
	return r;
}

/* ---- bring-up ------------------------------------------------------------- */

int shadow_set_features(struct shadow *sh, uint64_t f)
{
	uint8_t st = 0;
	int r = ops(sh)->set_status(sh->dev, VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER);

	if (!r)
		r = ops(sh)->set_features(sh->dev, f);
	if (!r)
		r = ops(sh)->set_status(sh->dev, S_RUNNING);
	if (!r)
		r = ops(sh)->get_status(sh->dev, &st);
	if (!r && !(st & VIRTIO_S_FEATURES_OK))
		r = -EINVAL;
	if (!r)
		sh->features = f;
	return r;
}

/* Points queue i at the guest's rings (svq false) or its shadow ring, at
 * base; queue set-up is allowed while suspended or before DRIVER_OK. */
static int point_queue(struct shadow *sh, unsigned i, bool svq, uint16_t base, bool setup)
{
	struct shadow_queue *q = &sh->q[i];
	struct vdpa_vring_addr a = q->guest;
	int r = 0;

	if (svq)
		svq_addrs(&q->svq, &a.desc, &a.avail, &a.used);
	q->repointed = true;
	if (setup)
		r = ops(sh)->set_vring_num(sh->dev, i, q->num);
	if (!r)
		r = ops(sh)->set_vring_base(sh->dev, i, base);
	if (!r)
		r = ops(sh)->set_vring_addr(sh->dev, i, &a);
	if (!r)
		r = ops(sh)->set_vring_kick(sh->dev, i, svq ? q->dev_kick : q->guest_kick);
	if (!r)
		r = ops(sh)->set_vring_call(sh->dev, i, svq ? q->dev_call : q->guest_call);
	if (!r && setup && !(sh->defer_data && q->data))
		r = ops(sh)->set_vring_enable(sh->dev, i, true);
	return r;
}

/* Queues and DRIVER_OK: data queues on the shadow rings when svq (where
 * tern last saw the device use), the others (and all without svq) at
 * their q->base. */
static int start_queues(struct shadow *sh, bool svq)
{
	int r = 0;

	for (unsigned i = 0; r == 0 && i < sh->nq; i++) {
		struct shadow_queue *q = &sh->q[i];
		if (!q->enabled)
			continue;
		bool shadowed = svq && q->data;
		r = point_queue(sh, i, shadowed, shadowed ? q->svq.last_used : q->base, true);
	}
	if (!r && sh->own_group >= 0 && sh->own_asid)
		r = ops(sh)->set_group_asid(sh->dev, (unsigned)sh->own_group, sh->own_asid);
	if (!r)
		r = ops(sh)->set_config_call(sh->dev, sh->config_call);
	if (!r)
		r = ops(sh)->set_status(sh->dev, S_RUNNING | VIRTIO_S_DRIVER_OK);
	return r;
}

int shadow_start(struct shadow *sh, const uint16_t *bases)
{
	for (unsigned i = 0; i < sh->nq; i++)
		sh->q[i].base = bases ? bases[i] : 0;
	return start_queues(sh, false);
}

/* One kick on every shadow ring: a device that was resumed or restarted
 * may have forgotten kicks it got while stopped (a hardware NIC may), and
 * the chains tern placed before are still on the ring. */
static void kick_shadow(struct shadow *sh)
{
	uint64_t one = 1;

	for (unsigned i = 0; i < sh->nq; i++)
		if (sh->q[i].svq_live && sh->q[i].dev_kick >= 0 && write(sh->q[i].dev_kick, &one, sizeof(one)) < 0)
			pr_warn("%s: kick of shadow queue %u failed", sh->dev->name, i);
}

/* After a reset: features again, then the queues; the owner's state
 * (the control queue's record) is given back to the device before the data
 * queues run where it can enable them after DRIVER_OK. A failed replay is
 * reported, not fatal: the device runs on its defaults. On shadow rings,
 * the device's event index from before the reset is forgotten and the
 * device kicked once it runs. */
static int restart(struct shadow *sh, bool svq)
{
	bool late = sh->on_restart && has(sh, VDPA_BF_ENABLE_AFTER_DRIVER_OK);
	int r = shadow_set_features(sh, sh->features);

	for (unsigned i = 0; svq && i < sh->nq; i++)
		if (sh->q[i].svq_live)
			svq_device_restarted(&sh->q[i].svq);
	sh->defer_data = late;
	if (!r)
		r = start_queues(sh, svq);
	sh->defer_data = false;
	if (!r && sh->on_restart)
		sh->on_restart(sh->on_restart_opaque);
	if (!r && late)
		r = shadow_enable_data(sh);
	if (!r && svq)
		kick_shadow(sh);
	return r;
}

void shadow_reset(struct shadow *sh)
{
	bool svq = sh->mode == SHADOW_SVQ;

	relay_stop(&sh->relay);
	/* stopped before its rings go away */
	ops(sh)->set_status(sh->dev, 0);
	if (svq) {
		rings_unmap(sh, sh->strategy);
		if (sh->strategy == SHADOW_STRATEGY_ASID)
			ops(sh)->set_group_asid(sh->dev, sh->desc_group, 0);
		sh->mode = SHADOW_PASSTHROUGH;
	}
	for (unsigned i = 0; i < sh->nq; i++)
		sh->q[i].enabled = false;
	/* without persistence the device lost its map, but vhost-vdpa's own
	 * bookkeeping did not: invalidate, then map again */
	if (!persist(sh) && (unmap_ram(sh) < 0 || shadow_map_ram(sh) < 0))
		pr_warn("%s: cannot map guest memory after reset", sh->dev->name);
}

/* ---- the switch ----------------------------------------------------------- */

static uint16_t guest_used_idx(const struct shadow *sh, unsigned i)
{
	uint16_t v = 0;

	if (sh->q[i].own_used)
		return __atomic_load_n(sh->q[i].own_used, __ATOMIC_ACQUIRE);
	iotlb_read(&sh->ram, sh->q[i].guest.used + 2, &v, 2);
	return __atomic_load_n(&v, __ATOMIC_ACQUIRE);
}

/* Next avail index of every enabled queue, on the rings the device works
 * on now: its own word when suspended, else (it was reset: stopped) the
 * guest's used index, which rewinds what it took and did not finish. */
static int read_bases(struct shadow *sh, bool suspended, bool on_shadow)
{
	for (unsigned i = 0; i < sh->nq; i++) {
		struct shadow_queue *q = &sh->q[i];
		uint16_t *dst = on_shadow && q->data ? &q->shadow_base : &q->base;
		if (!q->enabled)
			continue;
		if (!suspended) {
			*dst = on_shadow && q->data ? q->svq.last_used : guest_used_idx(sh, i);
			continue;
		}
		int r = ops(sh)->get_vring_base(sh->dev, i, dst);
		if (r < 0)
			return r;
	}
	return 0;
}

static int svqs_init(struct shadow *sh, struct err *e)
{
	for (unsigned i = 0; i < sh->nq; i++) {
		struct shadow_queue *q = &sh->q[i];
		if (!q->enabled || !q->data)
			continue;
		/* a device that completes in order and has been stopped has
		 * used all it took: the guest's used index is its base */
		uint16_t used = guest_used_idx(sh, i);
		if (used != q->base)
			return err_set(e, -EBUSY, "%s: queue %u has %u buffers in flight in the stopped device",
				       sh->dev->name, i, (uint16_t)(q->base - used));
		struct vring_dev g = {
			.num = q->num, .desc_iova = q->guest.desc, .avail_iova = q->guest.avail,
			.used_iova = q->guest.used, .last_avail = q->base, .used_idx = q->base,
			.event_idx = !!(sh->features & BF(VIRTIO_F_EVENT_IDX)),
		};
		memset(q->ring, 0, q->ring_size);
		int r = svq_init(&q->svq, &g, &sh->ram, sh->log, q->ring, q->iova, e);
		if (r < 0)
			return r;
		q->svq_live = true;
	}
	return 0;
}

static int relay_begin(struct shadow *sh, struct err *e)
{
	struct relay *rl = &sh->relay;

	rl->n = 0;
	for (unsigned i = 0; i < sh->nq; i++) {
		struct shadow_queue *q = &sh->q[i];
		if (q->svq_live)
			rl->q[rl->n++] = (struct relay_queue){ .svq = &q->svq, .id = i, .guest_kick = q->guest_kick,
							       .guest_call = q->guest_call, .dev_kick = q->dev_kick,
							       .dev_call = q->dev_call };
	}
	rl->sandbox = sh->sandbox;
	rl->on_error = sh->on_queue_error;
	rl->on_error_opaque = sh->on_queue_error_opaque;
	return relay_start(rl, e);
}

/* Last resort after a failed rollback: stop the device with a reset,
 * return what it used to the guest, and start it from scratch in
 * passthrough, every queue at the guest's used index (a stopped in-order
 * device has finished all before it; what it took after, it takes again).
 * 0 leaves the device in passthrough; -ENODEV means it is lost. */
static int recover(struct shadow *sh)
{
	int r;

	sh->stats.recoveries++;
	pr_warn("%s: rollback failed; restarting the device in passthrough", sh->dev->name);
	relay_pause(&sh->relay);
	ops(sh)->set_status(sh->dev, 0);
	relay_drain(&sh->relay);
	relay_stop(&sh->relay);
	for (unsigned i = 0; i < sh->nq; i++)
		if (sh->q[i].enabled)
			sh->q[i].base = guest_used_idx(sh, i);
	unmap_ram(sh);
	rings_unmap(sh, sh->strategy);
	sh->mode = SHADOW_PASSTHROUGH;
	r = shadow_map_ram(sh);
	/* the control queue's shadow lives on: its memory too */
	if (!r)
		r = own_remap(sh);
	if (!r)
		r = restart(sh, false);
	if (r < 0)
		pr_warn("%s: the device cannot be restarted (%s): it is lost", sh->dev->name, strerror(-r));
	return r < 0 ? -ENODEV : 0;
}

/* Device stop at the start of a switch: suspend where the strategy or the
 * device allows, else (strategies 3 and 4) a reset. */
static int stop_device(struct shadow *sh, unsigned s, struct switch_done *u)
{
	int r;

	if (shadow_strategy_resumes(s) || has(sh, VDPA_BF_SUSPEND)) {
		r = ops(sh)->suspend(sh->dev);
		u->suspended = r == 0;
		return r;
	}
	r = ops(sh)->set_status(sh->dev, 0);
	u->reset = r == 0;
	return r;
}

/* Strategies 3 and 4 after the bases are read: strategy 4 unmaps all of
 * guest RAM (the reference behaviour), both reset. */
static int reset_for_restart(struct shadow *sh, unsigned s, struct switch_done *u)
{
	int r = 0;

	if (s == SHADOW_STRATEGY_REMAP) {
		r = unmap_ram(sh);
		u->ram_unmapped = true; /* partly, at least */
	}
	if (!r && !u->reset) {
		r = ops(sh)->set_status(sh->dev, 0);
		u->reset = r == 0;
	}
	return r;
}

/* Strategies 3 and 4: RAM (and shadow rings) mapped again where the
 * reset or strategy 4 dropped them, then features and queues. */
static int remap_restart(struct shadow *sh, unsigned s, bool svq, struct switch_done *u)
{
	int r = 0;

	if (u->ram_unmapped || !persist(sh)) {
		if (!persist(sh))
			r = unmap_ram(sh); /* see shadow_reset() */
		if (!r)
			r = shadow_map_ram(sh);
		if (!r)
			u->ram_unmapped = false;
	}
	if (!r && !persist(sh))
		r = rings_remap(sh, s);
	if (!r)
		r = own_remap(sh);
	return r ? r : restart(sh, svq);
}

/* Puts the device back on the rings of mode svq, at the indices the
 * switch started from. */
static int roll_back_switch(struct shadow *sh, unsigned s, bool svq, struct switch_done *u, bool resumed)
{
	int r = 0;

	if (u->reset || u->ram_unmapped) {
		/* a reset (or half a remap) happened: start from a reset */
		u->reset = false;
		r = ops(sh)->set_status(sh->dev, 0);
		u->reset = r == 0;
		/* a remap cut short left RAM partly mapped: clear it first */
		if (!r && u->ram_unmapped)
			r = unmap_ram(sh);
		if (!r)
			r = remap_restart(sh, s, svq, u);
		return r;
	}
	if (!u->suspended)
		return 0; /* the device was never touched */
	if (resumed && (r = ops(sh)->suspend(sh->dev)) < 0)
		return r;
	for (unsigned i = 0; r == 0 && i < sh->nq; i++)
		if (sh->q[i].data && sh->q[i].repointed)
			r = point_queue(sh, i, svq, svq ? sh->q[i].svq.last_used : sh->q[i].base, false);
	if (!r && u->asid_moved)
		r = ops(sh)->set_group_asid(sh->dev, sh->desc_group, svq ? 1 : 0);
	if (!r)
		r = ops(sh)->resume(sh->dev);
	if (!r && svq)
		kick_shadow(sh);
	return r;
}

/* Replaces e's message with fmt, which formats the old one in (%s last). */
__attribute__((format(printf, 3, 4))) static int rewrap(struct err *e, int r, const char *fmt, ...)
{
	char inner[sizeof(e->msg)], outer[sizeof(e->msg)];
	va_list ap;

	snprintf(inner, sizeof(inner), "%s", e->msg);
	va_start(ap, fmt);
	vsnprintf(outer, sizeof(outer), fmt, ap);
	va_end(ap);
	e->msg[0] = '\0';
	return err_set(e, r, "%s%s", outer, inner);
}

static void switch_begin(struct shadow *sh)
{
	for (unsigned i = 0; i < sh->nq; i++)
		sh->q[i].repointed = false;
}

/* A spurious kick on every guest queue: a device back on the guest's
 * rings looks at their avail index even if the guest kicked while tern
 * held the queue. */
void shadow_kick_guest_rings(struct shadow *sh)
{
	uint64_t one = 1;

	for (unsigned i = 0; i < sh->nq; i++)
		if (sh->q[i].enabled && sh->q[i].data && sh->q[i].guest_kick >= 0 &&
		    write(sh->q[i].guest_kick, &one, sizeof(one)) < 0)
			pr_warn("%s: kick of queue %u failed", sh->dev->name, i);
}

int shadow_to_svq(struct shadow *sh, struct err *e)
{
	struct switch_done u = { 0 };
	bool resumed = false;
	const char *why = "forced";
	uint64_t t0 = 0;
	int r;

	if (sh->mode == SHADOW_SVQ)
		return 0;
	unsigned s = sh->forced ? sh->forced : shadow_pick(sh, &why);
	if (s == SHADOW_STRATEGY_ASID && sh->forced && !shadow_desc_group_ok(sh))
		return err_set(e, -EOPNOTSUPP, "%s: switch strategy 1: the data queues' rings have no group of their "
					       "own to move to ASID 1", sh->dev->name);
	sh->strategy = s;
	switch_begin(sh);
	if ((r = rings_map(sh, s, e)) < 0)
		goto fail;
	t0 = now_ns();
	if ((r = stop_device(sh, s, &u)) < 0) {
		err_errno(e, r, "%s: %s", sh->dev->name, u.suspended || shadow_strategy_resumes(s) ? "suspend" : "reset");
		goto fail;
	}
	if ((r = read_bases(sh, u.suspended, false)) < 0) {
		err_errno(e, r, "%s: read ring indices", sh->dev->name);
		goto fail;
	}
	if (!shadow_strategy_resumes(s) && (r = reset_for_restart(sh, s, &u)) < 0) {
		err_errno(e, r, "%s: %s", sh->dev->name, s == SHADOW_STRATEGY_REMAP ? "unmap guest memory, reset" : "reset");
		goto fail;
	}
	if ((r = svqs_init(sh, e)) < 0)
		goto fail;
	if (shadow_strategy_resumes(s)) {
		if (s == SHADOW_STRATEGY_ASID && !(r = ops(sh)->set_group_asid(sh->dev, sh->desc_group, 1)))
			u.asid_moved = true;
		for (unsigned i = 0; r == 0 && i < sh->nq; i++)
			if (sh->q[i].enabled && sh->q[i].data)
				r = point_queue(sh, i, true, 0, false);
		if (!r)
			r = ops(sh)->resume(sh->dev);
		resumed = r == 0;
	} else {
		r = remap_restart(sh, s, true, &u);
		resumed = r == 0;
	}
	if (r < 0) {
		err_errno(e, r, "%s: point the queues at the shadow rings", sh->dev->name);
		goto fail;
	}
	sh->stats.blackout_ns = now_ns() - t0;
	if ((r = relay_begin(sh, e)) < 0)
		goto fail;
	sh->mode = SHADOW_SVQ;
	sh->stats.switches++;
	return 0;

fail:
	sh->stats.rollbacks++;
	relay_stop(&sh->relay);
	if (roll_back_switch(sh, s, false, &u, resumed) < 0 && recover(sh) < 0) {
		rings_unmap(sh, s);
		return rewrap(e, -ENODEV, "switch to shadow virtqueues failed, and so did its rollback (the device "
					  "is lost): ");
	}
	rings_unmap(sh, s);
	sh->mode = SHADOW_PASSTHROUGH;
	shadow_kick_guest_rings(sh);
	return rewrap(e, r, "switch to shadow virtqueues (strategy %u: %s) failed, rolled back to passthrough: ", s,
		      why);
}

int shadow_to_passthrough(struct shadow *sh, struct err *e)
{
	struct switch_done u = { 0 };
	bool resumed = false;
	unsigned s = sh->strategy;
	uint64_t t0;
	int r;

	if (sh->mode == SHADOW_PASSTHROUGH)
		return 0;
	switch_begin(sh);
	t0 = now_ns();
	r = stop_device(sh, s, &u);
	relay_pause(&sh->relay);
	if (r < 0) {
		err_errno(e, r, "%s: %s", sh->dev->name, shadow_strategy_resumes(s) || has(sh, VDPA_BF_SUSPEND) ? "suspend" : "reset");
		goto fail;
	}
	/* what the device used goes to the guest (and the dirty log) */
	relay_drain(&sh->relay);
	if ((r = read_bases(sh, u.suspended, true)) < 0) {
		err_errno(e, r, "%s: read ring indices", sh->dev->name);
		goto fail;
	}
	for (unsigned i = 0; i < sh->nq; i++) {
		struct shadow_queue *q = &sh->q[i];
		if (!q->svq_live)
			continue;
		if (q->shadow_base != q->svq.last_used) {
			r = err_set(e, -EBUSY, "%s: queue %u: the stopped device still holds %u buffers", sh->dev->name,
				    i, (uint16_t)(q->shadow_base - q->svq.last_used));
			goto fail;
		}
		/* the chains on the shadow ring the device did not take (and a
		 * parked one) are the guest's again: its used index is where
		 * the device starts, since the shadow ring kept avail order */
		q->base = q->svq.guest.used_idx;
	}
	if (shadow_strategy_resumes(s)) {
		for (unsigned i = 0; r == 0 && i < sh->nq; i++)
			if (sh->q[i].svq_live)
				r = point_queue(sh, i, false, sh->q[i].base, false);
		if (!r && s == SHADOW_STRATEGY_ASID && !(r = ops(sh)->set_group_asid(sh->dev, sh->desc_group, 0)))
			u.asid_moved = true;
		if (!r)
			r = ops(sh)->resume(sh->dev);
		resumed = r == 0;
	} else {
		r = reset_for_restart(sh, s, &u);
		if (!r)
			r = remap_restart(sh, s, false, &u);
		resumed = r == 0;
	}
	if (r < 0) {
		err_errno(e, r, "%s: point the queues back at the guest's rings", sh->dev->name);
		goto fail;
	}
	sh->stats.blackout_ns = now_ns() - t0;
	relay_stop(&sh->relay);
	rings_unmap(sh, s);
	sh->mode = SHADOW_PASSTHROUGH;
	sh->stats.switches++;
	shadow_kick_guest_rings(sh);
	return 0;

fail:
	sh->stats.rollbacks++;
	if (roll_back_switch(sh, s, true, &u, resumed) < 0) {
		if (recover(sh) < 0)
			return rewrap(e, -ENODEV, "switch to passthrough failed, and so did its rollback (the device "
						  "is lost): ");
		shadow_kick_guest_rings(sh);
		return rewrap(e, r, "switch to passthrough failed, device restarted in passthrough: ");
	}
	relay_unpause(&sh->relay);
	return rewrap(e, r, "switch to passthrough (strategy %u) failed, rolled back to shadow virtqueues: ", s);
}

/* ---- freezing (shadow_freeze.c) needs these -------------------------------- */

void shadow_restart_after_reset(struct shadow *sh)
{
	for (unsigned i = 0; i < sh->nq; i++)
		if (sh->q[i].enabled && !sh->q[i].data)
			sh->q[i].base = guest_used_idx(sh, i);
	struct switch_done u = { .reset = true };
	if (remap_restart(sh, sh->strategy, true, &u) < 0) {
		if (recover(sh) < 0)
			pr_warn("%s: the device could not be restarted after a freeze", sh->dev->name);
		else
			shadow_kick_guest_rings(sh); /* in passthrough now */
	}
}

uint16_t shadow_guest_used(const struct shadow *sh, unsigned i)
{
	return guest_used_idx(sh, i);
}

void shadow_kick_shadow_rings(struct shadow *sh)
{
	kick_shadow(sh);
}
