/* SPDX-License-Identifier: MIT */
/* devices/device.c - the machine's devices, in one ordered table (device.h). */
#include "devices/device.h"

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
