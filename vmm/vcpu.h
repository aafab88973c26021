/* SPDX-License-Identifier: MIT */
/* vmm/vcpu.h - one KVM vCPU and the thread that runs it. */
#ifndef TERN_VMM_VCPU_H
#define TERN_VMM_VCPU_H

struct kvm_dirty_gfn;
#include <linux/kvm.h>
#include <pthread.h>

#include "vmm/boot.h"
#include "vmm/util.h"

struct vm;

struct vcpu {
	struct vm *vm;        /* owner */
	unsigned id;          /* KVM vcpu id == APIC id */
	int fd;               /* KVM_CREATE_VCPU, -1 if not created */
	struct kvm_run *run;  /* shared kvm_run page(s), vm->run_size bytes */
	pthread_t thread;     /* valid when thread_started */
	bool thread_started;
	uint64_t exits;       /* exits handled in user space, for diagnostics */
	/* The last exit was an access KVM completes only on the next KVM_RUN
	 * (an I/O or MMIO exit): its state is not whole until then. */
	bool exit_incomplete;
	struct kvm_dirty_gfn *ring; /* its dirty ring (--dirty-ring), or NULL */
	uint32_t ring_next;   /* next ring entry to harvest (under vm->ring_lock) */
};

/* Creates vCPU id: KVM fd, run area, CPUID (before any register state, as
 * real VT-x/AMD-V KVM requires), LAPIC LINT0/LINT1 wiring. */
int vcpu_init(struct vcpu *vcpu, struct vm *vm, unsigned id, struct err *e);
/* Sets registers for the boot protocol's entry (BSP only). */
int vcpu_set_boot_state(struct vcpu *vcpu, const struct boot_setup *boot, struct err *e);
/* Starts the run-loop thread. */
int vcpu_start(struct vcpu *vcpu, struct err *e);
/* Makes KVM_RUN return promptly (vm->stopping must already be set). */
void vcpu_kick(struct vcpu *vcpu);
void vcpu_join(struct vcpu *vcpu);
void vcpu_destroy(struct vcpu *vcpu);

#endif
