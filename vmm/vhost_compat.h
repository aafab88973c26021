/* SPDX-License-Identifier: MIT */
/*
 * vmm/vhost_compat.h - vhost/vhost-vdpa uAPI constants newer than the
 * installed linux-libc-dev (Debian 12 ships 6.1 headers). Values from
 * Linux include/uapi/linux/vhost.h and
 * vhost_types.h; each is defined only where the header lacks it.
 */
#ifndef TERN_VDPA_VHOST_COMPAT_H
#define TERN_VDPA_VHOST_COMPAT_H

#include <linux/vhost.h>
#include <linux/vhost_types.h>

#ifndef VHOST_VDPA_RESUME /* 6.3 */
#define VHOST_VDPA_RESUME _IO(VHOST_VIRTIO, 0x7E)
#endif
#ifndef VHOST_VDPA_GET_VRING_DESC_GROUP /* 6.7 */
#define VHOST_VDPA_GET_VRING_DESC_GROUP _IOWR(VHOST_VIRTIO, 0x7F, struct vhost_vring_state)
#endif
#ifndef VHOST_VDPA_GET_VRING_SIZE /* 6.9 */
#define VHOST_VDPA_GET_VRING_SIZE _IOWR(VHOST_VIRTIO, 0x82, struct vhost_vring_state)
#endif
#ifndef VHOST_BACKEND_F_RESUME /* 6.3 */
#define VHOST_BACKEND_F_RESUME 0x5
#endif
#ifndef VHOST_BACKEND_F_ENABLE_AFTER_DRIVER_OK /* 6.6 */
#define VHOST_BACKEND_F_ENABLE_AFTER_DRIVER_OK 0x6
#endif
#ifndef VHOST_BACKEND_F_DESC_ASID /* 6.7 */
#define VHOST_BACKEND_F_DESC_ASID 0x7
#endif
#ifndef VHOST_BACKEND_F_IOTLB_PERSIST /* 6.7 */
#define VHOST_BACKEND_F_IOTLB_PERSIST 0x8
#endif

_Static_assert(sizeof(struct vhost_msg_v2) == 72, "vhost_msg_v2 layout");
_Static_assert(sizeof(struct vhost_iotlb_msg) == 32, "vhost_iotlb_msg layout");
_Static_assert(sizeof(struct vhost_vdpa_config) == 8, "vhost_vdpa_config layout");
_Static_assert(sizeof(struct vhost_vring_addr) == 40, "vhost_vring_addr layout");

#endif
