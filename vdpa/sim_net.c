/* SPDX-License-Identifier: MIT */
/*
 * vdpa/sim_net.c - the software vDPA net device's data path: its thread,
 * TX to the wire, RX from it, the control queue, NEEDS_RESET on a broken
 * ring (see sim_net.h; the control path is sim_net_ctl.c, the locking rule
 * in sim_net_priv.h).
 */
#include "vdpa/sim_net_priv.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "vmm/sandbox.h"

void sim_wake(struct sim_net *s)
{
	uint64_t one = 1;

	if (write(s->ctl_fd, &one, sizeof(one)) < 0) {
		/* the counter is saturated: the thread is awake anyway */
	}
}

/* Lock held: a data buffer was used. The longest pause between two used
 * buffers is the data-path blackout as the device sees it (what
 * tests/bench/switch reports). */
static void sim_used_gap(struct sim_net *s)
{
	uint64_t t = now_ns();

	if (s->stats.last_used_ns && t - s->stats.last_used_ns > s->stats.max_gap_ns)
		s->stats.max_gap_ns = t - s->stats.last_used_ns;
	s->stats.last_used_ns = t;
}

/* The driver broke a ring rule: stop and ask for a reset. Lock held. */
static void fail_device(struct sim_net *s)
{
	s->stats.ring_errors++;
	s->status |= VIRTIO_S_NEEDS_RESET;
	eventfd_signal(s->config_call_fd, "software vDPA device");
}

static void notify(struct sim_vq *q, uint16_t old_used)
{
	if (q->ring.used_idx != old_used && vring_dev_need_notify(&q->ring, old_used))
		eventfd_signal(q->call_fd, "software vDPA device");
}

static bool running(const struct sim_net *s)
{
	return (s->status & VIRTIO_S_DRIVER_OK) && !(s->status & VIRTIO_S_NEEDS_RESET) && !s->suspended;
}

/* Lock held. Resolves rings when a queue becomes usable; in strict mode a
 * queue that was found empty is not usable until it is kicked. */
static bool vq_usable(struct sim_net *s, unsigned idx)
{
	struct sim_vq *q = &s->vq[idx];

	if (!q->ready || (s->cfg.strict && q->starved))
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
		if (!r) {
			q->starved = true;
			break;
		}
		uint8_t ack = CVQ_ERR;
		s->stats.cvq_cmds++;
		/* test hook: the nack_at-th command is refused, unapplied */
		bool nack = s->nack_at && s->stats.cvq_cmds == s->nack_at;
		if (!nack && s->chain.out_len <= sizeof(cmd) && s->chain.in_len >= 1) {
			size_t len = vring_chain_read(&s->chain, vq_tlb(s, idx), 0, cmd, s->chain.out_len);
			if (len == s->chain.out_len)
				ack = cvq_apply(&s->ctrl, &s->lim, s->features, cmd, len);
		}
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
		if (!r) {
			q->starved = true;
			break;
		}
		worked = true;
		uint64_t len = s->chain.out_len, hl = hdr_len(s);
		if (len > hl && len - hl <= WIRE_MAX_FRAME) {
			size_t got = vring_chain_read(&s->chain, vq_tlb(s, idx), hl, s->tx_frame, (size_t)(len - hl));
			int w = wire_send(&s->wire, s->tx_frame, got);
			if (w == -EAGAIN) {
				s->tx_len = got; /* copied: the buffer goes back now */
				s->tx_held = true;
			}
			s->stats.tx_frames++;
		}
		vring_dev_push(&q->ring, s->chain.head, 0);
		sim_used_gap(s);
	}
	notify(q, old);
	return worked;
}

/* RX queue for a frame: RSS's choice when the driver configured it (a
 * queue beyond the active pairs falls back to queue 0); otherwise a flow
 * hash over the MACs, ethertype and the first 8 bytes of payload (for
 * IPv4 that covers addresses' start; good enough to keep each flow on one
 * queue). */
