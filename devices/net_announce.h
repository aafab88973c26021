/* SPDX-License-Identifier: MIT */
/*
 * devices/net_announce.h - VIRTIO_NET_S_ANNOUNCE, emulated by tern.
 *
 * After a restore (and, later, a migration) the guest must tell its
 * network that it moved: with VIRTIO_NET_F_GUEST_ANNOUNCE negotiated, the
 * device sets S_ANNOUNCE in its config status and raises a config
 * interrupt; the driver sends gratuitous ARPs / unsolicited neighbour
 * advertisements and acknowledges with the control command
 * VIRTIO_NET_CTRL_ANNOUNCE_ACK, which clears the bit (virtio 1.x 5.1.6.5.4).
 * A vDPA device knows nothing of migrations, so tern owns the bit, as QEMU
 * does for vhost-vdpa: config reads show it, and tern must see the ACK.
 *
 * The control queue otherwise runs in passthrough, so tern watches it: the
 * guest's CVQ kicks come to a thread of tern's, which reads (never writes)
 * the commands newly made available, notes ANNOUNCE_ACKs, and only then
 * kicks the device. The device consumes a command after that kick, so tern
 * reads each command before anything can complete and recycle it. Shadowing
 * the control queue outright (issue 9) will replace the watch; the contract
 * of this header stays.
 */
#ifndef TERN_DEVICES_NET_ANNOUNCE_H
#define TERN_DEVICES_NET_ANNOUNCE_H

#include <pthread.h>
#include <stdatomic.h>

#include "vdpa/iotlb.h"
#include "vdpa/vring.h"

struct vm;
struct virtio_pci_queue;

struct net_announce {
	struct iotlb ram;        /* guest RAM at IOVA = GPA, read-only use */
	struct vring_dev cvq;    /* the guest's control queue; last_avail is tern's cursor */
	int guest_kick;          /* the CVQ's ioeventfd (read by the watch) */
	int dev_kick;            /* the device's CVQ kick (written by the watch) */
	int stop_fd;
	pthread_t thread;
	bool watching;
	atomic_bool pending;     /* S_ANNOUNCE is set */
	atomic_uint acks;        /* ANNOUNCE_ACKs the guest sent while pending */
	bool shadowed;           /* the shadow control queue reports ACKs instead */
};

int net_announce_init(struct net_announce *a, struct vm *vm, struct err *e);
void net_announce_exit(struct net_announce *a);
/* Starts the watch on queue q, whose next unread avail entry is
 * last_avail; *dev_kick is then the eventfd to give the device as that
 * queue's kick. 0 or -errno. */
int net_announce_watch(struct net_announce *a, const struct virtio_pci_queue *q, uint16_t last_avail,
		       int *dev_kick);
/* Stops the watch (device reset or exit); clears a pending announce. */
void net_announce_unwatch(struct net_announce *a);
/* Sets S_ANNOUNCE until the guest acknowledges it; the caller raises the
 * config interrupt. Only meaningful while watching. */
void net_announce_request(struct net_announce *a);
/* The shadow control queue saw an ANNOUNCE_ACK (callback form). */
void net_announce_acked(void *opaque);
/* ORs S_ANNOUNCE into a config-space read of [off, off+len) if pending. */
void net_announce_config(const struct net_announce *a, unsigned off, void *buf, unsigned len);

#endif
