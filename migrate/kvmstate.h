/* SPDX-License-Identifier: MIT */
/*
 * migrate/kvmstate.h - KVM-held state (vCPUs, PIC/IOAPIC, PIT, clock) as
 * properties of the "kvm" and "vcpu@N" nodes of the state tree
 * (migrate/snapshot.c, docs/state-format.md); what they hold is versioned
 * there: a change here needs a version bump.
 * Save functions write properties into the node being built with libfdt's
 * sequential-write API; load functions read the node at offset node.
 * The VM must be paused (save) or not yet started (load).
 */
#ifndef TERN_MIGRATE_KVMSTATE_H
#define TERN_MIGRATE_KVMSTATE_H

#include "vmm/util.h"

struct vm;
struct vcpu;

int kvmstate_save_vcpu(struct vm *vm, struct vcpu *v, void *fdt, struct err *e);
int kvmstate_load_vcpu(struct vm *vm, struct vcpu *v, const void *fdt, int node, struct err *e);
int kvmstate_save_vm(struct vm *vm, void *fdt, struct err *e);
int kvmstate_load_vm(struct vm *vm, const void *fdt, int node, struct err *e);

#endif
