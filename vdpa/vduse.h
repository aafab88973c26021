/* SPDX-License-Identifier: MIT */
/*
 * vdpa/vduse.h - `tern vduse-net`: tern's software vDPA net device
 * (vdpa/sim_net.h) exported to the kernel through VDUSE, so that
 * `vdpa dev add name NAME mgmtdev vduse` gives a /dev/vhost-vdpa-N backed by
 * the very same device core. The daemon is a *driver* of the device's
 * vdpa_ops: it turns the kernel's VDUSE messages into vdpa_ops calls and the
 * device's interrupts into VDUSE interrupt injections; frames never pass
 * through it. Linux 6.12 VDUSE, API 0 (drivers/vdpa/vdpa_user/vduse_dev.c).
 */
#ifndef TERN_VDPA_VDUSE_H
#define TERN_VDPA_VDUSE_H

#include <stddef.h>
#include <linux/vduse.h>

#include "vmm/sandbox.h"

#include "vmm/util.h"

/* struct virtio_net_config as far as the device fills it: mac[6], status,
 * max_virtqueue_pairs, mtu (little-endian). */
#define VDUSE_NET_CONFIG_SIZE 12
/* The VDUSE_CREATE_DEV argument: the fixed header, then the config bytes. */
#define VDUSE_NET_DEV_CONFIG_LEN (offsetof(struct vduse_dev_config, config) + VDUSE_NET_CONFIG_SIZE)

struct vduse_net_options {
	const char *name;        /* VDUSE and vdpa device name (/dev/vduse/NAME) */
	const char *socket_path; /* wire: UNIX datagram socket bound here ... */
	const char *peer_path;   /* ... joined to this peer; or */
	const char *tap;         /* a TAP interface */
	uint8_t mac[6];
	bool mac_set;            /* else a locally administered MAC from the pid */
	struct sandbox sandbox;  /* --seccomp: the daemon's filter, once its device exists */
};

/*
 * Builds the VDUSE_CREATE_DEV argument for a virtio-net device (device id
 * 1, two queues, vq_align 4096) into buf (cap bytes, any alignment):
 * *len = VDUSE_NET_DEV_CONFIG_LEN. Refuses, with e set,
 * what Linux 6.12 would refuse with a bare EINVAL: a name that is empty,
 * VDUSE_NAME_MAX bytes or longer, or not usable as /dev/vduse/NAME;
 * features without VIRTIO_F_VERSION_1 or VIRTIO_F_ACCESS_PLATFORM, or with
 * VIRTIO_NET_F_CTRL_VQ. 0, -EINVAL, or -ENOSPC when cap is too small.
 */
int vduse_net_dev_config(const uint8_t config[VDUSE_NET_CONFIG_SIZE], uint64_t features, const char *name,
			 void *buf, size_t cap, size_t *len, struct err *e);

/*
 * Creates the device and the VDUSE device, prints "vduse-net NAME ready" on
 * stdout once every queue is set up (the moment `vdpa dev add` may run),
 * then serves the kernel's messages until SIGINT or SIGTERM, and tears
 * everything down in reverse. Blocks SIGINT and SIGTERM in the calling
 * thread while it runs (they arrive through a signalfd) and restores the
 * mask before returning. 0 after a signal, or -errno with e set.
 */
int vduse_net_run(const struct vduse_net_options *o, struct err *e);

#endif
