/* SPDX-License-Identifier: MIT */
/*
 * vdpa/vdpa.h - the vDPA backend interface: one ops table at the level of the
 * vhost-vdpa uAPI (Linux include/uapi/linux/vhost.h), so the in-process
 * software device and the kernel client of /dev/vhost-vdpa-N are two
 * implementations of the same contract.
 *
 * Contract (as with vhost-vdpa): every call returns 0 or -errno; calls come
 * from one control thread at a time; queue set-up happens before DRIVER_OK
 * (or while suspended); set_status(0) resets the device. Addresses handed to
 * the device are IOVAs, translated by the device through the IOTLB of the
 * address space (ASID) its virtqueue group is attached to.
 */
#ifndef TERN_VDPA_VDPA_H
#define TERN_VDPA_VDPA_H

#include "vdpa/virtio_bits.h"
#include "vmm/util.h"

/* Backend feature bits (VHOST_BACKEND_F_*), by bit number. */
#define VDPA_BF_IOTLB_MSG_V2 1
#define VDPA_BF_IOTLB_BATCH 2
#define VDPA_BF_IOTLB_ASID 3
#define VDPA_BF_SUSPEND 4
#define VDPA_BF_RESUME 5
#define VDPA_BF_ENABLE_AFTER_DRIVER_OK 6
#define VDPA_BF_DESC_ASID 7
#define VDPA_BF_IOTLB_PERSIST 8

#define VDPA_PERM_RO 1 /* device reads */
#define VDPA_PERM_WO 2 /* device writes */
#define VDPA_PERM_RW 3

struct vdpa_dev;

struct vdpa_vring_addr {
	uint64_t desc, avail, used; /* IOVAs */
};

struct vdpa_ops {
	uint32_t (*device_id)(struct vdpa_dev *d);
	int (*get_features)(struct vdpa_dev *d, uint64_t *features);
	int (*set_features)(struct vdpa_dev *d, uint64_t features);
	int (*get_backend_features)(struct vdpa_dev *d, uint64_t *features);
	int (*set_backend_features)(struct vdpa_dev *d, uint64_t features);
	int (*get_status)(struct vdpa_dev *d, uint8_t *status);
	int (*set_status)(struct vdpa_dev *d, uint8_t status);
	int (*get_config)(struct vdpa_dev *d, unsigned off, void *buf, unsigned len);
	int (*set_config)(struct vdpa_dev *d, unsigned off, const void *buf, unsigned len);
	unsigned (*vqs_count)(struct vdpa_dev *d);
	uint16_t (*vring_num_max)(struct vdpa_dev *d);
	int (*set_vring_num)(struct vdpa_dev *d, unsigned idx, uint16_t num);
	int (*set_vring_addr)(struct vdpa_dev *d, unsigned idx, const struct vdpa_vring_addr *a);
	int (*set_vring_base)(struct vdpa_dev *d, unsigned idx, uint16_t last_avail);
	/* Next avail index the device would consume (trust only when suspended). */
	int (*get_vring_base)(struct vdpa_dev *d, unsigned idx, uint16_t *last_avail);
	int (*set_vring_enable)(struct vdpa_dev *d, unsigned idx, bool enable);
	/* Eventfds; -1 detaches. The device reads kick_fd and writes call_fd. */
	int (*set_vring_kick)(struct vdpa_dev *d, unsigned idx, int fd);
	int (*set_vring_call)(struct vdpa_dev *d, unsigned idx, int fd);
	int (*set_config_call)(struct vdpa_dev *d, int fd);
	int (*get_iova_range)(struct vdpa_dev *d, uint64_t *first, uint64_t *last);
	int (*iotlb_update)(struct vdpa_dev *d, unsigned asid, uint64_t iova, uint64_t size, void *hva,
			    unsigned perm);
	int (*iotlb_invalidate)(struct vdpa_dev *d, unsigned asid, uint64_t iova, uint64_t size);
	/* A batch belongs to one address space: every update and invalidate
	 * inside it, and its end, name the ASID its begin named (the kernel
	 * refuses any other with EINVAL: vhost_vdpa_process_iotlb_msg). */
	int (*iotlb_batch_begin)(struct vdpa_dev *d, unsigned asid);
	int (*iotlb_batch_end)(struct vdpa_dev *d, unsigned asid);
	unsigned (*group_num)(struct vdpa_dev *d);
	unsigned (*as_num)(struct vdpa_dev *d);
	int (*get_vring_group)(struct vdpa_dev *d, unsigned idx, unsigned *group);
	int (*get_vring_desc_group)(struct vdpa_dev *d, unsigned idx, unsigned *group);
	int (*set_group_asid)(struct vdpa_dev *d, unsigned group, unsigned asid);
	int (*suspend)(struct vdpa_dev *d);
	int (*resume)(struct vdpa_dev *d);
	void (*destroy)(struct vdpa_dev *d);
};

struct vdpa_dev {
	const struct vdpa_ops *ops;
	const char *name; /* for messages */
	/* The device keeps its mappings across a reset without offering
	 * IOTLB_PERSIST (VDUSE, whose bounce map outlives a reset). */
	bool keeps_iotlb;
};

#endif
