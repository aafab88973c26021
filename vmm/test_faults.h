/* SPDX-License-Identifier: MIT */
/*
 * vmm/test_faults.h - tern's one test interface for faults that only a
 * running tern can show (docs/testing.md): the environment variable
 * TERN_TEST_FAULTS, read once by the program (cmd/main.c) and parsed into
 * this plain configuration, which the layers that act on it are handed
 * through struct vm_config. Nothing else in tern reads the environment
 * for a test. Unset, every field is off and tern behaves as in production.
 *
 *   TERN_TEST_FAULTS=KEY=VALUE[;KEY=VALUE...]
 *     switch=DIR:N       the N-th backend call (from 0) of every switch
 *                        in direction DIR (to-svq, to-passthrough) fails
 *     switch=DIR:OP[#K]  the K-th (from 0, default 0) call of vDPA op OP
 *                        (suspend, set_vring_addr, ...) of such a switch
 *     switch=DIR:each    the k-th switch in DIR fails at call k, until a
 *                        switch makes fewer calls than that
 *     cvq-nack=K         the software device refuses its K-th control
 *                        command (from 1), unapplied
 *     migrate-stall=ST   an outgoing migration waits on entering state ST
 *                        (setup, active, stopped, committed, ...) until
 *                        cancelled or 3 s pass
 *     replay=serial      the control state is replayed one command at a
 *                        time (for the replay benchmark)
 *     seccomp-violate=K  a thread of kind K (main, vcpu, device, console,
 *                        migration, throttle, api) makes a system call outside
 *                        its seccomp filter right after entering it
 */
#ifndef TERN_VMM_TEST_FAULTS_H
#define TERN_VMM_TEST_FAULTS_H

#include "vmm/util.h"

#define TEST_FAULTS_ENV "TERN_TEST_FAULTS"

enum fault_switch_dir {
	FAULT_SWITCH_NONE,
	FAULT_SWITCH_TO_SVQ,
	FAULT_SWITCH_TO_PASSTHROUGH,
};

struct test_faults {
	enum fault_switch_dir switch_dir;
	int switch_at;            /* the call (or the op's call) that fails */
	char switch_op[32];       /* "" for any op */
	bool switch_each;
	uint32_t cvq_nack;        /* 0: none */
	char migrate_stall[16];   /* a migration state's name, or "" */
	bool replay_serial;
	unsigned seccomp_violate; /* 1 + a thread kind (vmm/sandbox.h), 0: none */
};

/* Parses spec (the variable's value) into *f, which is cleared first;
 * -EINVAL with e naming the bad part. */
int test_faults_parse(const char *spec, struct test_faults *f, struct err *e);

#endif
