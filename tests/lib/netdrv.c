/* SPDX-License-Identifier: MIT */
/* tests/lib/netdrv.c - see netdrv.h. */
#include "tests/lib/netdrv.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vdpa/cvq.h"
#include "vdpa/vring.h"

#define RING(q) (0x10000ull + 0x10000ull * (q))
#define BUFS(q) (0x100000ull + 0x100000ull * (q))
#define SLOT 2048u
#define ETH_LEN (NETDRV_FRAME - 12)
#define VIRTIO_F_EVENT_IDX 29

static uint8_t *gpa(struct netdrv *d, uint64_t a)
{
	return d->vm.mem.hva + a; /* below 3 GiB: memfd offset = GPA */
}

static void make_frame(uint8_t *f, const uint8_t dst[6], uint32_t seq)
{
	memset(f, 0, 12); /* virtio-net header */
	memcpy(f + 12, dst, 6);
	memcpy(f + 18, "\x02\0\0\0\0\x09", 6);
	f[24] = 0x88;
	f[25] = 0xb5;
	memcpy(f + 26, &seq, 4);
	for (unsigned i = 30; i < NETDRV_FRAME; i++)
		f[i] = (uint8_t)(seq * 31 + i);
}

/* eth: the Ethernet frame (no virtio header) */
static void check_frame(struct netdrv_dir *dir, const uint8_t *eth, size_t len)
{
	uint32_t seq;

	if (len != ETH_LEN) {
		dir->bad++;
		return;
	}
	memcpy(&seq, eth + 14, 4);
	for (unsigned i = 18; i < ETH_LEN; i++)
		if (eth[i] != (uint8_t)(seq * 31 + i + 12)) {
			dir->bad++;
			return;
		}
	if (seq <= dir->last_seen) {
		dir->bad++; /* a duplicate, or out of order */
		return;
	}
	dir->lost += seq - dir->last_seen - 1;
	dir->last_seen = seq;
	dir->got++;
}

static void post(struct netdrv *d, unsigned qi, uint16_t slot, uint32_t len, uint16_t flags)
{
	struct netdrv_q *q = &d->q[qi];
	struct vring_desc desc = { q->bufs + (uint64_t)slot * SLOT, len, flags, 0 };

	memcpy(gpa(d, q->desc + 16ull * slot), &desc, 16);
	memcpy(gpa(d, q->avail + 4 + 2ull * (q->avail_idx % NETDRV_NUM)), &slot, 2);
	q->avail_idx++;
	__atomic_store_n((uint16_t *)gpa(d, q->avail + 2), q->avail_idx, __ATOMIC_RELEASE);
}

static void kick(struct netdrv *d, unsigned qi)
{
	uint64_t one = 1;

	if (write(d->kick[qi], &one, 8) != 8)
		abort();
}

/* Takes back what the device used on queue qi; RX frames are checked. */
static void reap(struct netdrv *d, unsigned qi)
{
	struct netdrv_q *q = &d->q[qi];
	uint16_t idx = __atomic_load_n((uint16_t *)gpa(d, q->used + 2), __ATOMIC_ACQUIRE);

	while (q->used_seen != idx) {
		uint32_t id, len;
		const uint8_t *el = gpa(d, q->used + 4 + 8ull * (q->used_seen % NETDRV_NUM));
		memcpy(&id, el, 4);
		memcpy(&len, el + 4, 4);
		if (id >= NETDRV_NUM) {
			d->rx.bad++;
			break;
		}
		if (qi == 0)
			check_frame(&d->rx, gpa(d, q->bufs + (uint64_t)id * SLOT + 12), len >= 12 ? len - 12 : 0);
		q->free[q->nfree++] = (uint16_t)id;
		q->used_seen++;
	}
	/* with EVENT_IDX: interrupt us at the next one (we poll anyway) */
	__atomic_store_n((uint16_t *)gpa(d, q->avail + 4 + 2ull * NETDRV_NUM), q->used_seen, __ATOMIC_RELAXED);
}

