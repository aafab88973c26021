/* SPDX-License-Identifier: MIT */
/*
 * vmm/api_vm.h - the control API's hooks (struct api_ops) for a struct vm:
 * what GET /vm reports, pause/resume through vm_pause()/vm_resume(), and
 * shutdown through vm_request_exit().
 */
#ifndef TERN_VMM_API_VM_H
#define TERN_VMM_API_VM_H

#include "vmm/api.h"

struct vm;

/* The opaque argument of api_vm_ops. */
struct api_vm {
	struct vm *vm;
	uint64_t start_ns; /* now_ns() when the API started serving, just
			    * before the vCPUs start; set before api_serve() */
};

extern const struct api_ops api_vm_ops;

#endif
