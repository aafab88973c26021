/* SPDX-License-Identifier: MIT */
/*
 * cmd/api_vm.h - the control API's hooks (struct api_ops) for a struct vm:
 * what GET /vm reports, pause/resume through vm_pause()/vm_resume(), and
 * shutdown through vm_request_exit().
 */
#ifndef TERN_CMD_API_VM_H
#define TERN_CMD_API_VM_H

#include <stdatomic.h>

#include "cmd/api.h"

struct vm;

/* The opaque argument of api_vm_ops. Until ready, the hooks touch no
 * part of vm (an incoming migration is building it): GET /vm says
 * "incoming", requests that act on the VM get 409, and shutdown makes
 * cancel_fd (an eventfd) readable, which ends migrate_incoming(). */
struct api_vm {
	struct vm *vm;
	uint64_t start_ns; /* now_ns() just before ready is set */
	atomic_bool ready; /* set once the vCPUs run; release/acquire */
	int cancel_fd;
};

extern const struct api_ops api_vm_ops;

#endif
