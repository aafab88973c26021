/* SPDX-License-Identifier: MIT */
/*
 * vdpa/vhost_vdpa.h - the kernel's vhost-vdpa character device
 * (/dev/vhost-vdpa-N) as a vdpa_ops backend (vdpa/vdpa.h): a hardware vDPA
 * NIC (mlx5 and others), or tern's own software device exported through
 * VDUSE (tern vduse-net). Linux drivers/vhost/vdpa.c.
 *
 * The guest's kick and call eventfds are handed to the kernel as they are
 * (the KVM ioeventfd and irqfd), so the data path never passes through
 * tern. Every failing ioctl is logged with its name, the queue and what
 * the kernel said; ops return 0 or -errno.
 */
#ifndef TERN_VDPA_VHOST_VDPA_H
#define TERN_VDPA_VHOST_VDPA_H

#include <stdio.h>

#include "vdpa/vdpa.h"

/* Opens and owns path (exclusive: vhost-vdpa allows one opener). */
struct vdpa_dev *vhost_vdpa_open(const char *path, struct err *e);

/* tern vdpa-probe: prints what the device offers; with cycles > 0 then
 * opens, configures (features, a mapping, queue 0) and closes it that
 * many times and fails if the process holds more file descriptors after
 * than before. */
int vhost_vdpa_probe(const char *path, unsigned cycles, FILE *out, struct err *e);

/* Encodes one IOTLB message as written to the device: v2 (with asid) when
 * v2 is true, else the v1 layout. Returns its length. */
size_t vhost_vdpa_iotlb_msg(void *buf, bool v2, unsigned asid, uint8_t type, uint64_t iova, uint64_t size,
			    uint64_t uaddr, unsigned perm);

#endif
