/* SPDX-License-Identifier: MIT */
/*
 * devices/device.h - how the machine gets its devices: one ordered table of
 * these (device.c), walked by devices_init(); exit() runs in reverse order
 * of init().
 */
#ifndef TERN_DEVICES_DEVICE_H
#define TERN_DEVICES_DEVICE_H

#include "vmm/util.h"

struct vm;

struct device_type {
	const char *name;
	/* Creates the device, stores it in struct vm, registers it on a bus.
	 * Devices that the configuration does not ask for return 0 unset. */
	int (*init)(struct vm *vm, struct err *e);
	/* Releases what init() made; safe to call after a failed init(). */
	void (*exit)(struct vm *vm);
};

/* Creates every device of vm's configuration, in table order; on failure
 * the caller runs devices_exit(), which each device tolerates after a
 * partial init. */
int devices_init(struct vm *vm, struct err *e);
void devices_exit(struct vm *vm);

extern const struct device_type serial_device_type;
extern const struct device_type i8042_device_type;
extern const struct device_type cmos_device_type;
extern const struct device_type acpi_pm_device_type;
extern const struct device_type testdev_device_type;
extern const struct device_type pci_device_type;
extern const struct device_type net_device_type;

#endif
