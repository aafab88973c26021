/* SPDX-License-Identifier: MIT */
/*
 * vdpa/svq.c without KVM: a guest ring in guest memory made by
 * mem_init(), the shadow ring at an IOVA above RAM, and a device played by
 * vdpa/vring.c's device side over the shadow ring. Chains cross both ways
 * intact, indirect tables are flattened, a full shadow ring parks the rest,
 * exactly the written bytes (and the guest's used entry) are marked dirty,
 * and a device that returns what it was not given, or claims more bytes
 * than the buffer holds, is refused before the guest sees anything.
 */
#include <errno.h>
#include <stdlib.h>

#include "tests/unit/unit.h"
#include "vdpa/svq.h"
#include "vdpa/vdpa.h"
#include "vmm/vm.h"

#define NUM 16
#define DESC 0x10000
#define AVAIL 0x11000
#define USED 0x12000
#define BUFS 0x100000
#define SHADOW_IOVA (1ull << 30)

struct env {
	struct vm vm;
	struct iotlb ram, devtlb;
	struct dirty_log log;
	struct svq q;
	uint8_t *shadow;
	struct vring_dev dev; /* the device, on the shadow ring */
	uint16_t avail_idx, next_desc;
};

static struct env *env_new(void)
{
	struct env *v = calloc(1, sizeof(*v));
	struct err e = { { 0 } };
	size_t sz = svq_ring_size(NUM);
	uint64_t d, a, u;

	assert_int_equal(mem_init(&v->vm.mem, 16 * MiB, &e), 0);
	assert_int_equal(iotlb_init(&v->ram), 0);
	assert_int_equal(iotlb_map(&v->ram, 0, 16 * MiB, v->vm.mem.hva, VDPA_PERM_RW), 0);
	v->log = (struct dirty_log){ .vm = &v->vm, .npages = (16 * MiB) >> 12 };
	v->log.tern = calloc(v->log.npages / 64, 8);
	v->shadow = aligned_alloc(4096, sz);
	memset(v->shadow, 0, sz);
	struct vring_dev g = { .num = NUM, .desc_iova = DESC, .avail_iova = AVAIL, .used_iova = USED };
	if (svq_init(&v->q, &g, &v->ram, &v->log, v->shadow, SHADOW_IOVA, &e) < 0)
		fail_msg("svq_init: %s", e.msg);
	/* the device sees guest RAM at IOVA = GPA and the shadow ring above it */
	assert_int_equal(iotlb_init(&v->devtlb), 0);
	assert_int_equal(iotlb_map(&v->devtlb, 0, 16 * MiB, v->vm.mem.hva, VDPA_PERM_RW), 0);
	assert_int_equal(iotlb_map(&v->devtlb, SHADOW_IOVA, sz, v->shadow, VDPA_PERM_RW), 0);
	svq_addrs(&v->q, &d, &a, &u);
	v->dev = (struct vring_dev){ .num = NUM, .desc_iova = d, .avail_iova = a, .used_iova = u };
	assert_int_equal(vring_dev_attach(&v->dev, &v->devtlb, &v->devtlb), 0);
	return v;
}

static void env_free(struct env *v)
{
	svq_exit(&v->q);
	iotlb_exit(&v->ram);
	iotlb_exit(&v->devtlb);
	free((void *)v->log.tern);
	free(v->shadow);
	mem_destroy(&v->vm.mem);
	free(v);
}

static uint8_t *gpa(struct env *v, uint64_t a)
{
	return v->vm.mem.hva + a;
}

static void put_desc(struct env *v, uint64_t table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	struct vring_desc d = { addr, len, flags, next };
	memcpy(gpa(v, table + 16 * i), &d, sizeof(d));
}

static void make_avail(struct env *v, uint16_t head)
{
	memcpy(gpa(v, AVAIL + 4 + 2 * (v->avail_idx % NUM)), &head, 2);
	v->avail_idx++;
	__atomic_store_n((uint16_t *)gpa(v, AVAIL + 2), v->avail_idx, __ATOMIC_RELEASE);
}

/* A request: out bytes to read, then in bytes for the device to fill, at
 * BUFS + slot * 64 KiB; the chain in n pieces each way (direct), or in an
 * indirect table. Returns the head. */
