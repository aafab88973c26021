/* SPDX-License-Identifier: MIT */
/*
 * devices/device.h - how the machine gets its devices: one ordered table of
 * these (device.c), walked by devices_init() and by the migration layer,
 * which reaches every device's state and its part in a migration through
 * the table and names no device. exit() runs in reverse order of init().
 */
#ifndef TERN_DEVICES_DEVICE_H
#define TERN_DEVICES_DEVICE_H

#include "vmm/util.h"

struct vm;
struct dirty_log;

struct device_type {
	const char *name;
	/* Creates the device, stores it in struct vm, registers it on a bus.
	 * Devices that the configuration does not ask for return 0 unset. */
	int (*init)(struct vm *vm, struct err *e);
	/* Releases what init() made; safe to call after a failed init(). */
	void (*exit)(struct vm *vm);

	/* State (devices/state.h, docs/state-format.md); NULL: the device
	 * has none. save() adds the device's nodes to the state tree being
	 * built, with the VM and the device paused (pause()). load() reads
	 * them into a device that has not run yet, checking every node's
	 * version and every value; what must not act before the VM does
	 * (a backend's queues, commands to a device) it only stages, and
	 * start() starts that: a restore at once, a migration's destination
	 * after the source let go. */
	int (*save)(struct vm *vm, void *fdt, struct err *e);
	int (*load)(struct vm *vm, const void *fdt, struct err *e);
	int (*start)(struct vm *vm, struct err *e);

	/* A device that writes guest memory itself, behind KVM's dirty log
	 * (a vDPA device); NULL for the others. track_begin(): from here its
	 * writes reach log, until track_end() (a migration that ends without
	 * a hand-over); forget_log(): log goes away after a hand-over, stop
	 * marking it and change nothing else. unlogged(): -EIO with e set if
	 * some write escaped the log since track_begin(). pause(): the device
	 * stops writing and its rings hold still, for the last pass and
	 * save(); thaw() undoes it. A failed track_begin() or pause() leaves
	 * every instance as it was. */
	int (*track_begin)(struct vm *vm, struct dirty_log *log, struct err *e);
	void (*track_end)(struct vm *vm);
	void (*forget_log)(struct vm *vm);
	int (*unlogged)(struct vm *vm, struct err *e);
	int (*pause)(struct vm *vm, struct err *e);
	void (*thaw)(struct vm *vm);
	/* The source of a migration, at its point of no return: lets go of
	 * what the destination takes when it starts (a disk's write lock).
	 * A thaw() afterwards (the hand-over failed) takes it back. */
	void (*let_go)(struct vm *vm);
};

/* Creates every device of vm's configuration, in table order; on failure
 * the caller runs devices_exit(), which each device tolerates after a
 * partial init. */
int devices_init(struct vm *vm, struct err *e);
void devices_exit(struct vm *vm);

/* The table's hooks over every device that has them, in table order
 * (thaw and track_end in reverse). devices_pause() and
 * devices_track_begin() undo what they did when one fails. */
int devices_save(struct vm *vm, void *fdt, struct err *e);
int devices_load(struct vm *vm, const void *fdt, struct err *e);
int devices_start(struct vm *vm, struct err *e);
int devices_track_begin(struct vm *vm, struct dirty_log *log, struct err *e);
void devices_track_end(struct vm *vm);
void devices_forget_log(struct vm *vm);
int devices_unlogged(struct vm *vm, struct err *e);
int devices_pause(struct vm *vm, struct err *e);
void devices_thaw(struct vm *vm);
void devices_let_go(struct vm *vm);

extern const struct device_type serial_device_type;
extern const struct device_type i8042_device_type;
extern const struct device_type cmos_device_type;
extern const struct device_type acpi_pm_device_type;
extern const struct device_type testdev_device_type;
extern const struct device_type pci_device_type;
extern const struct device_type net_device_type;
extern const struct device_type blk_device_type;

#endif
