/* SPDX-License-Identifier: MIT */
/*
 * devices/testdev.h - the MMIO test device of firmware/abi.h: the test
 * guest's reports ("key=value" text lines) and its requested exit status.
 * Present only with --test-device.
 */
#ifndef TERN_DEVICES_TESTDEV_H
#define TERN_DEVICES_TESTDEV_H

#include <stdio.h>

#include "vmm/bus.h"
#include "vmm/memory.h"

struct testdev;

/* Reports are read from mem and printed as "testdev: TEXT" lines to out;
 * on_exit is called (from a vCPU thread) when the guest writes EXIT. */
struct testdev *testdev_new(const struct guest_mem *mem, FILE *out,
			    void (*on_exit)(struct testdev *t, unsigned status, void *opaque), void *opaque);
void testdev_free(struct testdev *t);
struct bus_dev *testdev_bus_dev(struct testdev *t);
/* Reports the guest made that were malformed (bad address, length, ...). */
unsigned testdev_bad_reports(const struct testdev *t);

#endif
