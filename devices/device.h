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

/* One piece of a device's storage outside guest RAM (a disk's image) in a
 * migration that copies it (tern migrate --copy-disks). */
#define DEV_COPY_MAX (1u << 20) /* data bytes in one piece */
struct dev_copy_piece {
	unsigned unit;        /* which disk: its place among the --disk options */
	bool zero;            /* reads as zeros: no data follows */
	uint64_t offset, len; /* bytes; len <= DEV_COPY_MAX unless zero */
};

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

	/* A device whose contents live outside guest RAM (a disk's image),
	 * copied by a migration without shared storage. The source:
	 * copy_begin() makes all of it pending and from then on remembers
	 * every write, and gives each unit's size in sizes[] (*n units);
	 * copy_next() fills the next pending piece of this pass (data in
	 * buf, DEV_COPY_MAX bytes) and returns 1, or 0 at the end of the pass
	 * (the next call starts another); copy_pending() counts the bytes
	 * still pending; copy_end() stops remembering. The destination:
	 * copy_write() writes one piece (checked: a hostile source may send
	 * anything), copy_done() makes the copy durable before READY, and
	 * copy_abandon() removes what a failed copy created. */
	int (*copy_begin)(struct vm *vm, uint64_t *sizes, unsigned *n, struct err *e);
	int (*copy_next)(struct vm *vm, struct dev_copy_piece *p, void *buf, struct err *e);
	uint64_t (*copy_pending)(struct vm *vm);
	void (*copy_end)(struct vm *vm);
	int (*copy_write)(struct vm *vm, const struct dev_copy_piece *p, const void *data, struct err *e);
	int (*copy_done)(struct vm *vm, struct err *e);
	void (*copy_abandon)(struct vm *vm);
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
/* The copy hooks; units are numbered across the devices that copy (only
 * disks do). devices_copy_begin() fills at most VM_MAX_DISKS sizes. */
int devices_copy_begin(struct vm *vm, uint64_t *sizes, unsigned *n, struct err *e);
int devices_copy_next(struct vm *vm, struct dev_copy_piece *p, void *buf, struct err *e);
uint64_t devices_copy_pending(struct vm *vm);
void devices_copy_end(struct vm *vm);
int devices_copy_write(struct vm *vm, const struct dev_copy_piece *p, const void *data, struct err *e);
int devices_copy_done(struct vm *vm, struct err *e);
void devices_copy_abandon(struct vm *vm);

extern const struct device_type serial_device_type;
extern const struct device_type i8042_device_type;
extern const struct device_type cmos_device_type;
extern const struct device_type acpi_pm_device_type;
extern const struct device_type testdev_device_type;
extern const struct device_type pci_device_type;
extern const struct device_type net_device_type;
extern const struct device_type blk_device_type;

#endif
