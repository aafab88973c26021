/* SPDX-License-Identifier: MIT */
/*
 * vdpa/sim_net.c - the software vDPA net device (see sim_net.h).
 *
 * Threads: control calls (vdpa_ops) come from tern's threads; the data path
 * runs on the device's own thread. One mutex covers all device state; the
 * data thread holds it while it processes a round of queue work and never
 * while it sleeps in poll(). Control calls that change what the data thread
 * waits on write ctl_fd to wake it.
 */
#include "vdpa/sim_net.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "vdpa/cvq.h"
#include "vdpa/iotlb.h"
#include "vdpa/vring.h"
#include "vdpa/wire.h"

#define VIRTIO_ID_NET 1
#define VNET_HDR_LEN 12
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_RING_INDIRECT_DESC 28
#define VNET_F_MTU 3
#define NR_GROUPS 3 /* data, CVQ, data descriptor rings (DESC_ASID) */
#define DESC_GROUP 2
#define NR_AS 2
#define MAX_VQS (2 * SIM_NET_MAX_PAIRS + 1)
#define QUEUE_MAX 1024
#define BATCH 64 /* chains per queue per round, for fairness */

struct sim_vq {
	struct vring_dev ring;
	bool ready;     /* SET_VRING_ENABLE */
	bool attached;  /* rings resolved through the IOTLB */
	int kick_fd, call_fd;
};

struct sim_net {
	struct vdpa_dev vdpa;
	struct sim_net_config cfg;
	pthread_mutex_t lock;
	pthread_t thread;
	bool thread_started, stop;
	int ctl_fd;
	uint64_t dev_features, features, backend_offered, backend;
	uint8_t status;
	bool suspended;
	uint8_t config[12]; /* mac[6], status, max_virtqueue_pairs, mtu (le) */
	unsigned nvqs;
	struct sim_vq vq[MAX_VQS];
	struct iotlb tlb[NR_AS];
	unsigned group_asid[NR_GROUPS];
	struct net_ctrl_state ctrl;
	struct cvq_limits lim;
	struct wire wire;
	int config_call_fd;
	/* A frame from the wire waiting for an RX buffer, and one for the wire
	 * waiting for the peer to drain: back-pressure, never loss. */
	size_t rx_len, tx_len;
	bool rx_held, tx_held;
	uint8_t rx_frame[WIRE_MAX_FRAME];
	uint8_t tx_frame[WIRE_MAX_FRAME];
	struct vring_chain chain;
	struct sim_net_stats stats;
};

void sim_net_cost_mlx5(struct sim_net_cost *c)
{
	*c = (struct sim_net_cost){
		.pin_ns_per_gib = 180000000,   /* 0.18 s/GiB ... */
		.unpin_ns_per_gib = 20000000,  /* + 0.02 s/GiB: 128 GiB cycle = 25.6 s */
		.map_entry_ns = 50000,
		.reset_ns = 1000000,
		.vq_setup_ns = 200000,
		.suspend_ns = 2500000,         /* mlx5 with parallel VQ commands */
		.resume_ns = 5000000,
	};
}

/* Sleeps ns (called without the device lock) and accounts for it. */
static void cost_delay(struct sim_net *s, uint64_t ns);

static struct sim_net *to_sim(struct vdpa_dev *d)
{
	return container_of(d, struct sim_net, vdpa);
}

static bool neg(const struct sim_net *s, unsigned bit)
{
	return s->features & (1ull << bit);
}

static unsigned cvq_index(const struct sim_net *s)
{
	return 2u * s->cfg.max_pairs;
}

static bool has_cvq(const struct sim_net *s)
{
	return s->dev_features & (1ull << VNET_F_CTRL_VQ);
}

static unsigned vq_group(const struct sim_net *s, unsigned idx)
{
	return has_cvq(s) && idx == cvq_index(s) ? 1 : 0;
}

static const struct iotlb *vq_tlb(const struct sim_net *s, unsigned idx)
{
	return &s->tlb[s->group_asid[vq_group(s, idx)]];
}

/* With DESC_ASID the data queues' rings (not their buffers) belong to a
 * group of their own, so they can move to another ASID on their own. */
