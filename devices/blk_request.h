/* SPDX-License-Identifier: MIT */
/*
 * devices/blk_request.h - one virtio-blk request (virtio 1.2 §5.2.6) taken
 * apart and checked, before any I/O is made for it.
 *
 * The chain comes from the guest and is hostile. A request is a 16-byte
 * device-readable header (type, ioprio, sector), the data, and one
 * device-writable status byte at the very end. Whatever is wrong with it
 * is answered with a status (IOERR, UNSUPP) and no I/O: a sector range past
 * the end of the disk, a length that is not whole sectors, more data
 * segments than SEG_MAX or bytes than the request limit, data that the
 * device would have to write into read-only buffers (or read from
 * writable ones), a buffer outside guest RAM or across a hole in it, a
 * write to a read-only disk, a type the device did not offer. A chain
 * with no writable byte at its end cannot even be answered: it is
 * returned with used length 0 and counted.
 */
#ifndef TERN_DEVICES_BLK_REQUEST_H
#define TERN_DEVICES_BLK_REQUEST_H

#include <sys/uio.h>

#include "devices/disk_config.h"
#include "vdpa/vring.h"

/* request types and statuses (virtio 1.2 §5.2.6) */
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2
#define VIRTIO_BLK_WZ_F_UNMAP 1

struct virtio_blk_outhdr {
	uint32_t type, ioprio;
	uint64_t sector;
};
_Static_assert(sizeof(struct virtio_blk_outhdr) == 16, "virtio_blk_outhdr layout");

struct virtio_blk_range { /* virtio_blk_discard_write_zeroes */
	uint64_t sector;
	uint32_t num_sectors, flags;
};
_Static_assert(sizeof(struct virtio_blk_range) == 16, "virtio_blk_discard_write_zeroes layout");

/* What the disk allows; the same numbers its config space shows. */
struct blk_limits {
	uint64_t capacity;       /* sectors */
	uint32_t seg_max;        /* data segments per request */
	uint32_t max_bytes;      /* data bytes per read or write */
	uint32_t max_range;      /* sectors per discard or write-zeroes */
	bool readonly, discard;
	const char *serial;      /* up to DISK_SERIAL_LEN bytes, or "" */
};

enum blk_op {
	BLK_OP_ANSWER,  /* no I/O: status is the answer */
	BLK_OP_READ,
	BLK_OP_WRITE,
	BLK_OP_FLUSH,
	BLK_OP_DISCARD,
	BLK_OP_WRITE_ZEROES,
};

struct blk_req {
	enum blk_op op;
	uint8_t status;          /* BLK_OP_ANSWER's answer */
	uint8_t *status_byte;    /* where the answer goes (in guest RAM) */
	uint64_t offset, len;    /* bytes, for READ/WRITE/DISCARD/WRITE_ZEROES */
	bool unmap;              /* WRITE_ZEROES may deallocate */
	unsigned niov;
	struct iovec iov[VRING_MAX_SEGS]; /* the data, in guest RAM */
	uint32_t used_len;       /* what the device writes: data (reads, GET_ID) + status */
};

/* Takes chain c (its buffers in guest RAM t) apart against lim into *r.
 * 0: r is ready (an answer or I/O to make); -EINVAL: the chain has no
 * writable status byte and gets used length 0. GET_ID is answered here. */
int blk_request_parse(const struct vring_chain *c, const struct iotlb *t, const struct blk_limits *lim,
		      struct blk_req *r);

#endif
