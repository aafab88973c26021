/* SPDX-License-Identifier: MIT */
/*
 * devices/cmos.h - the MC146818 RTC and its CMOS RAM at ports 0x70/0x71:
 * enough for a guest to read the wall-clock time (UTC, BCD, 24-hour) and to
 * see a valid, never-updating clock.
 */
#ifndef TERN_DEVICES_CMOS_H
#define TERN_DEVICES_CMOS_H

#include <time.h>

#include "vmm/bus.h"

struct cmos;

/* now() gives the host time the RTC shows; NULL means time(NULL). */
struct cmos *cmos_new(time_t (*now)(void));
void cmos_free(struct cmos *c);
struct bus_dev *cmos_bus_dev(struct cmos *c);

/* The regs of the state tree's "cmos" node (cmos.c): a change here
 * needs a version bump (devices/state.h). */
struct cmos_state {
	uint8_t index, nmi_masked, rsvd[6];
	uint8_t ram[128];
};
_Static_assert(sizeof(struct cmos_state) == 136, "cmos_state layout");

void cmos_get_state(struct cmos *c, struct cmos_state *st);
int cmos_set_state(struct cmos *c, const struct cmos_state *st);

#endif