static unsigned vq_desc_group(const struct sim_net *s, unsigned idx)
{
	bool desc_asid = s->backend & (1ull << VDPA_BF_DESC_ASID);
	return desc_asid && vq_group(s, idx) == 0 ? DESC_GROUP : vq_group(s, idx);
}

static void wake(struct sim_net *s)
{
	uint64_t one = 1;

	if (write(s->ctl_fd, &one, sizeof(one)) < 0) {
		/* the counter is saturated: the thread is awake anyway */
	}
}

static void signal_fd(int fd)
{
	uint64_t one = 1;

	if (fd >= 0 && write(fd, &one, sizeof(one)) < 0) {
		/* an eventfd only fails when its counter is saturated */
	}
}

/* The driver broke a ring rule: stop and ask for a reset. Lock held. */
static void fail_device(struct sim_net *s)
{
	s->stats.ring_errors++;
	s->status |= VIRTIO_S_NEEDS_RESET;
	signal_fd(s->config_call_fd);
}

static void notify(struct sim_vq *q, uint16_t old_used)
{
	if (q->ring.used_idx != old_used && vring_dev_need_notify(&q->ring, old_used))
		signal_fd(q->call_fd);
}

static bool running(const struct sim_net *s)
{
	return (s->status & VIRTIO_S_DRIVER_OK) && !(s->status & VIRTIO_S_NEEDS_RESET) && !s->suspended;
}

/* Lock held. Resolves rings when a queue becomes usable. */
static bool vq_usable(struct sim_net *s, unsigned idx)
{
	struct sim_vq *q = &s->vq[idx];

	if (!q->ready)
		return false;
	if (!q->attached) {
		q->ring.event_idx = neg(s, VIRTIO_F_EVENT_IDX);
		if (vring_dev_attach(&q->ring, &s->tlb[s->group_asid[vq_desc_group(s, idx)]], vq_tlb(s, idx)) < 0) {
			fail_device(s);
			return false;
		}
		q->attached = true;
	}
	return true;
}

static void process_cvq(struct sim_net *s)
{
	unsigned idx = cvq_index(s);
	struct sim_vq *q = &s->vq[idx];
	uint8_t cmd[CVQ_CMD_MAX];
	uint16_t old = q->ring.used_idx;

	if (!has_cvq(s) || !neg(s, VNET_F_CTRL_VQ) || !vq_usable(s, idx))
		return;
	for (int n = 0; n < BATCH; n++) {
		int r = vring_dev_pop(&q->ring, &s->chain);
		if (r < 0) {
			fail_device(s);
			break;
		}
		if (!r)
			break;
		uint8_t ack = CVQ_ERR;
		if (s->chain.out_len <= sizeof(cmd) && s->chain.in_len >= 1) {
			size_t len = vring_chain_read(&s->chain, vq_tlb(s, idx), 0, cmd, s->chain.out_len);
			if (len == s->chain.out_len)
				ack = cvq_apply(&s->ctrl, &s->lim, s->features, cmd, len);
		}
		s->stats.cvq_cmds++;
		size_t w = s->chain.in_len ? vring_chain_write(&s->chain, vq_tlb(s, idx), s->chain.in_len - 1, &ack, 1)
					   : 0;
		vring_dev_push(&q->ring, s->chain.head, (uint32_t)w);
	}
	notify(q, old);
}

/* Sends TX chains of one queue until empty, the batch ends, or the wire
 * pushes back. Returns true if it did some work. */