static unsigned steer(const struct sim_net *s, const uint8_t *f, size_t len)
{
	uint32_t h = 2166136261u;
	unsigned pairs = cvq_pairs_max(s->features, s->ctrl.pairs);
	int q = cvq_rss_queue(&s->ctrl, f, len);

	if (q >= 0)
		return (unsigned)q < pairs ? (unsigned)q : 0;

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
	if (!r) {
		q->starved = true;
		return false;
	}
	uint8_t hdr[VNET_HDR_HASH_LEN] = { 0 };
	unsigned hl = hdr_len(s);
	hdr[10] = 1; /* num_buffers */
	if (hl == VNET_HDR_HASH_LEN) {
		/* hash_value le32, hash_report le16, padding (virtio 1.2 5.1.6.4.3) */
		uint32_t h;
		unsigned rep = cvq_rss_hash(&s->ctrl, f, len, &h);
		if (rep != CVQ_REPORT_NONE) {
			for (unsigned i = 0; i < 4; i++)
				hdr[12 + i] = (uint8_t)(h >> (8 * i));
			hdr[16] = (uint8_t)rep;
		}
	}
	uint32_t used = 0;
	if (s->chain.in_len >= hl + len) {
		used = (uint32_t)vring_chain_write(&s->chain, vq_tlb(s, idx), 0, hdr, hl);
		used += (uint32_t)vring_chain_write(&s->chain, vq_tlb(s, idx), hl, f, len);
		s->stats.rx_frames++;
	} else {
		s->stats.rx_too_big++;
	}
	vring_dev_push(&q->ring, s->chain.head, used);
	sim_used_gap(s);
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

void sim_forget_kicks(struct sim_net *s)
{
	if (!s->cfg.strict)
		return;
	for (unsigned i = 0; i < s->nvqs; i++) {
		struct pollfd pf = { .fd = s->vq[i].kick_fd, .events = POLLIN };
		/* the fd may be blocking: read only what is there */
		if (pf.fd >= 0 && poll(&pf, 1, 0) == 1 && (pf.revents & POLLIN))
			eventfd_drain(pf.fd, "software vDPA device");
	}
}

void sim_cost_delay(struct sim_net *s, uint64_t ns)
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

uint64_t sim_per_gib(uint64_t ns_per_gib, uint64_t bytes)
{
	/* bytes / GiB * ns, without overflow for any size below 2^64 */
	return (bytes >> 30) * ns_per_gib + (((bytes & ((1ull << 30) - 1)) * ns_per_gib) >> 30);
}

void *sim_thread(void *arg)
{
	struct sim_net *s = arg;
	struct pollfd pf[MAX_VQS + 2];
	int pf_vq[MAX_VQS + 2]; /* the queue whose kick fd pf[i] is, or -1 */

	sandbox_enter_thread(s->cfg.sandbox, SANDBOX_DEVICE, "net-device");
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
		pf_vq[n] = -1;
		pf[n++] = (struct pollfd){ .fd = s->ctl_fd, .events = POLLIN };
		if (running(s)) {
			for (unsigned i = 0; i < s->nvqs; i++)
				if (s->vq[i].ready && s->vq[i].kick_fd >= 0) {
					pf_vq[n] = (int)i;
					pf[n++] = (struct pollfd){ .fd = s->vq[i].kick_fd, .events = POLLIN };
				}
			short ev = (short)((s->rx_held ? 0 : POLLIN) | (s->tx_held ? POLLOUT : 0));
			if (ev) {
				pf_vq[n] = -1;
				pf[n++] = (struct pollfd){ .fd = s->wire.fd, .events = ev };
			}
		}
		pthread_mutex_unlock(&s->lock);
		/* A full batch means more may be waiting: look again at once. */
		poll(pf, n, busy ? 0 : -1);
		for (unsigned i = 0; i < n; i++)
			if (pf[i].revents & POLLIN && pf[i].fd != s->wire.fd)
				eventfd_drain(pf[i].fd, "software vDPA device");
		pthread_mutex_lock(&s->lock);
		/* a kick counts only if the device still runs: one that came
		 * while it was being suspended or reset is forgotten */
		for (unsigned i = 0; running(s) && i < n; i++)
			if (pf_vq[i] >= 0 && (pf[i].revents & POLLIN))
				s->vq[pf_vq[i]].starved = false;
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

