/* SPDX-License-Identifier: MIT */
/*
 * The software vDPA net device driven through vdpa_ops by a driver made of
 * plain memory (no KVM): TX reaches the wire, the wire reaches RX, CVQ
 * commands change the filter, a hostile ring gives NEEDS_RESET, and the
 * device keeps serving the control path.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "tests/unit/unit.h"
#include "vdpa/cvq.h"
#include "vdpa/cvq_shadow.h"
#include "vdpa/sim_net.h"
#include "vdpa/vring.h"
#include "vdpa/wire.h"

#define MEM 0x200000ull
#define IOVA 0x10000000ull
#define QN 8
/* per queue: desc at +0, avail at +0x400, used at +0x800, buffers at 0x1000 + 0x800 * i */
#define QBASE(q) (IOVA + 0x10000ull * (q))

struct env {
	uint8_t *mem;
	struct vdpa_dev *d;
	int peer;                 /* the test's end of the wire */
	char path[64], peer_path[64];
	int kick[3], call[3];
	uint16_t avail_idx[3], used_seen[3];
};

static uint8_t *at(struct env *v, uint64_t iova)
{
	return v->mem + (iova - IOVA);
}

static void post(struct env *v, unsigned q, uint16_t slot, uint64_t buf, uint32_t len, uint16_t flags)
{
	struct vring_desc d = { buf, len, flags, 0 };
	memcpy(at(v, QBASE(q)) + 16 * slot, &d, 16);
	uint16_t i = v->avail_idx[q];
	memcpy(at(v, QBASE(q) + 0x400) + 4 + 2 * (i % QN), &slot, 2);
	i++;
	__atomic_store_n((uint16_t *)at(v, QBASE(q) + 0x400 + 2), i, __ATOMIC_RELEASE);
	v->avail_idx[q] = i;
	uint64_t one = 1;
	assert_int_equal(write(v->kick[q], &one, 8), 8);
}

static uint16_t used_idx(struct env *v, unsigned q)
{
	return __atomic_load_n((uint16_t *)at(v, QBASE(q) + 0x800 + 2), __ATOMIC_ACQUIRE);
}

static bool wait_used(struct env *v, unsigned q, uint16_t want)
{
	for (int i = 0; i < 2000; i++) {
		if (used_idx(v, q) == want)
			return true;
		usleep(1000);
	}
	return false;
}

static uint8_t status(struct env *v)
{
	uint8_t st;
	v->d->ops->get_status(v->d, &st);
	return st;
}

