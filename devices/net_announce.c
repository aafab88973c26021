/* SPDX-License-Identifier: MIT */
/* devices/net_announce.c - VIRTIO_NET_S_ANNOUNCE emulated by tern (see the header). */
#include "devices/net_announce.h"

#include <stdint.h>
#include <string.h>

#define NET_CFG_STATUS 6      /* le16 status in virtio-net config space */
#define NET_S_ANNOUNCE 0x0002

void net_announce_init(struct net_announce *a)
{
	memset(a, 0, sizeof(*a));
}

void net_announce_clear(struct net_announce *a)
{
	atomic_store(&a->pending, false);
}

void net_announce_request(struct net_announce *a)
{
	if (a->shadowed)
		atomic_store(&a->pending, true);
}

void net_announce_acked(void *opaque)
{
	struct net_announce *a = opaque;

	if (atomic_exchange(&a->pending, false))
		atomic_fetch_add(&a->acks, 1);
}

void net_announce_config(const struct net_announce *a, unsigned off, void *buf, unsigned len)
{
	/* the low byte of the little-endian status holds S_ANNOUNCE */
	if (atomic_load(&a->pending) && off <= NET_CFG_STATUS && NET_CFG_STATUS < off + len)
		((uint8_t *)buf)[NET_CFG_STATUS - off] |= NET_S_ANNOUNCE;
}
