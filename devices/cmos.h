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

#endif