static int setup(void **state)
{
	struct env *v = calloc(1, sizeof(*v));
	struct err e = { { 0 } };
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	const struct vdpa_ops *o;
	uint64_t f;

	snprintf(v->path, sizeof(v->path), "/tmp/tern-simtest-%d-dev", getpid());
	snprintf(v->peer_path, sizeof(v->peer_path), "/tmp/tern-simtest-%d-peer", getpid());
	v->peer = socket(AF_UNIX, SOCK_DGRAM, 0);
	strcpy(a.sun_path, v->peer_path);
	unlink(v->peer_path);
	assert_int_equal(bind(v->peer, (struct sockaddr *)&a, sizeof(a)), 0);
	struct sim_net_config c = { .mac = { 0x52, 0x54, 0, 0, 0, 1 }, .max_pairs = 1, .mtu = 1500,
				    .mac_table_max = 2, .socket_path = v->path, .peer_path = v->peer_path };
	v->d = sim_net_create(&c, &e);
	if (!v->d)
		fail_msg("sim_net_create: %s", e.msg);
	o = v->d->ops;
	v->mem = aligned_alloc(4096, MEM);
	memset(v->mem, 0, MEM);
	assert_int_equal(o->iotlb_update(v->d, 0, IOVA, MEM, v->mem, VDPA_PERM_RW), 0);
	assert_int_equal(o->vqs_count(v->d), 3);
	o->get_features(v->d, &f);
	assert_true(f & (1ull << VNET_F_CTRL_VQ));
	f &= (1ull << VIRTIO_F_VERSION_1) | (1ull << VNET_F_MAC) | (1ull << VNET_F_CTRL_VQ) |
	     (1ull << VNET_F_CTRL_RX) | (1ull << VNET_F_CTRL_MAC_ADDR);
	assert_int_equal(o->set_status(v->d, VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER), 0);
	assert_int_equal(o->set_features(v->d, f), 0);
	assert_int_equal(o->set_status(v->d, 0x0b), 0);
	assert_true(status(v) & VIRTIO_S_FEATURES_OK);
	for (unsigned q = 0; q < 3; q++) {
		struct vdpa_vring_addr ad = { QBASE(q), QBASE(q) + 0x400, QBASE(q) + 0x800 };
		v->kick[q] = eventfd(0, EFD_NONBLOCK);
		v->call[q] = eventfd(0, EFD_NONBLOCK);
		assert_int_equal(o->set_vring_num(v->d, q, QN), 0);
		assert_int_equal(o->set_vring_addr(v->d, q, &ad), 0);
		assert_int_equal(o->set_vring_base(v->d, q, 0), 0);
		assert_int_equal(o->set_vring_kick(v->d, q, v->kick[q]), 0);
		assert_int_equal(o->set_vring_call(v->d, q, v->call[q]), 0);
		assert_int_equal(o->set_vring_enable(v->d, q, true), 0);
	}
	assert_int_equal(o->set_status(v->d, 0x0f), 0);
	/* queue set-up is refused while running */
	assert_int_equal(o->set_vring_num(v->d, 0, QN), -EBUSY);
	*state = v;
	return 0;
}

static int teardown(void **state)
{
	struct env *v = *state;

	v->d->ops->destroy(v->d);
	close(v->peer);
	unlink(v->peer_path);
	for (unsigned q = 0; q < 3; q++) {
		close(v->kick[q]);
		close(v->call[q]);
	}
	free(v->mem);
	free(v);
	return 0;
}

static void test_tx_reaches_wire(void **state)
{
	struct env *v = *state;
	uint8_t frame[12 + 60], got[128];

	memset(frame, 0, 12);
	for (int i = 0; i < 60; i++)
		frame[12 + i] = (uint8_t)i;
	memcpy(at(v, IOVA + 0x100000), frame, sizeof(frame));
	post(v, 1, 0, IOVA + 0x100000, sizeof(frame), 0);
	assert_true(wait_used(v, 1, 1));
	struct pollfd p = { v->peer, POLLIN, 0 };
	assert_int_equal(poll(&p, 1, 2000), 1);
	assert_int_equal(recv(v->peer, got, sizeof(got), 0), 60);
	assert_memory_equal(got, frame + 12, 60);
	uint64_t n;
	assert_int_equal(read(v->call[1], &n, 8), 8); /* the driver was told */
}

static void send_from_peer(struct env *v, const uint8_t dst[6], uint8_t tag)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	uint8_t f[64] = { 0 };

	memcpy(f, dst, 6);
	f[12] = 0x88;
	f[13] = 0xb5;
	f[20] = tag;
	strcpy(a.sun_path, v->path);
	assert_int_equal(sendto(v->peer, f, sizeof(f), 0, (struct sockaddr *)&a, sizeof(a)), 64);
}

static uint8_t cvq(struct env *v, uint16_t slot, const uint8_t *cmd, size_t len)
{
	uint64_t c = IOVA + 0x180000 + 0x100 * slot;
	memcpy(at(v, c), cmd, len);
	/* a two-descriptor chain: command, then the ack byte */
	struct vring_desc d0 = { c, (uint32_t)len, VRING_DESC_F_NEXT, (uint16_t)(slot + 1) };
	struct vring_desc d1 = { c + 0x80, 1, VRING_DESC_F_WRITE, 0 };
	memcpy(at(v, QBASE(2)) + 16 * (slot + 1), &d1, 16);
	at(v, c + 0x80)[0] = 0xee;
	uint16_t want = (uint16_t)(used_idx(v, 2) + 1);
	memcpy(at(v, QBASE(2)) + 16 * slot, &d0, 16);
	uint16_t i = v->avail_idx[2];
	memcpy(at(v, QBASE(2) + 0x400) + 4 + 2 * (i % QN), &slot, 2);
	__atomic_store_n((uint16_t *)at(v, QBASE(2) + 0x400 + 2), (uint16_t)(i + 1), __ATOMIC_RELEASE);
	v->avail_idx[2] = (uint16_t)(i + 1);
	uint64_t one = 1;
	assert_int_equal(write(v->kick[2], &one, 8), 8);
	assert_true(wait_used(v, 2, want));
	return at(v, c + 0x80)[0];
}

