/* SPDX-License-Identifier: MIT */
/*
 * devices/net_announce.c without KVM: a control queue laid out in a guest
 * memory made by mem_init(), the guest's kicks through an eventfd. The
 * watch must pass every kick on to the device, clear S_ANNOUNCE on an
 * ANNOUNCE_ACK (direct or indirect descriptors) and on nothing else, and
 * survive a hostile ring.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "devices/net_announce.h"
#include "devices/virtio_pci.h"
#include "tests/unit/unit.h"
#include "vdpa/cvq.h"
#include "vmm/vm.h"

#define QSIZE 16
#define DESC 0x10000
#define AVAIL 0x11000
#define USED 0x12000
#define BUFS 0x20000

struct env {
	struct vm vm;
	struct net_announce a;
	struct virtio_pci_queue q;
	int dev_kick;
	uint16_t avail_idx;
	unsigned next_desc;
};

static struct env *env_new(void)
{
	struct env *v = calloc(1, sizeof(*v));
	struct err e = { { 0 } };

	assert_int_equal(mem_init(&v->vm.mem, 16 * MiB, &e), 0);
	assert_int_equal(net_announce_init(&v->a, &v->vm, &e), 0);
	v->q = (struct virtio_pci_queue){ .size = QSIZE, .enabled = true, .desc = DESC, .driver = AVAIL,
					  .device = USED, .kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK) };
	assert_int_equal(net_announce_watch(&v->a, &v->q, 0, &v->dev_kick), 0);
	return v;
}

static void env_free(struct env *v)
{
	net_announce_exit(&v->a);
	close(v->q.kick_fd);
	mem_destroy(&v->vm.mem);
	free(v);
}

static void put_desc(struct env *v, unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	struct vring_desc d = { addr, len, flags, next };
	memcpy(v->vm.mem.hva + DESC + 16 * i, &d, sizeof(d));
}

/* Makes a command available: header (class, cmd), then a status byte the
 * device writes; indirect puts both in an indirect table. */
static void post(struct env *v, uint8_t cls, uint8_t cmd, bool indirect)
{
	uint8_t *m = v->vm.mem.hva;
	uint64_t buf = BUFS + 64 * (uint64_t)(v->avail_idx % 64);
	unsigned head = v->next_desc;

	m[buf] = cls;
	m[buf + 1] = cmd;
	if (indirect) {
		uint64_t table = buf + 16;
		struct vring_desc t[2] = { { buf, 2, VRING_DESC_F_NEXT, 1 }, { buf + 8, 1, VRING_DESC_F_WRITE, 0 } };
		memcpy(m + table, t, sizeof(t));
		put_desc(v, head, table, sizeof(t), VRING_DESC_F_INDIRECT, 0);
		v->next_desc = (head + 1) % QSIZE;
	} else {
		put_desc(v, head, buf, 2, VRING_DESC_F_NEXT, (uint16_t)((head + 1) % QSIZE));
		put_desc(v, (head + 1) % QSIZE, buf + 8, 1, VRING_DESC_F_WRITE, 0);
		v->next_desc = (head + 2) % QSIZE;
	}
	uint16_t h = (uint16_t)head;
	memcpy(m + AVAIL + 4 + 2 * (v->avail_idx % QSIZE), &h, 2);
	v->avail_idx++;
	__atomic_store_n((uint16_t *)(m + AVAIL + 2), v->avail_idx, __ATOMIC_RELEASE);
}

/* Kicks as the guest would and waits until the watch passed the kick on. */
static void kick_and_wait(struct env *v)
{
	uint64_t one = 1, got;
	struct pollfd p = { .fd = v->dev_kick, .events = POLLIN };

	assert_int_equal(write(v->q.kick_fd, &one, sizeof(one)), sizeof(one));
	assert_int_equal(poll(&p, 1, 5000), 1);
	assert_int_equal(read(v->dev_kick, &got, sizeof(got)), sizeof(got));
}

static bool status_bit(const struct env *v)
{
	uint8_t cfg[12] = { 0 };

	net_announce_config(&v->a, 0, cfg, sizeof(cfg));
	return cfg[6] & 2;
}

