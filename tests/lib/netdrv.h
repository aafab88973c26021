/* SPDX-License-Identifier: MIT */
/*
 * tests/lib/netdrv.h - a virtio-net driver made of plain memory, for tests
 * and benchmarks of the shadow side (vdpa/shadow.c) without KVM: guest RAM
 * from mem_init(), tern's software vDPA device on a UNIX datagram wire
 * whose other end (the peer) the test holds, and the device brought up
 * through struct shadow exactly as devices/virtio_net.c does.
 *
 * Frames carry a sequence number and a pattern derived from it. Each
 * direction checks that what arrives is intact and in order: a sequence
 * number at or below the last one seen is a duplicate (an error); a gap
 * is counted as lost.
 */
#ifndef TERN_TESTS_LIB_NETDRV_H
#define TERN_TESTS_LIB_NETDRV_H

#include "vmm/dirty.h"
#include "vdpa/cvq_shadow.h"
#include "vdpa/fault_vdpa.h"
#include "vdpa/shadow.h"
#include "vdpa/sim_net.h"
#include "vmm/vm.h"

#define NETDRV_NUM 256
#define NETDRV_FRAME 80 /* 12-byte header + 68-byte Ethernet frame */

struct netdrv_q {
	uint64_t desc, avail, used, bufs; /* GPAs */
	uint16_t avail_idx, used_seen;
	uint16_t free[NETDRV_NUM];
	unsigned nfree;
};

struct netdrv_dir { /* one direction's frames */
	uint32_t next_seq;  /* sender's next */
	uint32_t last_seen; /* receiver's last, 0 = none */
	uint64_t got, lost, bad;
};

struct netdrv {
	struct vm vm;             /* only its memory is used */
	struct vdpa_dev *dev;
	struct vdpa_dev *faulty;   /* dev in a fault_vdpa wrapper: what sh drives */
	struct shadow sh;
	struct dirty_log log;
	uint8_t mac[6];
	int peer;
	char dev_path[64], peer_path[64];
	int kick[3], call[3];
	struct netdrv_q q[3];     /* rx, tx, cvq */
	struct netdrv_dir tx, rx; /* guest -> peer, peer -> guest */
	struct cvq_shadow cvq;    /* with ctrl: tern's shadow of queue 2 */
	bool ctrl;
	unsigned cvq_asid;
};

/* Brings it up: mem bytes of guest RAM (sparse), features f (VERSION_1,
 * ACCESS_PLATFORM, MAC, EVENT_IDX, CTRL_VQ, CTRL_RX by default when 0),
 * backend features minus backend_off, the mlx5 cost model if asked. */
int netdrv_init(struct netdrv *d, uint64_t mem, uint64_t backend_off, bool cost, struct err *e);
/* The same with the control queue behind a shadow (vdpa/cvq_shadow.h),
 * as tern runs it, when ctrl. */
int netdrv_init_ctrl(struct netdrv *d, uint64_t mem, uint64_t backend_off, bool cost, bool ctrl, struct err *e);
/* All of the above, and faults of the software device's own. */
struct netdrv_opts {
	uint64_t backend_off;
	bool cost, ctrl;
	uint64_t nack_at; /* the device refuses its nack_at-th control command */
};
int netdrv_init_opts(struct netdrv *d, uint64_t mem, const struct netdrv_opts *o, struct err *e);
struct netdrv *netdrv_new_opts(uint64_t mem, const struct netdrv_opts *o, struct err *e);
void netdrv_exit(struct netdrv *d);
/* A driver on the heap, brought up as netdrv_init_ctrl() does (no cost
 * model); NULL with e set on failure. netdrv_free() takes it down. */
struct netdrv *netdrv_new(uint64_t mem, uint64_t backend_off, bool ctrl, struct err *e);
void netdrv_free(struct netdrv *d);
/* Moves traffic for up to ms milliseconds or until n frames each way have
 * arrived (whichever first); returns frames that arrived in both. */
uint64_t netdrv_pump(struct netdrv *d, uint64_t n, unsigned ms);
/* Sends a CVQ command (class, cmd, one data byte) and returns its ack. */
int netdrv_cvq(struct netdrv *d, uint8_t cls, uint8_t cmd, uint8_t val);
/* Any command bytes (len up to 64 KiB) with an ack buffer of ack_len bytes
 * (0: none); returns the ack byte, or -ENODATA when the used length says
 * nothing was written, -ETIMEDOUT. */
int netdrv_cvq_raw(struct netdrv *d, const void *cmd, size_t len, uint32_t ack_len);
/* A dirty log that svq can mark (no KVM): npages of tern's bitmap. */
void netdrv_log_on(struct netdrv *d);
bool netdrv_dirty(const struct netdrv *d, uint64_t gpa);

#endif