static uint16_t post(struct env *v, unsigned slot, uint32_t out, uint32_t in, unsigned n, bool indirect)
{
	uint64_t buf = BUFS + (uint64_t)slot * 0x10000, table = indirect ? buf + 0xf000 : DESC;
	uint16_t head = v->next_desc, at = indirect ? 0 : head;
	unsigned total = 2 * n;

	for (unsigned i = 0; i < total; i++) {
		bool w = i >= n;
		uint32_t len = (w ? in : out) / n;
		uint64_t a = buf + (w ? 0x8000 : 0) + (uint64_t)(i % n) * len;
		put_desc(v, table, (at + i) % (indirect ? 64 : NUM), a, len,
			 (uint16_t)((w ? VRING_DESC_F_WRITE : 0) | (i + 1 < total ? VRING_DESC_F_NEXT : 0)),
			 (uint16_t)((at + i + 1) % (indirect ? 64 : NUM)));
	}
	if (indirect) {
		put_desc(v, DESC, head, table, 16 * total, VRING_DESC_F_INDIRECT, 0);
		v->next_desc = (uint16_t)((head + 1) % NUM);
	} else {
		v->next_desc = (uint16_t)((head + total) % NUM);
	}
	make_avail(v, head);
	return head;
}

static bool dirty(struct env *v, uint64_t a)
{
	uint64_t p = a >> 12;
	return (atomic_load(&v->log.tern[p / 64]) >> (p % 64)) & 1;
}

/* The device takes one chain, writes len bytes of 0x5a into its writable
 * part and returns it. */
static uint16_t device_serves(struct env *v, uint32_t len)
{
	struct vring_chain c;
	uint8_t data[0x8000];

	assert_int_equal(vring_dev_pop(&v->dev, &c), 1);
	memset(data, 0x5a, sizeof(data));
	assert_int_equal(vring_chain_write(&c, &v->devtlb, 0, data, len), len);
	assert_int_equal(vring_dev_push(&v->dev, c.head, len), 0);
	return c.head;
}

static void guest_used(struct env *v, unsigned i, uint32_t *id, uint32_t *len)
{
	memcpy(id, gpa(v, USED + 4 + 8 * (i % NUM)), 4);
	memcpy(len, gpa(v, USED + 4 + 8 * (i % NUM) + 4), 4);
}

static void test_round_trip_and_dirty_bytes(void **state)
{
	struct env *v = env_new();
	bool notify, kick;
	uint32_t id, len;

	(void)state;
	for (int indirect = 0; indirect < 2; indirect++) {
		memset((void *)v->log.tern, 0, v->log.npages / 8);
		uint16_t head = post(v, (unsigned)indirect, 64, 0x2000, 2, indirect);
		assert_int_equal(svq_kick(&v->q, &kick, &notify), 1);
		/* the device sees the guest's buffers, at their GPAs */
		device_serves(v, 100);
		assert_int_equal(svq_used(&v->q, &notify), 1);
		assert_true(notify);
		assert_int_equal(__atomic_load_n((uint16_t *)gpa(v, USED + 2), __ATOMIC_ACQUIRE), indirect + 1);
		guest_used(v, (unsigned)indirect, &id, &len);
		assert_int_equal(id, head);
		assert_int_equal(len, 100);
		uint64_t in = BUFS + (uint64_t)indirect * 0x10000 + 0x8000;
		assert_int_equal(gpa(v, in)[99], 0x5a);
		assert_int_equal(gpa(v, in)[100], 0);
		/* exactly: the page written and the used ring, not the request */
		assert_true(dirty(v, in) && dirty(v, USED));
		assert_false(dirty(v, in - 0x8000) || dirty(v, in + 0x1000) || dirty(v, DESC) || dirty(v, AVAIL));
	}
	env_free(v);
}

static void test_full_shadow_ring_parks(void **state)
{
	struct env *v = env_new();
	bool notify, kick;
	uint32_t id, len;

	(void)state;
	/* chains of 8 descriptors (4 indirect-flattened out + 4 in): two fill
	 * the 16-entry shadow ring, the third waits */
	uint16_t h[3];
	for (unsigned i = 0; i < 3; i++)
		h[i] = post(v, i, 64, 0x1000, 4, true);
	assert_int_equal(svq_kick(&v->q, &kick, &notify), 2);
	assert_true(v->q.have_parked);
	assert_int_equal(svq_kick(&v->q, &kick, &notify), 0); /* still no room */
	device_serves(v, 10);
	assert_int_equal(svq_used(&v->q, &notify), 1);
	assert_int_equal(svq_kick(&v->q, &kick, &notify), 1); /* room again: the parked one goes */
	device_serves(v, 20);
	device_serves(v, 30);
	assert_int_equal(svq_used(&v->q, &notify), 2);
	for (unsigned i = 0; i < 3; i++) {
		guest_used(v, i, &id, &len);
		assert_int_equal(id, h[i]);
		assert_int_equal(len, 10 * (i + 1));
	}
	assert_int_equal(v->q.nfree, NUM);
	env_free(v);
}

