/* SPDX-License-Identifier: MIT */
/*
 * vdpa/shadow_freeze.c - freezing a running device for a snapshot or a
 * migration's stop, and thawing it (see shadow.h): SUSPEND where the
 * device has it, else, on shadow virtqueues, a reset whose restart takes
 * up what the shadow rings still hold; and the queue bases a frozen device
 * is saved with.
 */
#include "vdpa/shadow_priv.h"

#include <errno.h>

int shadow_freeze(struct shadow *sh, struct err *e)
{
	int r;

	if (!has(sh, VDPA_BF_SUSPEND) && sh->mode == SHADOW_SVQ) {
		/* no SUSPEND (VDUSE): on shadow queues a reset stops the device
		 * and loses nothing - what it used is drained to the guest, what
		 * it took and did not finish is still on the shadow ring, where
		 * a restart (shadow_thaw) takes it up again */
		relay_pause(&sh->relay);
		r = ops(sh)->set_status(sh->dev, 0);
		if (r < 0) {
			relay_unpause(&sh->relay);
			return err_errno(e, r, "%s: reset to stop it", sh->dev->name);
		}
		relay_drain(&sh->relay);
		sh->frozen_by_reset = true;
		return 0;
	}
	if (!has(sh, VDPA_BF_SUSPEND))
		return err_set(e, -EOPNOTSUPP, "%s cannot suspend, and stops by a reset only on shadow virtqueues "
					       "(svq=on): no snapshot of it is possible", sh->dev->name);
	/* the relay stops first: a round after the suspend would kick a
	 * device that may forget it, and place chains nobody drains */
	if (sh->mode == SHADOW_SVQ)
		relay_pause(&sh->relay);
	r = ops(sh)->suspend(sh->dev);
	if (r < 0) {
		if (sh->mode == SHADOW_SVQ)
			relay_unpause(&sh->relay);
		return err_errno(e, r, "%s: suspend", sh->dev->name);
	}
	if (sh->mode == SHADOW_SVQ)
		relay_drain(&sh->relay);
	return 0;
}

void shadow_thaw(struct shadow *sh)
{
	if (sh->frozen_by_reset) {
		sh->frozen_by_reset = false;
		shadow_restart_after_reset(sh);
		relay_unpause(&sh->relay);
		return;
	}
	/* the device runs before the relay does, and is kicked on every ring
	 * it serves: kicks it got while suspended may be forgotten */
	if (ops(sh)->resume(sh->dev) < 0)
		pr_warn("%s: resume failed", sh->dev->name);
	if (sh->mode == SHADOW_SVQ) {
		shadow_kick_shadow_rings(sh);
		relay_unpause(&sh->relay);
	} else {
		shadow_kick_guest_rings(sh);
	}
}

int shadow_bases(struct shadow *sh, uint16_t *bases, struct err *e)
{
	for (unsigned i = 0; i < sh->nq; i++) {
		struct shadow_queue *q = &sh->q[i];
		uint16_t b = 0;
		if (!q->enabled)
			continue;
		if (sh->frozen_by_reset) {
			/* stopped by a reset: the guest's view is the truth */
			bases[i] = q->svq_live ? q->svq.guest.used_idx : shadow_guest_used(sh, i);
			continue;
		}
		int r = ops(sh)->get_vring_base(sh->dev, i, &b);
		if (r < 0)
			return err_errno(e, r, "%s: get vring base %u", sh->dev->name, i);
		if (q->svq_live && sh->mode == SHADOW_SVQ) {
			if (b != q->svq.last_used)
				return err_set(e, -EBUSY, "%s: queue %u: the suspended device still holds %u buffers",
					       sh->dev->name, i, (uint16_t)(b - q->svq.last_used));
			b = q->svq.guest.used_idx; /* see shadow_to_passthrough() */
		}
		bases[i] = b;
	}
	return 0;
}

