/* SPDX-License-Identifier: MIT */
/*
 * devices/net_announce.h - VIRTIO_NET_S_ANNOUNCE, emulated by tern.
 *
 * After a restore or a migration the guest must tell its network that it
 * moved: with VIRTIO_NET_F_GUEST_ANNOUNCE negotiated, the device sets
 * S_ANNOUNCE in its config status and raises a config interrupt; the driver
 * sends gratuitous ARPs / unsolicited neighbour advertisements and
 * acknowledges with the control command VIRTIO_NET_CTRL_ANNOUNCE_ACK, which
 * clears the bit (virtio 1.x 5.1.6.5.4). A vDPA device knows nothing of
 * migrations, so tern owns the bit, as QEMU does for vhost-vdpa: config
 * reads show it, and the shadow control queue (vdpa/cvq_shadow.h), which
 * answers ANNOUNCE_ACK itself, reports the acknowledgement here.
 */
#ifndef TERN_DEVICES_NET_ANNOUNCE_H
#define TERN_DEVICES_NET_ANNOUNCE_H

#include <stdatomic.h>
#include <stdbool.h>

struct net_announce {
	atomic_bool pending;     /* S_ANNOUNCE is set */
	atomic_uint acks;        /* ANNOUNCE_ACKs the guest sent while pending */
	bool shadowed;           /* a shadow control queue reports the ACKs */
};

void net_announce_init(struct net_announce *a);
/* Clears a pending announce (the device was reset). */
void net_announce_clear(struct net_announce *a);
/* Sets S_ANNOUNCE until the guest acknowledges it; the caller raises the
 * config interrupt. Only while a shadow control queue can see the ACK. */
void net_announce_request(struct net_announce *a);
/* The shadow control queue saw an ANNOUNCE_ACK (callback form). */
void net_announce_acked(void *opaque);
/* ORs S_ANNOUNCE into a config-space read of [off, off+len) if pending. */
void net_announce_config(const struct net_announce *a, unsigned off, void *buf, unsigned len);

#endif