/* The device pushes a used element of its own making. */
static void forge_used(struct env *v, uint32_t id, uint32_t len, uint16_t idx)
{
	uint8_t *used = v->shadow + (v->dev.used_iova - SHADOW_IOVA);
	memcpy(used + 4, &id, 4);
	memcpy(used + 8, &len, 4);
	__atomic_store_n((uint16_t *)(used + 2), idx, __ATOMIC_RELEASE);
}

static void test_hostile_device(void **state)
{
	struct {
		uint32_t id, len;
		uint16_t idx;
	} bad[] = {
		{ NUM, 1, 1 },       /* id past the ring */
		{ 0xffffffff, 1, 1 },
		{ 5, 1, 1 },         /* a descriptor that is not in flight */
		{ 0, 0x1001, 1 },    /* more than the 0x1000 writable bytes */
		{ 0, 1, NUM + 1 },   /* the used index runs past the ring */
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct env *v = env_new();
		bool notify, kick;
		post(v, 0, 64, 0x1000, 1, false);
		assert_int_equal(svq_kick(&v->q, &kick, &notify), 1);
		forge_used(v, bad[i].id, bad[i].len, bad[i].idx);
		assert_int_equal(svq_used(&v->q, &notify), -EPROTO);
		assert_false(notify);
		/* nothing reached the guest, and the queue stays stopped */
		assert_int_equal(__atomic_load_n((uint16_t *)gpa(v, USED + 2), __ATOMIC_ACQUIRE), 0);
		assert_int_equal(svq_kick(&v->q, &kick, &notify), -EPROTO);
		env_free(v);
	}
}

static void test_hostile_guest(void **state)
{
	struct env *v = env_new();
	bool notify, kick;

	(void)state;
	make_avail(v, NUM + 3); /* a head outside the table */
	assert_int_equal(svq_kick(&v->q, &kick, &notify), -EINVAL);
	assert_int_equal(svq_kick(&v->q, &kick, &notify), -EINVAL); /* sticky */
	assert_int_equal(svq_used(&v->q, &notify), -EINVAL);
	env_free(v);
	/* a ring outside RAM is refused at set-up */
	struct err e = { { 0 } };
	struct svq q;
	struct iotlb t;
	assert_int_equal(iotlb_init(&t), 0);
	struct vring_dev g = { .num = NUM, .desc_iova = 32 * MiB, .avail_iova = AVAIL, .used_iova = USED };
	assert_int_equal(svq_init(&q, &g, &t, NULL, NULL, 0, &e), -EFAULT);
	g.num = 12;
	assert_int_equal(svq_init(&q, &g, &t, NULL, NULL, 0, &e), -EINVAL);
	iotlb_exit(&t);
}

/* The shadow ring is the device's to write: a device (or a VDUSE
 * daemon) that rewrites every descriptor's next must not steer tern's
 * free list (it used to live in desc[].next: place() then indexed
 * inflight[] and desc[] at 0xfff0, a heap overflow under ASan). */
static void test_device_rewrites_links(void **state)
{
	struct env *v = env_new();
	bool notify, kick;

	(void)state;
	for (unsigned round = 0; round < 4; round++) {
		unsigned nch = round % 2 ? 3 : 2; /* 4 shadow descriptors each: 8, then 4, stay free */
		for (unsigned i = 0; i < nch; i++)
			post(v, i, 64, 0x1000, 2, true);
		assert_int_equal(svq_kick(&v->q, &kick, &notify), nch);
		uint16_t heads[3];
		struct vring_chain c;
		for (unsigned i = 0; i < nch; i++) {
			assert_int_equal(vring_dev_pop(&v->dev, &c), 1);
			heads[i] = c.head;
		}
		/* having read them, the device scribbles on every link, the free
		 * descriptors' too */
		for (unsigned d = 0; d < NUM; d++)
			v->q.desc[d].next = 0xfff0;
		for (unsigned i = 0; i < nch; i++)
			assert_int_equal(vring_dev_push(&v->dev, heads[i], 8), 0);
		assert_int_equal(svq_used(&v->q, &notify), (int)nch);
		assert_int_equal(v->q.nfree, NUM);
		assert_true(v->q.free_head < NUM);
	}
	assert_int_equal(__atomic_load_n((uint16_t *)gpa(v, USED + 2), __ATOMIC_ACQUIRE), 10);
	env_free(v);
}

/* Chains of only empty buffers are answered at once; the guest is
 * interrupted for them as for any other used entry. */