static void test_rx_and_filter(void **state)
{
	struct env *v = *state;
	static const uint8_t me[6] = { 0x52, 0x54, 0, 0, 0, 1 }, other[6] = { 0x52, 0x54, 0, 0, 0, 9 };

	for (uint16_t s = 0; s < 4; s++)
		post(v, 0, s, IOVA + 0x100000 + 0x800 * s, 2048, VRING_DESC_F_WRITE);
	/* promiscuous by default: a frame to another MAC passes */
	send_from_peer(v, other, 1);
	assert_true(wait_used(v, 0, 1));
	uint32_t len;
	memcpy(&len, at(v, QBASE(0) + 0x800 + 8), 4);
	assert_int_equal(len, 12 + 64);
	assert_int_equal(at(v, IOVA + 0x100000)[12 + 20], 1);
	/* PROMISC off: only our MAC (and broadcast) pass */
	const uint8_t promisc_off[] = { CVQ_RX, CVQ_RX_PROMISC, 0 };
	assert_int_equal(cvq(v, 0, promisc_off, sizeof(promisc_off)), CVQ_OK);
	send_from_peer(v, other, 2);
	send_from_peer(v, me, 3);
	assert_true(wait_used(v, 0, 2));
	assert_int_equal(at(v, IOVA + 0x100000 + 0x800)[12 + 20], 3);
	/* an unknown command is NACKed and changes nothing */
	const uint8_t bogus[] = { 99, 0 };
	assert_int_equal(cvq(v, 2, bogus, sizeof(bogus)), CVQ_ERR);
	/* a MAC table larger than the device keeps (2): unicast overflows to
	 * promiscuous, so the other MAC passes again */
	uint8_t table[2 + 4 + 3 * 6 + 4] = { CVQ_MAC, CVQ_MAC_TABLE_SET, 3, 0, 0, 0 };
	for (int i = 0; i < 3; i++)
		memcpy(table + 6 + 6 * i, other, 6);
	assert_int_equal(cvq(v, 4, table, sizeof(table)), CVQ_OK);
	send_from_peer(v, other, 4);
	assert_true(wait_used(v, 0, 3));
	struct sim_net_stats st;
	sim_net_get_stats(v->d, &st);
	assert_int_equal(st.rx_filtered, 1);
	assert_int_equal(st.rx_frames, 3);
}

static void test_hostile_ring_needs_reset(void **state)
{
	struct env *v = *state;

	assert_int_equal(status(v) & VIRTIO_S_NEEDS_RESET, 0);
	/* a descriptor pointing outside every mapping */
	post(v, 1, 3, 0xdead0000, 64, 0);
	for (int i = 0; i < 2000 && !(status(v) & VIRTIO_S_NEEDS_RESET); i++)
		usleep(1000);
	assert_true(status(v) & VIRTIO_S_NEEDS_RESET);
	/* the control path still answers, and a reset clears the state */
	uint16_t base;
	assert_int_equal(v->d->ops->get_vring_base(v->d, 1, &base), 0);
	assert_int_equal(v->d->ops->set_status(v->d, 0), 0);
	assert_int_equal(status(v), 0);
}

