/* SPDX-License-Identifier: MIT */
/*
 * vdpa/virtio_bits.h - the virtio numbers tern's front end (devices/), its
 * software device (vdpa/sim_net*) and its shadow virtqueues share: device
 * ids, feature bits, device status bits and the virtio-net configuration
 * layout (virtio 1.2 §2.1, §5.1.3, §5.1.4, §6). One place, so that the
 * two sides of a negotiation cannot disagree on a bit.
 */
#ifndef TERN_VDPA_VIRTIO_BITS_H
#define TERN_VDPA_VIRTIO_BITS_H

#define VIRTIO_BIT(b) (1ull << (b))

#define VIRTIO_ID_NET 1

/* transport and ring features (virtio 1.2 §6) */
#define VIRTIO_F_RING_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32
#define VIRTIO_F_ACCESS_PLATFORM 33

/* virtio-net features (§5.1.3) */
#define VNET_F_CSUM 0
#define VNET_F_GUEST_CSUM 1
#define VNET_F_CTRL_GUEST_OFFLOADS 2
#define VNET_F_MTU 3
#define VNET_F_MAC 5
#define VNET_F_STATUS 16
#define VNET_F_CTRL_VQ 17
#define VNET_F_CTRL_RX 18
#define VNET_F_CTRL_VLAN 19
#define VNET_F_CTRL_RX_EXTRA 20
#define VNET_F_GUEST_ANNOUNCE 21
#define VNET_F_MQ 22
#define VNET_F_CTRL_MAC_ADDR 23
#define VNET_F_GUEST_USO4 54
#define VNET_F_GUEST_USO6 55
#define VNET_F_HASH_REPORT 57
#define VNET_F_RSS 60

/* device status (§2.1) */
#define VIRTIO_S_ACKNOWLEDGE 0x01
#define VIRTIO_S_DRIVER 0x02
#define VIRTIO_S_DRIVER_OK 0x04
#define VIRTIO_S_FEATURES_OK 0x08
#define VIRTIO_S_NEEDS_RESET 0x40
#define VIRTIO_S_FAILED 0x80

/* struct virtio_net_config (§5.1.4): byte offsets, and its length through
 * mtu (what a device without RSS or HASH_REPORT has) and through
 * supported_hash_types */
#define VNET_CFG_MAC 0
#define VNET_CFG_STATUS 6
#define VNET_CFG_MAX_PAIRS 8
#define VNET_CFG_MTU 10
#define VNET_CFG_RSS_MAX_KEY 17
#define VNET_CFG_RSS_MAX_TABLE 18
#define VNET_CFG_HASH_TYPES 20
#define VNET_CFG_LEN_BASE 12
#define VNET_CFG_LEN_RSS 24

#endif