uint64_t netdrv_pump(struct netdrv *d, uint64_t n, unsigned ms)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	uint64_t end = now_ns() + (uint64_t)ms * 1000000u, tx0 = d->tx.got, rx0 = d->rx.got;
	uint8_t f[NETDRV_FRAME], buf[2048];

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", d->dev_path);
	while (now_ns() < end && (d->tx.got - tx0 < n || d->rx.got - rx0 < n)) {
		reap(d, 0);
		reap(d, 1);
		bool rx_posted = false, tx_posted = false;
		while (d->q[0].nfree) {
			post(d, 0, d->q[0].free[--d->q[0].nfree], SLOT, VRING_DESC_F_WRITE);
			rx_posted = true;
		}
		/* a window, so the peer's socket never drops */
		while (d->q[1].nfree && d->tx.next_seq - d->tx.last_seen < 128 && d->tx.got - tx0 < n) {
			uint16_t slot = d->q[1].free[--d->q[1].nfree];
			make_frame(gpa(d, d->q[1].bufs + (uint64_t)slot * SLOT), (const uint8_t *)"\x02\0\0\0\0\x09",
				   ++d->tx.next_seq);
			post(d, 1, slot, NETDRV_FRAME, 0);
			tx_posted = true;
		}
		if (rx_posted)
			kick(d, 0);
		if (tx_posted)
			kick(d, 1);
		for (int k = 0; k < 64 && d->rx.next_seq - d->rx.last_seen < 128 && d->rx.got - rx0 < n; k++) {
			make_frame(f, d->mac, d->rx.next_seq + 1);
			if (sendto(d->peer, f + 12, ETH_LEN, MSG_DONTWAIT, (struct sockaddr *)&a, sizeof(a)) < 0)
				break;
			d->rx.next_seq++;
		}
		for (;;) {
			ssize_t got = recv(d->peer, buf, sizeof(buf), MSG_DONTWAIT);
			if (got < 0)
				break;
			check_frame(&d->tx, buf, (size_t)got);
		}
		struct pollfd p[3] = { { d->peer, POLLIN, 0 }, { d->call[0], POLLIN, 0 }, { d->call[1], POLLIN, 0 } };
		if (poll(p, 3, 1) > 0)
			for (unsigned i = 1; i < 3; i++)
				if (p[i].revents) {
					uint64_t v;
					if (read(d->call[i - 1], &v, 8) < 0)
						abort();
				}
	}
	uint64_t t = d->tx.got - tx0, r = d->rx.got - rx0;
	return t < r ? t : r;
}

int netdrv_cvq_raw(struct netdrv *d, const void *cmd, size_t len, uint32_t ack_len)
{
	struct netdrv_q *q = &d->q[2];
	uint64_t b = q->bufs, ack = b + 0x10000; /* up to 64 KiB of command */
	struct vring_desc d0 = { b, (uint32_t)len, ack_len ? VRING_DESC_F_NEXT : 0, 1 };
	struct vring_desc d1 = { ack, ack_len, VRING_DESC_F_WRITE, 0 };
	uint16_t head = 0;

	memcpy(gpa(d, b), cmd, len);
	gpa(d, ack)[0] = 0xee;
	memcpy(gpa(d, q->desc), &d0, 16);
	memcpy(gpa(d, q->desc + 16), &d1, 16);
	memcpy(gpa(d, q->avail + 4 + 2ull * (q->avail_idx % NETDRV_NUM)), &head, 2);
	q->avail_idx++;
	__atomic_store_n((uint16_t *)gpa(d, q->avail + 2), q->avail_idx, __ATOMIC_RELEASE);
	kick(d, 2);
	for (int i = 0; i < 2000; i++) {
		if (__atomic_load_n((uint16_t *)gpa(d, q->used + 2), __ATOMIC_ACQUIRE) == q->avail_idx) {
			uint32_t ulen;
			memcpy(&ulen, gpa(d, q->used + 4 + 8ull * ((q->avail_idx - 1) % NETDRV_NUM) + 4), 4);
			return ulen ? gpa(d, ack)[0] : -ENODATA;
		}
		usleep(1000);
	}
	return -ETIMEDOUT;
}