static void test_empty_chain_interrupts(void **state)
{
	struct env *v = env_new();
	bool notify = false, kick = true;

	(void)state;
	put_desc(v, DESC, 0, BUFS, 0, VRING_DESC_F_NEXT, 1);
	put_desc(v, DESC, 1, BUFS, 0, VRING_DESC_F_WRITE, 0);
	make_avail(v, 0);
	assert_int_equal(svq_kick(&v->q, &kick, &notify), 0);
	assert_false(kick);
	assert_true(notify);
	assert_int_equal(__atomic_load_n((uint16_t *)gpa(v, USED + 2), __ATOMIC_ACQUIRE), 1);
	/* a guest that asked for no interrupts gets none */
	*(uint16_t *)gpa(v, AVAIL) = VRING_AVAIL_F_NO_INTERRUPT;
	make_avail(v, 0);
	assert_int_equal(svq_kick(&v->q, &kick, &notify), 0);
	assert_false(notify);
	env_free(v);
}

/* A chain with more buffers than the shadow ring has descriptors can never
 * be placed: refused as malformed (the queue stops), not parked forever. */
static void test_chain_longer_than_ring(void **state)
{
	struct env *v = env_new();
	bool notify, kick;

	(void)state;
	post(v, 0, 16 * 64, 16 * 64, 16, true); /* 32 buffers, 16 descriptors */
	assert_int_equal(svq_kick(&v->q, &kick, &notify), -EINVAL);
	assert_false(v->q.have_parked && v->q.error == 0);
	assert_int_equal(svq_kick(&v->q, &kick, &notify), -EINVAL);
	env_free(v);
}

/* From ring size 512 the guest's avail_event is on a page of its own:
 * when tern publishes it, the page is logged. */
static void test_avail_event_logged(void **state)
{
	enum { N = 512, D = 0x20000, A = 0x30000, U = 0x40000 };
	struct vm vm = { 0 };
	struct iotlb ram;
	struct err e = { { 0 } };
	struct svq q;
	bool notify, kick;

	(void)state;
	assert_int_equal(mem_init(&vm.mem, 16 * MiB, &e), 0);
	assert_int_equal(iotlb_init(&ram), 0);
	assert_int_equal(iotlb_map(&ram, 0, 16 * MiB, vm.mem.hva, VDPA_PERM_RW), 0);
	struct dirty_log log = { .vm = &vm, .npages = (16 * MiB) >> 12 };
	log.tern = calloc(log.npages / 64, 8);
	size_t sz = svq_ring_size(N);
	void *shadow = aligned_alloc(4096, sz);
	memset(shadow, 0, sz);
	struct vring_dev g = { .num = N, .desc_iova = D, .avail_iova = A, .used_iova = U, .event_idx = true };
	if (svq_init(&q, &g, &ram, &log, shadow, SHADOW_IOVA, &e) < 0)
		fail_msg("svq_init: %s", e.msg);
	*(uint16_t *)(vm.mem.hva + A + 2) = 0;
	assert_int_equal(svq_kick(&q, &kick, &notify), 0); /* empty: asks for a kick at 0 */
	uint64_t ev = U + 4 + 8 * N, p = ev >> 12;
	assert_int_equal(p, (U >> 12) + 1);
	assert_true((atomic_load(&log.tern[p / 64]) >> (p % 64)) & 1);
	svq_exit(&q);
	free(shadow);
	free((void *)log.tern);
	iotlb_exit(&ram);
	mem_destroy(&vm.mem);
}

/* After the device restarted, its old event index must not decide kicks:
 * the next chain tern places kicks. */
static void test_restart_forgets_event(void **state)
{
	struct env *v = env_new();
	bool notify, kick;
	uint8_t *used = v->shadow + (v->dev.used_iova - SHADOW_IOVA);

	(void)state;
	v->q.dev_event_idx = true;
	post(v, 0, 64, 0x1000, 1, false);
	assert_int_equal(svq_kick(&v->q, &kick, &notify), 1);
	assert_true(kick); /* the device's avail_event is 0: it asked for this one */
	/* the device took it and then was reset, its avail_event left at 0 */
	post(v, 1, 64, 0x1000, 1, false);
	assert_int_equal(svq_kick(&v->q, &kick, &notify), 1);
	assert_false(kick); /* as a device that is running asked */
	svq_device_restarted(&v->q);
	assert_int_equal(*(uint16_t *)(used + 4 + 8 * NUM), 2);
	post(v, 2, 64, 0x1000, 1, false);
	assert_int_equal(svq_kick(&v->q, &kick, &notify), 1);
	assert_true(kick);
	env_free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_and_dirty_bytes),
		cmocka_unit_test(test_full_shadow_ring_parks),
		cmocka_unit_test(test_hostile_device),
		cmocka_unit_test(test_hostile_guest),
		cmocka_unit_test(test_device_rewrites_links),
		cmocka_unit_test(test_empty_chain_interrupts),
		cmocka_unit_test(test_chain_longer_than_ring),
		cmocka_unit_test(test_avail_event_logged),
		cmocka_unit_test(test_restart_forgets_event),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
