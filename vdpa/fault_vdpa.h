/* SPDX-License-Identifier: MIT */
/*
 * vdpa/fault_vdpa.h - fault injection through the ops table: a vDPA device
 * that wraps another, forwards every op to it, and fails one chosen call
 * with -EIO before the wrapped device sees it (as if the device had
 * refused it), in the spirit of vringh's injected accessors. Unit tests
 * wrap their devices in it; the program wraps a network device in it only
 * when TERN_TEST_FAULTS asks for a switch fault (vmm/test_faults.h), so
 * production code has no fault hooks of its own.
 *
 * Armed, the wrapper counts the calls made by the arming thread only (a
 * vCPU reading the config space meanwhile is not counted), and of those
 * only commands (set_*, get_vring_base, IOTLB, suspend, resume; queries
 * of features, status, config space and groups pass uncounted), and fails the
 * at-th of them, or the at-th call of the op named op; one failure per
 * arming: what a rollback calls afterwards goes through.
 */
#ifndef TERN_VDPA_FAULT_VDPA_H
#define TERN_VDPA_FAULT_VDPA_H

#include <pthread.h>

#include "vdpa/vdpa.h"

/* The wrapper; destroying it destroys inner. NULL with e set. */
struct vdpa_dev *fault_vdpa_wrap(struct vdpa_dev *inner, struct err *e);
/* The wrapped device (d itself if d is no wrapper). */
struct vdpa_dev *fault_vdpa_inner(struct vdpa_dev *d);
/* From now on this thread's calls are counted from 0; at < 0 only counts.
 * op: the vDPA op's name as in struct vdpa_ops ("suspend"), or NULL. */
void fault_vdpa_arm(struct vdpa_dev *d, int at, const char *op);
/* Stops counting; returns the calls counted, and in injected (len bytes)
 * "call N (op)" for the call that was failed, or "" if none was. */
unsigned fault_vdpa_disarm(struct vdpa_dev *d, char *injected, size_t len);

#endif