static void test_ack_clears_only_the_announce(void **state)
{
	struct env *v = env_new();
	uint8_t one;

	(void)state;
	assert_false(status_bit(v));
	net_announce_request(&v->a);
	assert_true(status_bit(v));
	/* the bit shows in any read that covers byte 6, and only there */
	one = 0;
	net_announce_config(&v->a, 6, &one, 1);
	assert_int_equal(one, 2);
	one = 0;
	net_announce_config(&v->a, 7, &one, 1);
	assert_int_equal(one, 0);
	uint8_t mac[6] = { 0 };
	net_announce_config(&v->a, 0, mac, 6);
	assert_memory_equal(mac, "\0\0\0\0\0\0", 6);

	/* other commands, and ANNOUNCE with another command, leave it set */
	post(v, CVQ_RX, CVQ_RX_PROMISC, false);
	post(v, CVQ_MAC, CVQ_MAC_ADDR_SET, true);
	post(v, CVQ_ANNOUNCE, 1, false);
	kick_and_wait(v);
	assert_true(status_bit(v));
	assert_int_equal(atomic_load(&v->a.acks), 0);

	post(v, CVQ_ANNOUNCE, CVQ_ANNOUNCE_ACK, false);
	kick_and_wait(v);
	assert_false(status_bit(v));
	assert_int_equal(atomic_load(&v->a.acks), 1);

	/* an ACK with nothing pending counts nothing; indirect ACKs work */
	post(v, CVQ_ANNOUNCE, CVQ_ANNOUNCE_ACK, true);
	kick_and_wait(v);
	assert_int_equal(atomic_load(&v->a.acks), 0 + 1);
	net_announce_request(&v->a);
	post(v, CVQ_ANNOUNCE, CVQ_ANNOUNCE_ACK, true);
	kick_and_wait(v);
	assert_false(status_bit(v));
	assert_int_equal(atomic_load(&v->a.acks), 2);
	env_free(v);
}

static void test_hostile_ring_still_forwards_kicks(void **state)
{
	struct env *v = env_new();
	uint8_t *m;

	(void)state;
	m = v->vm.mem.hva;
	net_announce_request(&v->a);
	/* a head outside the table, then an avail index far ahead */
	uint16_t bad = QSIZE + 3, idx = 1;
	memcpy(m + AVAIL + 4, &bad, 2);
	__atomic_store_n((uint16_t *)(m + AVAIL + 2), idx, __ATOMIC_RELEASE);
	kick_and_wait(v);
	idx = 1000;
	__atomic_store_n((uint16_t *)(m + AVAIL + 2), idx, __ATOMIC_RELEASE);
	kick_and_wait(v);
	/* a descriptor pointing past RAM */
	put_desc(v, 0, 64 * MiB, 2, 0, 0);
	kick_and_wait(v);
	/* nothing was taken for an ACK, and the kicks kept flowing */
	assert_true(status_bit(v));
	env_free(v);
}

static void test_watch_refuses_bad_geometry_and_restarts(void **state)
{
	struct env *v = env_new();
	struct virtio_pci_queue q = v->q;
	int k;

	(void)state;
	q.size = 3; /* not a power of two */
	assert_int_equal(net_announce_watch(&v->a, &q, 0, &k), -EINVAL);
	q.size = QSIZE;
	q.desc = 64 * MiB; /* outside RAM */
	assert_int_equal(net_announce_watch(&v->a, &q, 0, &k), -EFAULT);
	/* a restart at a saved cursor: only what follows it is read */
	post(v, CVQ_ANNOUNCE, CVQ_ANNOUNCE_ACK, false);
	assert_int_equal(net_announce_watch(&v->a, &v->q, 1, &v->dev_kick), 0);
	net_announce_request(&v->a);
	kick_and_wait(v);
	assert_true(status_bit(v));
	post(v, CVQ_ANNOUNCE, CVQ_ANNOUNCE_ACK, false);
	kick_and_wait(v);
	assert_false(status_bit(v));
	/* unwatch clears a pending announce; a request while not watching
	 * does nothing */
	net_announce_request(&v->a);
	net_announce_unwatch(&v->a);
	assert_false(status_bit(v));
	net_announce_request(&v->a);
	assert_false(status_bit(v));
	env_free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ack_clears_only_the_announce),
		cmocka_unit_test(test_hostile_ring_still_forwards_kicks),
		cmocka_unit_test(test_watch_refuses_bad_geometry_and_restarts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
