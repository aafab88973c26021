/* SPDX-License-Identifier: MIT */
/*
 * firmware/virtio_blk.h - a polling virtio-blk driver for the test guest,
 * on the virtio-pci transport of virtio_net.c: one queue, one request at a
 * time (header, data, status: three descriptors), no interrupts. What the
 * device returns is checked (the used id is the request's, the used
 * length within the buffers).
 */
#ifndef TERN_FIRMWARE_VIRTIO_BLK_H
#define TERN_FIRMWARE_VIRTIO_BLK_H

#include "virtio_net.h"

#define VIRTIO_PCI_DEVICE_BLK 0x1042 /* 0x1040 + device ID 2 */
#define VBLK_SECTOR 512
#define VBLK_BUF_MAX 65536 /* the largest request this driver makes */

#define VBLK_T_IN 0
#define VBLK_T_OUT 1
#define VBLK_T_FLUSH 4
#define VBLK_T_GET_ID 8
#define VBLK_S_OK 0
#define VBLK_S_IOERR 1
#define VBLK_S_UNSUPP 2

#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_MQ 12
#define VBLK_MAX_QUEUES 4

struct vblk {
	struct vnet t;          /* the transport */
	struct vq q;            /* queue 0, which vblk_request() uses */
	struct vq more[VBLK_MAX_QUEUES - 1]; /* queues 1.. (blk-bench) */
	unsigned nq;            /* queues set up */
	uint64_t capacity;      /* sectors */
	uint8_t *hdr;           /* header at 0, status at 64 */
	uint8_t *buf;           /* VBLK_BUF_MAX bytes */
};

/* Finds the index-th virtio-blk function and brings it to DRIVER_OK with
 * up to queues queues (MQ: as many as the device has, at most that). 0 or
 * -1 (b->t.error). */
int vblk_up(struct vblk *b, unsigned index, unsigned queues);
/* Queue i (0..nq-1). */
struct vq *vblk_queue(struct vblk *b, unsigned i);
/* One request of type with len bytes of b->buf (in for reads and GET_ID,
 * out for writes): the device's status (VBLK_S_*), or -1 on timeout, -2
 * if the device answered badly. */
int vblk_request(struct vblk *b, uint32_t type, uint64_t sector, uint32_t len);

struct bootinfo;
/* Runs the blk-* workload named test (blk_tests.c): a GUEST_EXIT_* status. */
unsigned blk_test(const char *test, const struct bootinfo *bi);

#endif
