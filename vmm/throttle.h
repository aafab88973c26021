/* SPDX-License-Identifier: MIT */
/*
 * vmm/throttle.h - slowing the vCPUs, for a migration whose guest dirties
 * memory faster than the link sends it (docs/migration.md, "Convergence").
 *
 * At pct percent each vCPU runs (100 - pct)% of every 10 ms period and
 * waits outside KVM_RUN for the rest: a thread kicks every vCPU at the end
 * of each period's running part, and the vCPU's loop then waits (throttle
 * _wait()). A pause or a stop ends a wait at once, so a throttled VM stops
 * as quickly as any. The guest's own clock goes on; it just gets less CPU.
 */
#ifndef TERN_VMM_THROTTLE_H
#define TERN_VMM_THROTTLE_H

#include <pthread.h>
#include <stdatomic.h>

#include "vmm/util.h"

#define THROTTLE_PERIOD_NS 10000000ull
#define THROTTLE_MAX 99

struct vm;
struct vcpu;

struct vm_throttle {
	atomic_uint pct;         /* 0: off */
	pthread_t thread;        /* the kicker, while pct > 0 */
	bool live;
	atomic_bool stop;
};

/* Sets the throttle (0..THROTTLE_MAX; 0 ends it and joins its thread).
 * From one thread at a time (the migration's). */
int vm_throttle_set(struct vm *vm, unsigned pct, struct err *e);
/* The vCPU loop, before each KVM_RUN: waits out this period's throttled
 * part when the kicker has ended its running part. */
void throttle_wait(struct vcpu *vcpu);

#endif