static void test_suspend_resume(void **state)
{
	struct env *v = *state;
	uint16_t base;

	post(v, 1, 0, IOVA + 0x100000, 12 + 60, 0);
	assert_true(wait_used(v, 1, 1));
	assert_int_equal(v->d->ops->suspend(v->d), 0);
	post(v, 1, 1, IOVA + 0x100000, 12 + 60, 0);
	usleep(20000);
	assert_int_equal(used_idx(v, 1), 1); /* suspended: nothing consumed */
	assert_int_equal(v->d->ops->get_vring_base(v->d, 1, &base), 0);
	assert_int_equal(base, 1);
	/* while suspended, queue state may change */
	assert_int_equal(v->d->ops->set_vring_num(v->d, 1, QN), 0);
	assert_int_equal(v->d->ops->resume(v->d), 0);
	assert_true(wait_used(v, 1, 2));
}

static void test_desc_asid(void **state)
{
	struct env *v = *state;
	const struct vdpa_ops *o = v->d->ops;
	uint8_t *rings = aligned_alloc(4096, 0x20000);
	unsigned group;
	uint64_t bf;

	/* renegotiate with DESC_ASID: move the TX queue's rings (only) to a
	 * copy in ASID 1; buffers stay in ASID 0 */
	o->get_backend_features(v->d, &bf);
	assert_true(bf & (1ull << VDPA_BF_DESC_ASID));
	assert_int_equal(o->suspend(v->d), 0);
	assert_int_equal(o->set_backend_features(v->d, bf), 0);
	assert_int_equal(o->group_num(v->d), 3);
	assert_int_equal(o->get_vring_desc_group(v->d, 1, &group), 0);
	assert_int_equal(group, 2);
	assert_int_equal(o->get_vring_desc_group(v->d, 2, &group), 0);
	assert_int_equal(group, 1); /* the CVQ's rings stay with the CVQ */
	memset(rings, 0, 0x20000);
	assert_int_equal(o->iotlb_update(v->d, 1, 0x4000000, 0x20000, rings, VDPA_PERM_RW), 0);
	assert_int_equal(o->set_group_asid(v->d, 2, 1), 0);
	struct vdpa_vring_addr ad = { 0x4000000, 0x4000400, 0x4000800 };
	assert_int_equal(o->set_vring_addr(v->d, 1, &ad), 0);
	assert_int_equal(o->set_vring_base(v->d, 1, 0), 0);
	assert_int_equal(o->resume(v->d), 0);
	/* a TX descriptor in the ASID-1 ring, pointing at an ASID-0 buffer */
	struct vring_desc d = { IOVA + 0x100000, 12 + 60, 0, 0 };
	memcpy(rings, &d, 16);
	uint16_t head = 0, idx = 1;
	memcpy(rings + 0x404, &head, 2);
	__atomic_store_n((uint16_t *)(rings + 0x402), idx, __ATOMIC_RELEASE);
	uint64_t one = 1;
	assert_int_equal(write(v->kick[1], &one, 8), 8);
	for (int i = 0; i < 2000 && __atomic_load_n((uint16_t *)(rings + 0x802), __ATOMIC_ACQUIRE) != 1; i++)
		usleep(1000);
	assert_int_equal(__atomic_load_n((uint16_t *)(rings + 0x802), __ATOMIC_ACQUIRE), 1);
	uint8_t got[128];
	struct pollfd p = { v->peer, POLLIN, 0 };
	assert_int_equal(poll(&p, 1, 2000), 1);
	assert_int_equal(recv(v->peer, got, sizeof(got), 0), 60);
	assert_int_equal(status(v) & VIRTIO_S_NEEDS_RESET, 0);
	o->set_status(v->d, 0);
	free(rings);
}

