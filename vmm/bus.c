/* SPDX-License-Identifier: MIT */
#include "vmm/bus.h"

#include <errno.h>
#include <string.h>

void bus_init(struct bus *bus, const char *name)
{
	memset(bus, 0, sizeof(*bus));
	bus->name = name;
}

int bus_register(struct bus *bus, uint64_t base, uint64_t len, struct bus_dev *dev)
{
	uint64_t end;

	if (!len || add_overflows(base, len, &end) || !dev || !dev->ops)
		return -EINVAL;
	for (unsigned i = 0; i < bus->nr; i++) {
		const struct bus_range *r = &bus->ranges[i];
		if (base < r->base + r->len && r->base < end)
			return -EEXIST;
	}
	if (bus->nr == BUS_MAX_RANGES)
		return -ENOSPC;
	bus->ranges[bus->nr++] = (struct bus_range){ .base = base, .len = len, .dev = dev };
	return 0;
}

static const struct bus_range *bus_find(const struct bus *bus, uint64_t addr, unsigned len)
{
	for (unsigned i = 0; i < bus->nr; i++) {
		const struct bus_range *r = &bus->ranges[i];
		if (addr >= r->base && addr - r->base < r->len && len <= r->len - (addr - r->base))
			return r;
	}
	return NULL;
}

bool bus_read(const struct bus *bus, uint64_t addr, void *data, unsigned len)
{
	const struct bus_range *r = bus_find(bus, addr, len);

	if (!r || !r->dev->ops->read) {
		memset(data, 0xff, len);
		return r != NULL;
	}
	r->dev->ops->read(r->dev, addr - r->base, data, len);
	return true;
}

bool bus_write(const struct bus *bus, uint64_t addr, const void *data, unsigned len)
{
	const struct bus_range *r = bus_find(bus, addr, len);

	if (!r || !r->dev->ops->write)
		return r != NULL;
	r->dev->ops->write(r->dev, addr - r->base, data, len);
	return true;
}
