/* SPDX-License-Identifier: MIT */
/*
 * devices/virtio_net_priv.h - what the virtio-net front end's two halves
 * share: the runtime (virtio_net.c: config space, bring-up, the device
 * table entry) and its part in snapshots and migrations
 * (virtio_net_migrate.c: pause, dirty tracking, the switch, state).
 */
#ifndef TERN_DEVICES_VIRTIO_NET_PRIV_H
#define TERN_DEVICES_VIRTIO_NET_PRIV_H

#include "devices/virtio_net.h"

struct vm;

struct net_dev *to_net(struct virtio_pci *vp);
/* The driver's features (FEATURES_OK): 0, or -EINVAL if refused. */
int net_features_ok(struct virtio_pci *vp);
/* Configures and starts every enabled queue at bases (NULL: 0), replays
 * ctrl (or NULL) before the data queues run. */
int net_start_ctrl(struct virtio_pci *vp, const uint16_t *bases, const struct net_ctrl_state *ctrl,
		   struct err *e);
/* Moves the data queues into shadow virtqueues or back; vp.lock held. */
int net_switch(struct net_dev *n, bool to_svq, struct err *e);

/* The device table's hooks (devices/device.h), over every network device. */
int net_state_save(struct vm *vm, void *fdt, struct err *e);
int net_state_load(struct vm *vm, const void *fdt, struct err *e);
int net_state_start(struct vm *vm, struct err *e);
int net_track_begin(struct vm *vm, struct dirty_log *log, struct err *e);
void net_track_end(struct vm *vm);
void net_forget_log(struct vm *vm);
int net_unlogged(struct vm *vm, struct err *e);
int net_pause(struct vm *vm, struct err *e);
void net_thaw(struct vm *vm);

#endif
