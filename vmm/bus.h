/* SPDX-License-Identifier: MIT */
/*
 * vmm/bus.h - dispatch of port I/O and MMIO exits to emulated devices.
 *
 * A device embeds a struct bus_dev and recovers itself with container_of in
 * its callbacks. Registration happens before any vCPU runs and the table is
 * read-only afterwards, so dispatch takes no lock; each device serialises its
 * own state.
 */
#ifndef TERN_VMM_BUS_H
#define TERN_VMM_BUS_H

#include "vmm/util.h"

struct bus_dev;

struct bus_dev_ops {
	/* offset is relative to the registered base; len is 1, 2, 4 or 8. */
	void (*read)(struct bus_dev *dev, uint64_t offset, void *data, unsigned len);
	void (*write)(struct bus_dev *dev, uint64_t offset, const void *data, unsigned len);
};

struct bus_dev {
	const struct bus_dev_ops *ops;
	const char *name;
};

struct bus_range {
	uint64_t base, len;
	struct bus_dev *dev;
};

#define BUS_MAX_RANGES 64

struct bus {
	const char *name; /* "pio" or "mmio", for messages */
	unsigned nr;
	struct bus_range ranges[BUS_MAX_RANGES];
};

void bus_init(struct bus *bus, const char *name);
/* Fails with -EEXIST on overlap, -ENOSPC when full, -EINVAL on len 0/wrap. */
int bus_register(struct bus *bus, uint64_t base, uint64_t len, struct bus_dev *dev);
/* Returns true if a device claimed the access. Unclaimed reads return
 * all-ones in data, unclaimed writes are dropped. */
bool bus_read(const struct bus *bus, uint64_t addr, void *data, unsigned len);
bool bus_write(const struct bus *bus, uint64_t addr, const void *data, unsigned len);

#endif