static bool process_tx(struct sim_net *s, unsigned pair)
{
	unsigned idx = 2 * pair + 1;
	struct sim_vq *q = &s->vq[idx];
	uint16_t old = q->ring.used_idx;
	bool worked = false;

	if (!vq_usable(s, idx))
		return false;
	for (int n = 0; n < BATCH && !s->tx_held; n++) {
		int r = vring_dev_pop(&q->ring, &s->chain);
		if (r < 0) {
			fail_device(s);
			break;
		}
		if (!r)
			break;
		worked = true;
		uint64_t len = s->chain.out_len;
		if (len > VNET_HDR_LEN && len - VNET_HDR_LEN <= WIRE_MAX_FRAME) {
			size_t got = vring_chain_read(&s->chain, vq_tlb(s, idx), VNET_HDR_LEN, s->tx_frame,
						      (size_t)(len - VNET_HDR_LEN));
			int w = wire_send(&s->wire, s->tx_frame, got);
			if (w == -EAGAIN) {
				s->tx_len = got; /* copied: the buffer goes back now */
				s->tx_held = true;
			}
			s->stats.tx_frames++;
		}
		vring_dev_push(&q->ring, s->chain.head, 0);
	}
	notify(q, old);
	return worked;
}

/* RX queue for a frame: a flow hash over the MACs, ethertype and the first
 * 8 bytes of payload (for IPv4 that covers addresses' start; good enough to
 * keep each flow on one queue). */
static unsigned steer(const struct sim_net *s, const uint8_t *f, size_t len)
{
	uint32_t h = 2166136261u;
	unsigned pairs = neg(s, VNET_F_MQ) ? s->ctrl.pairs : 1;

	for (size_t i = 0; i < 22 && i < len; i++)
		h = (h ^ f[i]) * 16777619u;
	return pairs > 1 ? h % pairs : 0;
}

/* Delivers the held frame if a buffer is there. Returns false if it must
 * wait for the driver. */
static bool deliver_rx(struct sim_net *s)
{
	const uint8_t *f = s->rx_frame;
	size_t len = s->rx_len;
	int vlan = -1;

	if (len < 14) {
		s->rx_held = false;
		return true;
	}
	if (f[12] == 0x81 && f[13] == 0x00 && len >= 18)
		vlan = ((f[14] << 8) | f[15]) & 0xfff;
	if (!cvq_filter_pass(&s->ctrl, f, vlan)) {
		s->stats.rx_filtered++;
		s->rx_held = false;
		return true;
	}
	unsigned idx = 2 * steer(s, f, len);
	struct sim_vq *q = &s->vq[idx];
	if (!vq_usable(s, idx))
		return false;
	uint16_t old = q->ring.used_idx;
	int r = vring_dev_pop(&q->ring, &s->chain);
	if (r < 0) {
		fail_device(s);
		return false;
	}
	if (!r)
		return false;
	uint8_t hdr[VNET_HDR_LEN] = { 0 };
	hdr[10] = 1; /* num_buffers */
	uint32_t used = 0;
	if (s->chain.in_len >= VNET_HDR_LEN + len) {
		used = (uint32_t)vring_chain_write(&s->chain, vq_tlb(s, idx), 0, hdr, sizeof(hdr));
		used += (uint32_t)vring_chain_write(&s->chain, vq_tlb(s, idx), VNET_HDR_LEN, f, len);
		s->stats.rx_frames++;
	} else {
		s->stats.rx_too_big++;
	}
	vring_dev_push(&q->ring, s->chain.head, used);
	notify(q, old);
	s->rx_held = false;
	return true;
}

static void process_rx(struct sim_net *s)
{
	for (int n = 0; n < BATCH; n++) {
		if (!s->rx_held) {
			ssize_t got = wire_recv(&s->wire, s->rx_frame, sizeof(s->rx_frame));
			if (got <= 0)
				return;
			s->rx_len = (size_t)got;
			s->rx_held = true;
		}
		if (!deliver_rx(s))
			return;
	}
}

static void drain(int fd)
{
	uint64_t v;

	if (fd >= 0 && read(fd, &v, sizeof(v)) < 0) {
		/* nothing pending */
	}
}

static void cost_delay(struct sim_net *s, uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };

	if (!ns)
		return;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&s->lock);
	s->stats.cost_ns += ns;
	pthread_mutex_unlock(&s->lock);
}

static uint64_t per_gib(uint64_t ns_per_gib, uint64_t bytes)
{
	/* bytes / GiB * ns, without overflow for any size below 2^64 */
	return (bytes >> 30) * ns_per_gib + (((bytes & ((1ull << 30) - 1)) * ns_per_gib) >> 30);
}

