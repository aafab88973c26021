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
};

int devices_init(struct vm *vm, struct err *e)
{
	for (size_t i = 0; i < ARRAY_SIZE(device_types); i++) {
		int r = device_types[i]->init(vm, e);
		if (r < 0)
			return r;
	}
	return 0;
}

void devices_exit(struct vm *vm)
{
	for (size_t i = ARRAY_SIZE(device_types); i-- > 0;)
		device_types[i]->exit(vm);
}
