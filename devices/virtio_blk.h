/* SPDX-License-Identifier: MIT */
/*
 * devices/virtio_blk.h - virtio-blk over the modern virtio-pci transport
 * (virtio 1.2 §5.2), one per --disk: tern emulates the device, its data
 * path is devices/blk_io.c (io_uring), its requests are checked by
 * devices/blk_request.c, its image opened and locked by blk_image.c.
 */
#ifndef TERN_DEVICES_VIRTIO_BLK_H
#define TERN_DEVICES_VIRTIO_BLK_H

#include "devices/blk_copy.h"
#include "devices/blk_io.h"
#include "devices/virtio_pci.h"

#define VIRTIO_ID_BLOCK 2
#define BLK_QUEUE_SIZE 256
#define BLK_SEG_MAX (VRING_MAX_SEGS - 2) /* header and status take a segment each */
#define BLK_MAX_BYTES (4u << 20)          /* per read or write */
#define BLK_MAX_RANGE (1u << 22)          /* sectors per discard or write-zeroes (2 GiB) */

/* feature bits (virtio 1.2 §5.2.3) */
#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_TOPOLOGY 10
#define VIRTIO_BLK_F_MQ 12
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* struct virtio_blk_config as far as tern fills it */
struct virtio_blk_config {
	uint64_t capacity;
	uint32_t size_max, seg_max;
	uint16_t cylinders;
	uint8_t heads, sectors;
	uint32_t blk_size;
	uint8_t physical_block_exp, alignment_offset;
	uint16_t min_io_size;
	uint32_t opt_io_size;
	uint8_t writeback, unused0;
	uint16_t num_queues;
	uint32_t max_discard_sectors, max_discard_seg, discard_sector_alignment;
	uint32_t max_write_zeroes_sectors, max_write_zeroes_seg;
	uint8_t write_zeroes_may_unmap, unused1[3];
} __attribute__((packed));
_Static_assert(sizeof(struct virtio_blk_config) == 60, "virtio_blk_config layout");

struct blk_dev {
	struct virtio_pci vp;
	const struct disk_config *cfg;
	struct blk_image img;
	struct blk_limits lim;
	struct virtio_blk_config config;
	struct blk_engine eng;
	bool running;              /* eng serves the queues */
	bool paused;               /* by pause(): eng is paused */
	bool lost;                 /* a queue broke: NEEDS_RESET (atomic) */
	/* loaded by the state load, started by start() */
	bool staged;
	uint16_t staged_avail[DISK_MAX_QUEUES], staged_used[DISK_MAX_QUEUES];
	/* a migration copying the image (the source's; the copy hooks) */
	struct blk_copy_map copy;
	bool copying, copy_pass_done;
};

/* The regs of one disk's "blk@N" node in the state tree: a change here
 * needs a version bump (devices/state.h). Nothing is in flight when it is
 * taken (the disk is paused), so each queue's two indices are its state. */
struct blk_dev_state {
	struct virtio_pci_state vp;
	uint16_t last_avail[DISK_MAX_QUEUES], used_idx[DISK_MAX_QUEUES];
	uint64_t image_size;       /* bytes: a restore onto another size is refused */
	uint64_t rsvd;
};
_Static_assert(sizeof(struct blk_dev_state) == sizeof(struct virtio_pci_state) + 4 * DISK_MAX_QUEUES + 16,
	       "blk_dev_state layout");

/* A disk as GET /vm shows it (docs/api.md). */
struct disk_info {
	const char *path;
	bool readonly, direct;     /* direct: opened O_DIRECT (cache=none took) */
	unsigned queues;           /* the queues the driver runs, 0 before DRIVER_OK */
	uint64_t size;             /* bytes */
	struct blk_stats stats;    /* since the driver last started the disk */
};

void blk_dev_info(struct blk_dev *d, struct disk_info *out);

#endif
