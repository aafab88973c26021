/* SPDX-License-Identifier: MIT */
/* vmm/throttle.c - slowing the vCPUs (throttle.h). */
#include "vmm/throttle.h"

#include <errno.h>
#include <time.h>

#include "vmm/vcpu.h"
#include "vmm/vm.h"

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000u), .tv_nsec = (long)(ns % 1000000000u) };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Kicks every vCPU at the end of each period's running part. */
static void *kicker(void *arg)
{
	struct vm *vm = arg;

	sandbox_enter_thread(&vm->cfg.sandbox, SANDBOX_THROTTLE, "throttle");
	while (!atomic_load(&vm->throttle.stop)) {
		unsigned pct = atomic_load(&vm->throttle.pct);
		sleep_ns(THROTTLE_PERIOD_NS * (100 - pct) / 100);
		for (unsigned i = 0; i < vm->nr_vcpus; i++)
			vcpu_kick(&vm->vcpus[i]);
		sleep_ns(THROTTLE_PERIOD_NS * pct / 100);
	}
	return NULL;
}

int vm_throttle_set(struct vm *vm, unsigned pct, struct err *e)
{
	struct vm_throttle *t = &vm->throttle;

	if (pct > THROTTLE_MAX)
		pct = THROTTLE_MAX;
	atomic_store(&t->pct, pct);
	if (pct && !t->live) {
		atomic_store(&t->stop, false);
		int r = -pthread_create(&t->thread, NULL, kicker, vm);
		if (r < 0) {
			atomic_store(&t->pct, 0);
			return err_errno(e, r, "cannot start the vCPU throttle");
		}
		t->live = true;
	} else if (!pct && t->live) {
		atomic_store(&t->stop, true);
		pthread_join(t->thread, NULL);
		t->live = false;
	}
	return 0;
}

void throttle_wait(struct vcpu *vcpu)
{
	struct vm *vm = vcpu->vm;
	unsigned pct = atomic_load(&vm->throttle.pct);

	if (!pct)
		return;
	/* the kicker's kick brought us here: wait out the period's rest,
	 * unless a pause or a stop comes first (pause_cond wakes us then) */
	uint64_t until = now_ns() + THROTTLE_PERIOD_NS * pct / 100;
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	uint64_t at = (uint64_t)dl.tv_sec * 1000000000u + (uint64_t)dl.tv_nsec + (until - now_ns());
	dl = (struct timespec){ .tv_sec = (time_t)(at / 1000000000u), .tv_nsec = (long)(at % 1000000000u) };
	pthread_mutex_lock(&vm->pause_lock);
	while (!atomic_load(&vm->pause_requested) && !atomic_load(&vm->stopping) && atomic_load(&vm->throttle.pct) &&
	       now_ns() < until)
		if (pthread_cond_timedwait(&vm->pause_cond, &vm->pause_lock, &dl))
			break;
	pthread_mutex_unlock(&vm->pause_lock);
}
