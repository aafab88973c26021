/* SPDX-License-Identifier: MIT */
/*
 * devices/virtio_net.h - virtio-net over vDPA: the guest sees a virtio-pci
 * network device; its data path (and its control queue) belong to a vDPA
 * backend, wired to the guest with ioeventfds and irqfds. tern programs the
 * backend when the driver sets FEATURES_OK and DRIVER_OK, and maps all guest
 * RAM into the backend's ASID 0 at IOVA = GPA once, for the device's life.
 */
#ifndef TERN_DEVICES_VIRTIO_NET_H
#define TERN_DEVICES_VIRTIO_NET_H

#include "devices/virtio_pci.h"
#include "vdpa/vdpa.h"

#define NET_MAX_DEVS 4

/* What --net asks for. */
struct net_config {
	char socket[108], peer[108]; /* UNIX socket paths, or "" */
	char tap[16];                /* TAP interface name, or "" */
	uint8_t mac[6];
	bool mac_set;
	unsigned queues;        /* queue pairs */
	uint64_t features_off;  /* virtio feature bits to withhold */
	uint64_t backend_off;   /* backend feature bits to withhold */
	bool cost_mlx5;         /* cost=mlx5: the device-cost model */
};

struct net_dev {
	struct virtio_pci vp;
	struct vdpa_dev *vdpa;
	uint64_t backend_features; /* negotiated with the backend */
	uint64_t offered;          /* features offered to the guest */
};

/* Parses "vdpa-sim,socket=A,peer=B,mac=..,queues=N,...". */
int net_config_parse(const char *spec, struct net_config *c, struct err *e);

#endif
