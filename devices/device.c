/* SPDX-License-Identifier: MIT */
/* devices/device.c - the machine's devices, in one ordered table (device.h). */
#include "devices/device.h"

#include <errno.h>

/* In creation order; exit() runs in reverse. */
static const struct device_type *const device_types[] = {
	&serial_device_type,
	&i8042_device_type,
	&cmos_device_type,
	&acpi_pm_device_type,
	&testdev_device_type,
	&pci_device_type,
	&net_device_type,
	&blk_device_type,
};

#define NR_TYPES ARRAY_SIZE(device_types)

int devices_init(struct vm *vm, struct err *e)
{
	for (size_t i = 0; i < NR_TYPES; i++) {
		int r = device_types[i]->init(vm, e);
		if (r < 0)
			return r;
	}
	return 0;
}

void devices_exit(struct vm *vm)
{
	for (size_t i = NR_TYPES; i-- > 0;)
		device_types[i]->exit(vm);
}

int devices_save(struct vm *vm, void *fdt, struct err *e)
{
	for (size_t i = 0; i < NR_TYPES; i++) {
		int r = device_types[i]->save ? device_types[i]->save(vm, fdt, e) : 0;
		if (r < 0)
			return r;
	}
	return 0;
}

int devices_load(struct vm *vm, const void *fdt, struct err *e)
{
	for (size_t i = 0; i < NR_TYPES; i++) {
		int r = device_types[i]->load ? device_types[i]->load(vm, fdt, e) : 0;
		if (r < 0)
			return r;
	}
	return 0;
}

int devices_start(struct vm *vm, struct err *e)
{
	for (size_t i = 0; i < NR_TYPES; i++) {
		int r = device_types[i]->start ? device_types[i]->start(vm, e) : 0;
		if (r < 0)
			return r;
	}
	return 0;
}

int devices_track_begin(struct vm *vm, struct dirty_log *log, struct err *e)
{
	for (size_t i = 0; i < NR_TYPES; i++) {
		int r = device_types[i]->track_begin ? device_types[i]->track_begin(vm, log, e) : 0;
		if (r < 0) {
			while (i-- > 0)
				if (device_types[i]->track_end)
					device_types[i]->track_end(vm);
			return r;
		}
	}
	return 0;
}

void devices_track_end(struct vm *vm)
{
	for (size_t i = NR_TYPES; i-- > 0;)
		if (device_types[i]->track_end)
			device_types[i]->track_end(vm);
}

void devices_forget_log(struct vm *vm)
{
	for (size_t i = 0; i < NR_TYPES; i++)
		if (device_types[i]->forget_log)
			device_types[i]->forget_log(vm);
}

int devices_unlogged(struct vm *vm, struct err *e)
{
	for (size_t i = 0; i < NR_TYPES; i++) {
		int r = device_types[i]->unlogged ? device_types[i]->unlogged(vm, e) : 0;
		if (r < 0)
			return r;
	}
	return 0;
}

int devices_pause(struct vm *vm, struct err *e)
{
	for (size_t i = 0; i < NR_TYPES; i++) {
		int r = device_types[i]->pause ? device_types[i]->pause(vm, e) : 0;
		if (r < 0) {
			while (i-- > 0)
				if (device_types[i]->thaw)
					device_types[i]->thaw(vm);
			return r;
		}
	}
	return 0;
}

void devices_thaw(struct vm *vm)
{
	for (size_t i = NR_TYPES; i-- > 0;)
		if (device_types[i]->thaw)
			device_types[i]->thaw(vm);
}

void devices_let_go(struct vm *vm)
{
	for (size_t i = 0; i < NR_TYPES; i++)
		if (device_types[i]->let_go)
			device_types[i]->let_go(vm);
}

/* The one device type whose contents a migration copies (disks). A second
 * would need its units numbered after the first's. */
static const struct device_type *copier(void)
{
	for (size_t i = 0; i < NR_TYPES; i++)
		if (device_types[i]->copy_begin)
			return device_types[i];
	return NULL;
}

int devices_copy_begin(struct vm *vm, uint64_t *sizes, unsigned *n, struct err *e)
{
	const struct device_type *t = copier();

	*n = 0;
	return t ? t->copy_begin(vm, sizes, n, e) : 0;
}

int devices_copy_next(struct vm *vm, struct dev_copy_piece *p, void *buf, struct err *e)
{
	const struct device_type *t = copier();

	return t ? t->copy_next(vm, p, buf, e) : 0;
}

uint64_t devices_copy_pending(struct vm *vm)
{
	const struct device_type *t = copier();

	return t ? t->copy_pending(vm) : 0;
}

void devices_copy_end(struct vm *vm)
{
	const struct device_type *t = copier();

	if (t)
		t->copy_end(vm);
}

int devices_copy_write(struct vm *vm, const struct dev_copy_piece *p, const void *data, struct err *e)
{
	const struct device_type *t = copier();

	return t ? t->copy_write(vm, p, data, e) : err_set(e, -EPROTO, "no device here takes copied contents");
}

int devices_copy_done(struct vm *vm, struct err *e)
{
	const struct device_type *t = copier();

	return t ? t->copy_done(vm, e) : 0;
}

void devices_copy_abandon(struct vm *vm)
{
	const struct device_type *t = copier();

	if (t)
		t->copy_abandon(vm);
}
