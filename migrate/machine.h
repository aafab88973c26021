/* SPDX-License-Identifier: MIT */
/*
 * migrate/machine.h - a whole VM as tern runs it: the machine (vmm/vm.h),
 * its devices (devices/device.h), the guest loaded, and, on request, the
 * dirty tracking of diff snapshots; and its teardown, a migration thread
 * first. The one place that assembles the layers, from the top one that
 * uses them all.
 */
#ifndef TERN_MIGRATE_MACHINE_H
#define TERN_MIGRATE_MACHINE_H

#include "vmm/vm.h"

/* Builds the VM of cfg; nothing runs until vm_start(). On failure
 * everything created is released and e says why. */
int machine_create(struct vm *vm, const struct vm_config *cfg, struct err *e);
/* Releases everything machine_create() made, stopping the VM first. */
void machine_destroy(struct vm *vm);

#endif