static void *sim_thread(void *arg)
{
	struct sim_net *s = arg;
	struct pollfd pf[MAX_VQS + 2];

	pthread_mutex_lock(&s->lock);
	while (!s->stop) {
		unsigned n = 0;
		bool busy = false;

		if (running(s)) {
			if (s->tx_held && wire_send(&s->wire, s->tx_frame, s->tx_len) != -EAGAIN)
				s->tx_held = false;
			process_cvq(s);
			for (unsigned p = 0; p < s->cfg.max_pairs; p++)
				busy |= process_tx(s, p);
			process_rx(s);
		}
		pf[n++] = (struct pollfd){ .fd = s->ctl_fd, .events = POLLIN };
		if (running(s)) {
			for (unsigned i = 0; i < s->nvqs; i++)
				if (s->vq[i].ready && s->vq[i].kick_fd >= 0)
					pf[n++] = (struct pollfd){ .fd = s->vq[i].kick_fd, .events = POLLIN };
			short ev = (short)((s->rx_held ? 0 : POLLIN) | (s->tx_held ? POLLOUT : 0));
			if (ev)
				pf[n++] = (struct pollfd){ .fd = s->wire.fd, .events = ev };
		}
		pthread_mutex_unlock(&s->lock);
		/* A full batch means more may be waiting: look again at once. */
		poll(pf, n, busy ? 0 : -1);
		for (unsigned i = 0; i < n; i++)
			if (pf[i].revents & POLLIN && pf[i].fd != s->wire.fd)
				drain(pf[i].fd);
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* ---- vdpa_ops ---------------------------------------------------------- */

static uint32_t sim_device_id(struct vdpa_dev *d)
{
	(void)d;
	return VIRTIO_ID_NET;
}

static int sim_get_features(struct vdpa_dev *d, uint64_t *f)
{
	*f = to_sim(d)->dev_features;
	return 0;
}

static int sim_set_features(struct vdpa_dev *d, uint64_t f)
{
	struct sim_net *s = to_sim(d);
	int r = 0;

	pthread_mutex_lock(&s->lock);
	if ((f & ~s->dev_features) || (s->status & VIRTIO_S_FEATURES_OK))
		r = -EINVAL;
	else
		s->features = f;
	pthread_mutex_unlock(&s->lock);
	return r;
}

static int sim_get_backend_features(struct vdpa_dev *d, uint64_t *f)
{
	*f = to_sim(d)->backend_offered;
	return 0;
}

static int sim_set_backend_features(struct vdpa_dev *d, uint64_t f)
{
	struct sim_net *s = to_sim(d);

	if (f & ~s->backend_offered)
		return -EOPNOTSUPP;
	s->backend = f;
	return 0;
}

static int sim_get_status(struct vdpa_dev *d, uint8_t *st)
{
	struct sim_net *s = to_sim(d);

	pthread_mutex_lock(&s->lock);
	*st = s->status;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* Lock held. */
static void sim_reset(struct sim_net *s)
{
	s->status = 0;
	s->features = 0;
	s->suspended = false;
	s->rx_held = s->tx_held = false;
	for (unsigned i = 0; i < s->nvqs; i++) {
		struct sim_vq *q = &s->vq[i];
		q->ready = q->attached = false;
		q->ring = (struct vring_dev){ .num = QUEUE_MAX };
	}
	for (unsigned g = 0; g < NR_GROUPS; g++)
		s->group_asid[g] = 0;
	/* mappings survive reset only with IOTLB_PERSIST */
	if (!(s->backend & (1ull << VDPA_BF_IOTLB_PERSIST)))
		for (unsigned a = 0; a < NR_AS; a++)
			iotlb_clear(&s->tlb[a]);
	cvq_state_reset(&s->ctrl, s->cfg.mac, 0);
}

static int sim_set_status(struct vdpa_dev *d, uint8_t st)
{
	struct sim_net *s = to_sim(d);
	int r = 0;

	uint64_t delay = 0;

	pthread_mutex_lock(&s->lock);
	if (st == 0) {
		sim_reset(s);
		delay = s->cfg.cost.reset_ns;
	} else if ((s->status & ~st) & ~VIRTIO_S_NEEDS_RESET) {
		r = -EINVAL; /* status bits are only ever added until a reset */
	} else {
		if ((st & VIRTIO_S_FEATURES_OK) && !(s->status & VIRTIO_S_FEATURES_OK)) {
			if (!(s->features & (1ull << VIRTIO_F_VERSION_1)))
				st &= (uint8_t)~VIRTIO_S_FEATURES_OK; /* refuse: does not stick */
			cvq_state_reset(&s->ctrl, s->cfg.mac, s->features);
		}
		if ((st & VIRTIO_S_DRIVER_OK) && !(s->status & VIRTIO_S_DRIVER_OK))
			for (unsigned i = 0; i < s->nvqs; i++)
				delay += s->vq[i].ready ? s->cfg.cost.vq_setup_ns : 0;
		s->status = (uint8_t)(st | (s->status & VIRTIO_S_NEEDS_RESET));
	}
	pthread_mutex_unlock(&s->lock);
	cost_delay(s, delay);
	wake(s);
	return r;
}

static int sim_get_config(struct vdpa_dev *d, unsigned off, void *buf, unsigned len)
{
	struct sim_net *s = to_sim(d);

	if (off > sizeof(s->config) || len > sizeof(s->config) - off)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	memcpy(s->config, s->ctrl.mac, 6); /* MAC_ADDR_SET is mirrored here */
	memcpy(buf, s->config + off, len);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static int sim_set_config(struct vdpa_dev *d, unsigned off, const void *buf, unsigned len)
{
	struct sim_net *s = to_sim(d);

	/* only the MAC is writable, and only without VERSION_1 semantics
	 * forbidding it: accept writes to it for legacy-style drivers */
	if (off + len > 6)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	memcpy(s->ctrl.mac + off, buf, len);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static unsigned sim_vqs_count(struct vdpa_dev *d)
{
	return to_sim(d)->nvqs;
}

static uint16_t sim_vring_num_max(struct vdpa_dev *d)
{
	(void)d;
	return QUEUE_MAX;
}

/* Queue set-up is allowed before DRIVER_OK or while suspended. */
static int vq_op_check(struct sim_net *s, unsigned idx)
{
	if (idx >= s->nvqs)
		return -EINVAL;
	if ((s->status & VIRTIO_S_DRIVER_OK) && !s->suspended)
		return -EBUSY;
	return 0;
}

static int sim_set_vring_num(struct vdpa_dev *d, unsigned idx, uint16_t num)
{
	struct sim_net *s = to_sim(d);
	int r;

	pthread_mutex_lock(&s->lock);
	r = vq_op_check(s, idx);
	if (!r && (!num || num > QUEUE_MAX || (num & (num - 1))))
		r = -EINVAL;
	if (!r) {
		s->vq[idx].ring.num = num;
		s->vq[idx].attached = false;
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

static int sim_set_vring_addr(struct vdpa_dev *d, unsigned idx, const struct vdpa_vring_addr *a)
{
	struct sim_net *s = to_sim(d);
	int r;

	pthread_mutex_lock(&s->lock);
	r = vq_op_check(s, idx);
	if (!r) {
		s->vq[idx].ring.desc_iova = a->desc;
		s->vq[idx].ring.avail_iova = a->avail;
		s->vq[idx].ring.used_iova = a->used;
		s->vq[idx].attached = false;
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

static int sim_set_vring_base(struct vdpa_dev *d, unsigned idx, uint16_t base)
{
	struct sim_net *s = to_sim(d);
	int r;

	pthread_mutex_lock(&s->lock);
	r = vq_op_check(s, idx);
	if (!r) {
		/* this device completes in order: nothing is in flight, so the
		 * used index restarts where avail does */
		s->vq[idx].ring.last_avail = base;
		s->vq[idx].ring.used_idx = base;
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

static int sim_get_vring_base(struct vdpa_dev *d, unsigned idx, uint16_t *base)
{
	struct sim_net *s = to_sim(d);

	if (idx >= s->nvqs)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	*base = s->vq[idx].ring.last_avail;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static int sim_set_vring_enable(struct vdpa_dev *d, unsigned idx, bool en)
{
	struct sim_net *s = to_sim(d);

	if (idx >= s->nvqs)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	s->vq[idx].ready = en;
	s->vq[idx].attached = false;
	pthread_mutex_unlock(&s->lock);
	wake(s);
	return 0;
}

static int sim_set_vring_kick(struct vdpa_dev *d, unsigned idx, int fd)
{
	struct sim_net *s = to_sim(d);

	if (idx >= s->nvqs)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	s->vq[idx].kick_fd = fd;
	pthread_mutex_unlock(&s->lock);
	wake(s);
	return 0;
}

static int sim_set_vring_call(struct vdpa_dev *d, unsigned idx, int fd)
{
	struct sim_net *s = to_sim(d);

	if (idx >= s->nvqs)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	s->vq[idx].call_fd = fd;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static int sim_set_config_call(struct vdpa_dev *d, int fd)
{
	struct sim_net *s = to_sim(d);

	pthread_mutex_lock(&s->lock);
	s->config_call_fd = fd;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static int sim_get_iova_range(struct vdpa_dev *d, uint64_t *first, uint64_t *last)
{
	(void)d;
	*first = 0;
	*last = (1ull << 48) - 1; /* a 48-bit DMA space, like common NICs */
	return 0;
}

static int sim_iotlb_update(struct vdpa_dev *d, unsigned asid, uint64_t iova, uint64_t size, void *hva,
			    unsigned perm)
{
	struct sim_net *s = to_sim(d);
	int r;

	if (asid >= NR_AS || iova + size - 1 > (1ull << 48) - 1)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	r = iotlb_map(&s->tlb[asid], iova, size, hva, perm);
	for (unsigned i = 0; i < s->nvqs; i++)
		s->vq[i].attached = false; /* re-resolve ring pointers */
	pthread_mutex_unlock(&s->lock);
	if (!r)
		cost_delay(s, s->cfg.cost.map_entry_ns + per_gib(s->cfg.cost.pin_ns_per_gib, size));
	return r;
}

static int sim_iotlb_invalidate(struct vdpa_dev *d, unsigned asid, uint64_t iova, uint64_t size)
{
	struct sim_net *s = to_sim(d);
	int r;

	if (asid >= NR_AS)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	uint64_t mapped = 0;
	for (unsigned i = 0; i < s->tlb[asid].nr; i++) {
		const struct iotlb_entry *en = &s->tlb[asid].entries[i];
		uint64_t lo = en->iova > iova ? en->iova : iova;
		uint64_t hi = en->iova + en->size < iova + size ? en->iova + en->size : iova + size;
		mapped += hi > lo ? hi - lo : 0;
	}
	r = iotlb_unmap(&s->tlb[asid], iova, size);
	for (unsigned i = 0; i < s->nvqs; i++)
		s->vq[i].attached = false;
	pthread_mutex_unlock(&s->lock);
	if (!r)
		cost_delay(s, s->cfg.cost.map_entry_ns + per_gib(s->cfg.cost.unpin_ns_per_gib, mapped));
	return r;
}

static int sim_batch(struct vdpa_dev *d)
{
	(void)d;
	return 0; /* updates apply at once; batching only saves round trips */
}

static unsigned sim_group_num(struct vdpa_dev *d)
{
	return to_sim(d)->backend & (1ull << VDPA_BF_DESC_ASID) ? NR_GROUPS : NR_GROUPS - 1;
}

static unsigned sim_as_num(struct vdpa_dev *d)
{
	(void)d;
	return NR_AS;
}

static int sim_get_vring_group(struct vdpa_dev *d, unsigned idx, unsigned *group)
{
	struct sim_net *s = to_sim(d);

	if (idx >= s->nvqs)
		return -EINVAL;
	*group = vq_group(s, idx);
	return 0;
}

static int sim_get_vring_desc_group(struct vdpa_dev *d, unsigned idx, unsigned *group)
{
	struct sim_net *s = to_sim(d);

	if (!(s->backend & (1ull << VDPA_BF_DESC_ASID)))
		return -EOPNOTSUPP;
	if (idx >= s->nvqs)
		return -EINVAL;
	*group = vq_desc_group(s, idx);
	return 0;
}

static int sim_set_group_asid(struct vdpa_dev *d, unsigned group, unsigned asid)
{
	struct sim_net *s = to_sim(d);

	if (group >= sim_group_num(d) || asid >= NR_AS)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	s->group_asid[group] = asid;
	for (unsigned i = 0; i < s->nvqs; i++)
		s->vq[i].attached = false;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static int sim_suspend(struct vdpa_dev *d)
{
	struct sim_net *s = to_sim(d);

	if (!(s->backend_offered & (1ull << VDPA_BF_SUSPEND)))
		return -EOPNOTSUPP;
	/* taking the lock waits for the data thread's round to end */
	pthread_mutex_lock(&s->lock);
	s->suspended = true;
	pthread_mutex_unlock(&s->lock);
	cost_delay(s, s->cfg.cost.suspend_ns);
	return 0;
}

static int sim_resume(struct vdpa_dev *d)
{
	struct sim_net *s = to_sim(d);

	if (!(s->backend_offered & (1ull << VDPA_BF_RESUME)))
		return -EOPNOTSUPP;
	cost_delay(s, s->cfg.cost.resume_ns); /* still suspended while it costs */
	pthread_mutex_lock(&s->lock);
	s->suspended = false;
	for (unsigned i = 0; i < s->nvqs; i++)
		s->vq[i].attached = false;
	pthread_mutex_unlock(&s->lock);
	wake(s);
	return 0;
}

static void sim_destroy(struct vdpa_dev *d)
{
	struct sim_net *s = to_sim(d);

	if (s->thread_started) {
		pthread_mutex_lock(&s->lock);
		s->stop = true;
		pthread_mutex_unlock(&s->lock);
		wake(s);
		pthread_join(s->thread, NULL);
	}
	wire_close(&s->wire);
	for (unsigned a = 0; a < NR_AS; a++)
		iotlb_exit(&s->tlb[a]);
	if (s->ctl_fd >= 0)
		close(s->ctl_fd);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static const struct vdpa_ops sim_ops = {
	.device_id = sim_device_id,
	.get_features = sim_get_features,
	.set_features = sim_set_features,
	.get_backend_features = sim_get_backend_features,
	.set_backend_features = sim_set_backend_features,
	.get_status = sim_get_status,
	.set_status = sim_set_status,
	.get_config = sim_get_config,
	.set_config = sim_set_config,
	.vqs_count = sim_vqs_count,
	.vring_num_max = sim_vring_num_max,
	.set_vring_num = sim_set_vring_num,
	.set_vring_addr = sim_set_vring_addr,
	.set_vring_base = sim_set_vring_base,
	.get_vring_base = sim_get_vring_base,
	.set_vring_enable = sim_set_vring_enable,
	.set_vring_kick = sim_set_vring_kick,
	.set_vring_call = sim_set_vring_call,
	.set_config_call = sim_set_config_call,
	.get_iova_range = sim_get_iova_range,
	.iotlb_update = sim_iotlb_update,
	.iotlb_invalidate = sim_iotlb_invalidate,
	.iotlb_batch_begin = sim_batch,
	.iotlb_batch_end = sim_batch,
	.group_num = sim_group_num,
	.as_num = sim_as_num,
	.get_vring_group = sim_get_vring_group,
	.get_vring_desc_group = sim_get_vring_desc_group,
	.set_group_asid = sim_set_group_asid,
	.suspend = sim_suspend,
	.resume = sim_resume,
	.destroy = sim_destroy,
};

struct vdpa_dev *sim_net_create(const struct sim_net_config *cfg, struct err *e)
{
	struct sim_net *s = calloc(1, sizeof(*s));
	int r;

	if (!s) {
		err_set(e, -ENOMEM, "out of memory for the software vDPA device");
		return NULL;
	}
	s->vdpa = (struct vdpa_dev){ .ops = &sim_ops, .name = "vdpa-sim" };
	s->cfg = *cfg;
	s->ctl_fd = -1;
	s->config_call_fd = -1;
	s->wire.fd = -1;
	pthread_mutex_init(&s->lock, NULL);
	if (!cfg->max_pairs || cfg->max_pairs > SIM_NET_MAX_PAIRS) {
		err_set(e, -EINVAL, "queues=%u is out of range (1..%d)", cfg->max_pairs, SIM_NET_MAX_PAIRS);
		goto err;
	}
	s->dev_features = ((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_ACCESS_PLATFORM) |
			   (1ull << VNET_F_MAC) | (1ull << VNET_F_MTU) | (1ull << VNET_F_STATUS) |
			   (1ull << VNET_F_CTRL_VQ) | (1ull << VNET_F_CTRL_RX) | (1ull << VNET_F_CTRL_VLAN) |
			   (1ull << VNET_F_CTRL_RX_EXTRA) | (1ull << VNET_F_GUEST_ANNOUNCE) |
			   (1ull << VNET_F_CTRL_MAC_ADDR) | (1ull << VNET_F_CTRL_GUEST_OFFLOADS) |
			   (1ull << VIRTIO_F_EVENT_IDX) | (1ull << VIRTIO_F_RING_INDIRECT_DESC) |
			   (cfg->max_pairs > 1 ? 1ull << VNET_F_MQ : 0)) &
			  ~cfg->features_off;
	s->backend_offered = ((1ull << VDPA_BF_IOTLB_MSG_V2) | (1ull << VDPA_BF_IOTLB_BATCH) |
			      (1ull << VDPA_BF_IOTLB_ASID) | (1ull << VDPA_BF_SUSPEND) | (1ull << VDPA_BF_RESUME) |
			      (1ull << VDPA_BF_ENABLE_AFTER_DRIVER_OK) | (1ull << VDPA_BF_IOTLB_PERSIST) |
			      (1ull << VDPA_BF_DESC_ASID)) &
			     ~cfg->backend_off;
	s->nvqs = 2u * cfg->max_pairs + (has_cvq(s) ? 1 : 0);
	s->lim = (struct cvq_limits){ .mac_table_max = cfg->mac_table_max ? cfg->mac_table_max : 32,
				      .max_pairs = cfg->max_pairs };
	memcpy(s->config, cfg->mac, 6);
	s->config[6] = 1; /* status: link up */
	s->config[8] = (uint8_t)cfg->max_pairs;
	s->config[9] = (uint8_t)(cfg->max_pairs >> 8);
	s->config[10] = (uint8_t)cfg->mtu;
	s->config[11] = (uint8_t)(cfg->mtu >> 8);
	for (unsigned i = 0; i < MAX_VQS; i++)
		s->vq[i].kick_fd = s->vq[i].call_fd = -1;
	for (unsigned a = 0; a < NR_AS; a++)
		if (iotlb_init(&s->tlb[a]) < 0) {
			err_set(e, -ENOMEM, "out of memory for the IOTLB");
			goto err;
		}
	sim_reset(s);
	if (cfg->tap)
		r = wire_open_tap(&s->wire, cfg->tap, e);
	else if (cfg->socket_path && cfg->peer_path)
		r = wire_open_socket(&s->wire, cfg->socket_path, cfg->peer_path, e);
	else
		r = err_set(e, -EINVAL, "the software vDPA device needs a wire: socket=PATH,peer=PATH or tap=NAME");
	if (r < 0)
		goto err;
	s->ctl_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->ctl_fd < 0) {
		err_errno(e, -errno, "eventfd");
		goto err;
	}
	r = pthread_create(&s->thread, NULL, sim_thread, s);
	if (r) {
		err_errno(e, -r, "cannot start the vDPA device thread");
		goto err;
	}
	s->thread_started = true;
	return &s->vdpa;

err:
	sim_destroy(&s->vdpa);
	return NULL;
}

void sim_net_get_stats(struct vdpa_dev *d, struct sim_net_stats *st)
{
	struct sim_net *s = to_sim(d);

	pthread_mutex_lock(&s->lock);
	*st = s->stats;
	pthread_mutex_unlock(&s->lock);
}