static void test_cost_model_sparse_128g(void **state)
{
	struct err e = { { 0 } };
	struct sim_net_cost mlx5;
	struct sim_net_config c = { .mac = { 0x52, 0, 0, 0, 0, 2 }, .max_pairs = 1, .socket_path = "/tmp/tern-cost-a",
				    .peer_path = "/tmp/tern-cost-b" };
	struct sim_net_stats st;

	(void)state;
	/* a scaled model (1 ms per GiB) over a sparse 128 GiB mapping that is
	 * never touched: the delay follows the size, the memory costs nothing */
	c.cost = (struct sim_net_cost){ .pin_ns_per_gib = 1000000, .unpin_ns_per_gib = 500000,
					.map_entry_ns = 1000, .suspend_ns = 2000000, .resume_ns = 3000000 };
	struct vdpa_dev *d = sim_net_create(&c, &e);
	assert_non_null(d);
	void *big = mmap(NULL, 128ull << 30, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	assert_true(big != MAP_FAILED);
	assert_int_equal(d->ops->iotlb_update(d, 0, 0, 128ull << 30, big, VDPA_PERM_RW), 0);
	sim_net_get_stats(d, &st);
	assert_int_equal(st.cost_ns, 128 * 1000000ull + 1000);
	assert_int_equal(d->ops->iotlb_invalidate(d, 0, 0, 128ull << 30), 0);
	assert_int_equal(d->ops->suspend(d), 0);
	assert_int_equal(d->ops->resume(d), 0);
	sim_net_get_stats(d, &st);
	assert_int_equal(st.cost_ns, 128 * 1000000ull + 1000 + 128 * 500000ull + 1000 + 5000000);
	d->ops->destroy(d);
	munmap(big, 128ull << 30);
	/* the calibrated model: a 128 GiB unpin + repin cycle lands in 20-30 s */
	sim_net_cost_mlx5(&mlx5);
	uint64_t cycle = 128 * (mlx5.pin_ns_per_gib + mlx5.unpin_ns_per_gib);
	assert_true(cycle >= 20000000000ull && cycle <= 30000000000ull);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

/* The kernel's IOTLB rules hold (drivers/vhost/vdpa.c
 * vhost_vdpa_process_iotlb_msg, drivers/vhost/vhost.c
 * vhost_chr_write_iter): inside a batch only its own ASID is accepted,
 * its end included; a v1 message (no IOTLB_MSG_V2) reaches ASID 0 only. */
static void test_iotlb_batch_holds_one_asid(void **state)
{
	struct env *v = *state;
	const struct vdpa_ops *o = v->d->ops;
	struct sim_net_stats st;
	uint8_t *page = aligned_alloc(4096, 4096);
	uint64_t bf;

	o->get_backend_features(v->d, &bf);
	assert_int_equal(o->set_backend_features(v->d, bf), 0);
	assert_int_equal(o->iotlb_batch_begin(v->d, 0), 0);
	assert_int_equal(o->iotlb_update(v->d, 1, 0x8000000, 4096, page, VDPA_PERM_RW), -EINVAL);
	assert_int_equal(o->iotlb_invalidate(v->d, 1, 0x8000000, 4096), -EINVAL);
	assert_int_equal(o->iotlb_batch_begin(v->d, 1), -EINVAL);
	assert_int_equal(o->iotlb_batch_end(v->d, 1), -EINVAL);
	assert_int_equal(o->iotlb_batch_end(v->d, 0), 0);
	/* one batch per ASID is fine */
	assert_int_equal(o->iotlb_batch_begin(v->d, 1), 0);
	assert_int_equal(o->iotlb_update(v->d, 1, 0x8000000, 4096, page, VDPA_PERM_RW), 0);
	assert_int_equal(o->iotlb_update(v->d, 0, 0x9000000, 4096, page, VDPA_PERM_RW), -EINVAL);
	assert_int_equal(o->iotlb_batch_end(v->d, 1), 0);
	assert_int_equal(o->iotlb_invalidate(v->d, 1, 0x8000000, 4096), 0);
	/* v1 messages: the ASID is not on the wire, the map lands in ASID 0 */
	assert_int_equal(o->set_backend_features(v->d, bf & ~(1ull << VDPA_BF_IOTLB_MSG_V2)), 0);
	sim_net_get_stats(v->d, &st);
	unsigned before = st.iotlb_entries;
	assert_int_equal(o->iotlb_update(v->d, 1, 0x8000000, 4096, page, VDPA_PERM_RW), 0);
	assert_int_equal(o->iotlb_invalidate(v->d, 0, 0x8000000, 4096), 0); /* it was ASID 0's */
	sim_net_get_stats(v->d, &st);
	assert_int_equal(st.iotlb_entries, before);
	free(page);
}

/* A tern that restores or receives a migration on the same host binds the
 * same socket path while the old one still runs: the old one's exit must
 * not delete the new one's socket file (found by the two-VM migration
 * test: the peer's frames stopped reaching the destination). */
static void test_wire_close_keeps_a_successors_socket(void **state)
{
	char dir[] = "/tmp/tern-wire-XXXXXX", path[128], peer[128];
	struct wire old, new;
	struct err e = { { 0 } };
	struct stat st;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/dev.sock", dir);
	snprintf(peer, sizeof(peer), "%s/peer.sock", dir);
	assert_int_equal(wire_open_socket(&old, path, peer, &e), 0);
	assert_int_equal(wire_open_socket(&new, path, peer, &e), 0); /* takes the path over */
	wire_close(&old);
	assert_int_equal(lstat(path, &st), 0); /* still there: the new one's */
	wire_close(&new);
	assert_int_equal(lstat(path, &st), -1); /* its owner removed it */
	rmdir(dir);
}

/* With RSS but without MQ the control queue still follows every pair
 * (virtio 1.2 5.1.2): index 2N, N read from max_virtqueue_pairs. The
 * software device, the front end (same function) and the control-queue
 * limits agree on it; without either feature it is queue 2. */
static void test_cvq_index_with_rss_without_mq(void **state)
{
	struct err e = { { 0 } };
	char path[64], peer[64];
	struct cvq_limits lim;
	unsigned group;
	uint64_t f;

	(void)state;
	snprintf(path, sizeof(path), "/tmp/tern-simtest-%d-rss", getpid());
	snprintf(peer, sizeof(peer), "/tmp/tern-simtest-%d-rss-peer", getpid());
	struct sim_net_config c = { .mac = { 0x52, 0x54, 0, 0, 0, 2 }, .max_pairs = 2, .mtu = 1500,
				    .features_off = 1ull << VNET_F_MQ, .socket_path = path, .peer_path = peer };
	struct vdpa_dev *d = sim_net_create(&c, &e);
	if (!d)
		fail_msg("sim_net_create: %s", e.msg);
	const struct vdpa_ops *o = d->ops;
	assert_int_equal(o->vqs_count(d), 5);
	o->get_features(d, &f);
	assert_false(f & (1ull << VNET_F_MQ));
	assert_true(f & (1ull << VNET_F_RSS));
	f &= (1ull << VIRTIO_F_VERSION_1) | (1ull << VNET_F_CTRL_VQ) | (1ull << VNET_F_RSS);
	assert_int_equal(cvq_queue_index(f, 2), 4);
	assert_int_equal(cvq_queue_index(f & ~(1ull << VNET_F_RSS), 2), 2);
	assert_int_equal(cvq_queue_index(f | (1ull << VNET_F_MQ), 2), 4);
	assert_int_equal(o->set_status(d, VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER), 0);
	assert_int_equal(o->set_features(d, f), 0);
	assert_int_equal(o->get_vring_group(d, 4, &group), 0);
	assert_int_equal(group, 1); /* the control queue's group */
	assert_int_equal(o->get_vring_group(d, 2, &group), 0);
	assert_int_equal(group, 0); /* an RX queue */
	cvq_limits_read(d, f, &lim);
	assert_int_equal(lim.max_pairs, 2);
	o->destroy(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_tx_reaches_wire),
		T(test_rx_and_filter),
		T(test_hostile_ring_needs_reset),
		T(test_suspend_resume),
		T(test_desc_asid),
		T(test_iotlb_batch_holds_one_asid),
		cmocka_unit_test(test_cost_model_sparse_128g),
		cmocka_unit_test(test_wire_close_keeps_a_successors_socket),
		cmocka_unit_test(test_cvq_index_with_rss_without_mq),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
