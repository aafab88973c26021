/* SPDX-License-Identifier: MIT */
/* migrate/machine.c - see machine.h. */
#include "migrate/machine.h"

#include "devices/device.h"
#include "migrate/migrate.h"
#include "migrate/snapmem.h"

int machine_create(struct vm *vm, const struct vm_config *cfg, struct err *e)
{
	int r = vm_create(vm, cfg, e);

	if (r < 0)
		return r; /* vm_create() released what it made */
	r = devices_init(vm, e);
	if (r == 0)
		r = vm_load_guest(vm, e);
	if (r == 0 && cfg->track_dirty)
		r = snapmem_track_start(vm, e);
	/* everything that needs root is open: the rest runs without it */
	if (r == 0)
		r = privdrop_apply(&cfg->drop, e);
	if (r < 0)
		machine_destroy(vm);
	return r;
}

void machine_destroy(struct vm *vm)
{
	/* a migration thread uses the VM: it goes first */
	migrate_exit(vm);
	vm_stop(vm);
	devices_exit(vm);
	snapmem_track_stop(vm);
	vm_destroy(vm);
}
