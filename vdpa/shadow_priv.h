/* SPDX-License-Identifier: MIT */
/*
 * vdpa/shadow_priv.h - what vdpa/shadow.c (the switch), shadow_freeze.c
 * (freezing) and shadow_setup.c (set-up, strategy choice, tern's own
 * memory) share.
 * Nothing else includes it.
 */
#ifndef TERN_VDPA_SHADOW_PRIV_H
#define TERN_VDPA_SHADOW_PRIV_H

#include "vdpa/shadow.h"

#define BF(b) (1ull << (b))

static inline bool has(const struct shadow *sh, unsigned bit)
{
	return sh->backend & BF(bit);
}

/* Whether the device's mappings survive a reset: IOTLB_PERSIST, or a
 * device known to keep them (VDUSE). */
static inline bool persist(const struct shadow *sh)
{
	return has(sh, VDPA_BF_IOTLB_PERSIST) || sh->dev->keeps_iotlb;
}

static inline const struct vdpa_ops *ops(const struct shadow *sh)
{
	return sh->dev->ops;
}

/* For shadow_freeze.c, from shadow.c: the restart after a freeze by reset
 * (into SVQ, or recovered into passthrough), the guest's used index of
 * queue i on the rings the device works on, and a kick of every shadow
 * ring. */
void shadow_restart_after_reset(struct shadow *sh);
uint16_t shadow_guest_used(const struct shadow *sh, unsigned i);
void shadow_kick_shadow_rings(struct shadow *sh);

/* Whether strategy 1 is possible: the data queues' rings form a group of
 * their own (sets sh->desc_group). */
bool shadow_desc_group_ok(struct shadow *sh);

#endif