int netdrv_cvq(struct netdrv *d, uint8_t cls, uint8_t cmd, uint8_t val)
{
	uint8_t c[3] = { cls, cmd, val };

	return netdrv_cvq_raw(d, c, 3, 1);
}

int netdrv_init(struct netdrv *d, uint64_t mem, uint64_t backend_off, bool cost, struct err *e)
{
	return netdrv_init_ctrl(d, mem, backend_off, cost, false, e);
}

int netdrv_init_ctrl(struct netdrv *d, uint64_t mem, uint64_t backend_off, bool cost, bool ctrl, struct err *e)
{
	struct netdrv_opts o = { .backend_off = backend_off, .cost = cost, .ctrl = ctrl };

	return netdrv_init_opts(d, mem, &o, e);
}

int netdrv_init_opts(struct netdrv *d, uint64_t mem, const struct netdrv_opts *opts, struct err *e)
{
	uint64_t backend_off = opts->backend_off;
	bool cost = opts->cost, ctrl = opts->ctrl;
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	static const uint8_t mac[6] = { 0x52, 0x54, 0, 0x12, 0x34, 0x56 };
	uint64_t f = 0, bf = 0;
	int r;

	memset(d, 0, sizeof(*d));
	memcpy(d->mac, mac, 6);
	snprintf(d->dev_path, sizeof(d->dev_path), "/tmp/tern-netdrv-%d-%p-dev", getpid(), (void *)d);
	snprintf(d->peer_path, sizeof(d->peer_path), "/tmp/tern-netdrv-%d-%p-peer", getpid(), (void *)d);
	d->peer = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", d->peer_path);
	unlink(d->peer_path);
	if (d->peer < 0 || bind(d->peer, (struct sockaddr *)&a, sizeof(a)) < 0)
		return err_errno(e, -errno, "peer socket");
	if ((r = mem_init(&d->vm.mem, mem, e)) < 0)
		return r;
	struct sim_net_config c = { .max_pairs = 1, .mtu = 1500, .mac_table_max = 4, .backend_off = backend_off,
				    .socket_path = d->dev_path, .peer_path = d->peer_path,
				    .strict = true /* lost kicks must fail tests */, .nack_at = opts->nack_at };
	memcpy(c.mac, mac, 6);
	if (cost)
		sim_net_cost_mlx5(&c.cost);
	d->dev = sim_net_create(&c, e);
	if (!d->dev)
		return -EINVAL;
	/* the shadow side drives the device through a wrapper that tests
	 * arm to fail a call (vdpa/fault_vdpa.h) */
	d->faulty = fault_vdpa_wrap(d->dev, e);
	if (!d->faulty) {
		d->dev->ops->destroy(d->dev);
		d->dev = NULL;
		return -ENOMEM;
	}
	const struct vdpa_ops *o = d->dev->ops;
	o->get_backend_features(d->dev, &bf);
	bf = shadow_backend_wanted(bf);
	if ((r = o->set_backend_features(d->dev, bf)) < 0)
		return err_errno(e, r, "backend features");
	if ((r = shadow_init(&d->sh, d->faulty, bf, &d->vm.mem, 3, e)) < 0)
		return r;
	o->get_features(d->dev, &f);
	f &= (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_ACCESS_PLATFORM) | (1ull << VNET_F_MAC) |
	     (1ull << VIRTIO_F_EVENT_IDX) | (1ull << VNET_F_CTRL_VQ) | (1ull << VNET_F_CTRL_RX) |
	     (ctrl ? (1ull << VNET_F_CTRL_VLAN) | (1ull << VNET_F_CTRL_RX_EXTRA) | (1ull << VNET_F_CTRL_MAC_ADDR) |
			(1ull << VNET_F_RSS) | (1ull << VNET_F_CTRL_GUEST_OFFLOADS) | (1ull << VNET_F_GUEST_CSUM) |
			(1ull << VNET_F_GUEST_USO4) | (1ull << VNET_F_GUEST_USO6)
		      : 0);
	if ((r = shadow_set_features(&d->sh, f)) < 0)
		return err_errno(e, r, "features");
	for (unsigned i = 0; i < 3; i++) {
		struct netdrv_q *q = &d->q[i];
		q->desc = RING(i);
		q->avail = RING(i) + 0x1000;
		q->used = RING(i) + 0x2000;
		q->bufs = BUFS(i);
		for (unsigned s = 0; s < NETDRV_NUM; s++)
			q->free[q->nfree++] = (uint16_t)(NETDRV_NUM - 1 - s);
		d->kick[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		d->call[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		struct vdpa_vring_addr ad = { q->desc, q->avail, q->used };
		if (i == 2 && ctrl) {
			struct vring_dev g = { .num = NETDRV_NUM, .desc_iova = q->desc, .avail_iova = q->avail,
					       .used_iova = q->used, .event_idx = !!(f & (1ull << VIRTIO_F_EVENT_IDX)) };
			if ((r = cvq_shadow_setup(&d->cvq, &d->sh, 2, f, mac, &g, &d->cvq_asid, e)) < 0)
				return r;
			d->ctrl = true;
			continue;
		}
		shadow_set_queue(&d->sh, i, i < 2, NETDRV_NUM, &ad, d->kick[i], d->call[i]);
	}
	if ((r = shadow_start(&d->sh, NULL)) < 0)
		return err_errno(e, r, "start");
	if (ctrl && (r = cvq_shadow_start(&d->cvq, d->kick[2], d->call[2], e)) < 0)
		return r;
	return 0;
}

void netdrv_log_on(struct netdrv *d)
{
	d->log = (struct dirty_log){ .vm = &d->vm, .npages = d->vm.mem.size >> 12 };
	d->log.tern = calloc(d->log.npages / 64 + 1, 8);
	shadow_set_log(&d->sh, &d->log);
}

bool netdrv_dirty(const struct netdrv *d, uint64_t gpa_)
{
	uint64_t pg = gpa_ >> 12;
	return d->log.tern && (atomic_load(&d->log.tern[pg / 64]) >> (pg % 64)) & 1;
}

void netdrv_exit(struct netdrv *d)
{
	/* the relays first (they kick the device), then the device (it reads
	 * the shadow rings), then the rings */
	if (d->ctrl)
		cvq_shadow_exit(&d->cvq);
	relay_stop(&d->sh.relay);
	if (d->faulty) /* and the device in it */
		d->faulty->ops->destroy(d->faulty);
	shadow_exit(&d->sh);
	for (unsigned i = 0; i < 3; i++) {
		if (d->kick[i] > 0)
			close(d->kick[i]);
		if (d->call[i] > 0)
			close(d->call[i]);
	}
	if (d->peer >= 0)
		close(d->peer);
	unlink(d->peer_path);
	free((void *)d->log.tern);
	mem_destroy(&d->vm.mem);
}

struct netdrv *netdrv_new(uint64_t mem, uint64_t backend_off, bool ctrl, struct err *e)
{
	struct netdrv_opts o = { .backend_off = backend_off, .ctrl = ctrl };

	return netdrv_new_opts(mem, &o, e);
}

struct netdrv *netdrv_new_opts(uint64_t mem, const struct netdrv_opts *o, struct err *e)
{
	struct netdrv *d = calloc(1, sizeof(*d));

	if (!d) {
		err_set(e, -ENOMEM, "out of memory");
		return NULL;
	}
	if (netdrv_init_opts(d, mem, o, e) < 0) {
		netdrv_free(d);
		return NULL;
	}
	return d;
}

void netdrv_free(struct netdrv *d)
{
	netdrv_exit(d);
	free(d);
}
