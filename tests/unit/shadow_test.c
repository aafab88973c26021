/* SPDX-License-Identifier: MIT */
/*
 * vdpa/shadow.c without KVM (tests/lib/netdrv.c: a driver in plain memory,
 * tern's software vDPA device on a datagram wire). For every strategy:
 * frames both ways stay intact and in order across passthrough -> SVQ ->
 * passthrough, the SVQ marks the RX buffers it saw written, the CVQ still
 * answers, and every shadow mapping is gone afterwards. Then a failure is
 * injected at every backend call of both switches: each one rolls back to
 * the mode it started in, traffic goes on, and no mapping is leaked; 100
 * start -> failure -> passthrough cycles end with the IOTLB as it began.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "tests/lib/netdrv.h"
#include "tests/unit/unit.h"
#include "vdpa/cvq.h"

#define MEM (16 * MiB)
#define NF 2000
#define ALL_BACKEND 0

static struct netdrv *up(uint64_t backend_off)
{
	struct err e = { { 0 } };
	struct netdrv *d = netdrv_new(MEM, backend_off, false, &e);

	if (!d)
		fail_msg("netdrv_new: %s", e.msg);
	return d;
}

#define down netdrv_free

static unsigned entries(struct netdrv *d)
{
	struct sim_net_stats st;

	sim_net_get_stats(d->dev, &st);
	return st.iotlb_entries;
}

/* n frames each way arrive, none duplicated or damaged; lost frames are
 * allowed only where the strategy resets the device (its held frame) */
static void traffic(struct netdrv *d, uint64_t n, uint64_t max_lost)
{
	uint64_t got = netdrv_pump(d, n, 10000);
	if (got < n)
		fail_msg("only %llu of %llu frames each way (tx got %llu lost %llu bad %llu, rx got %llu lost %llu bad "
			 "%llu)", (unsigned long long)got, (unsigned long long)n, (unsigned long long)d->tx.got,
			 (unsigned long long)d->tx.lost, (unsigned long long)d->tx.bad, (unsigned long long)d->rx.got,
			 (unsigned long long)d->rx.lost, (unsigned long long)d->rx.bad);
	assert_int_equal(d->tx.bad, 0);
	assert_int_equal(d->rx.bad, 0);
	assert_true(d->tx.lost + d->rx.lost <= max_lost);
}

static void test_each_strategy_round_trip(void **state)
{
	(void)state;
	for (unsigned s = 1; s <= 4; s++) {
		struct netdrv *d = up(ALL_BACKEND);
		struct err e = { { 0 } };
		uint64_t lossy = s >= 3 ? 4 : 0;
		unsigned base = entries(d);

		assert_int_equal(shadow_force(&d->sh, s, &e), 0);
		netdrv_log_on(d);
		traffic(d, NF, 0);
		assert_false(netdrv_dirty(d, 0x100000)); /* passthrough: tern sees nothing */
		if (shadow_to_svq(&d->sh, &e) < 0)
			fail_msg("strategy %u: %s", s, e.msg);
		assert_int_equal(d->sh.mode, SHADOW_SVQ);
		assert_int_equal(d->sh.strategy, s);
		assert_int_equal(entries(d), base + 2 - (s == 4 ? 0 : 0));
		traffic(d, NF, lossy);
		/* the SVQ marked the RX buffers and the used ring it wrote */
		assert_true(netdrv_dirty(d, 0x100000));
		assert_true(netdrv_dirty(d, 0x10000 + 0x2000));
		assert_true(d->sh.relay.kicks > 0 && d->sh.relay.calls > 0);
		assert_int_equal(netdrv_cvq(d, 0, 0, 1), 0); /* PROMISC on: the CVQ still answers */
		if (shadow_to_passthrough(&d->sh, &e) < 0)
			fail_msg("strategy %u back: %s", s, e.msg);
		assert_int_equal(d->sh.mode, SHADOW_PASSTHROUGH);
		traffic(d, NF, 2 * lossy);
		assert_int_equal(netdrv_cvq(d, 0, 0, 0), 0);
		assert_int_equal(entries(d), base);
		assert_int_equal(d->sh.iova.nr, 0);
		assert_int_equal(d->sh.stats.maps, 0);
		assert_int_equal(d->sh.stats.rollbacks, 0);
		down(d);
	}
}

/* A failure at call k of the switch into SVQ (or back), for every k the
 * switch makes (vdpa/fault_vdpa.h fails the k-th call the switch makes
 * through the ops table): each rolls back to where it started. */
static void fault_sweep(unsigned s, bool to_svq)
{
	struct netdrv *d = up(ALL_BACKEND);
	struct err e = { { 0 } };
	char injected[96];
	enum shadow_mode start = to_svq ? SHADOW_PASSTHROUGH : SHADOW_SVQ;
	unsigned cleanups = 0; /* calls failed where nothing can roll back: made again */
	uint64_t lossy = s >= 3 ? 8 : 0;
	unsigned base = entries(d), k;

	assert_int_equal(shadow_force(&d->sh, s, &e), 0);
	if (start == SHADOW_SVQ)
		assert_int_equal(shadow_to_svq(&d->sh, &e), 0);
	unsigned in_svq = entries(d);
	for (k = 0;; k++) {
		memset(&e, 0, sizeof(e));
		fault_vdpa_arm(d->faulty, (int)k, NULL);
		int r = to_svq ? shadow_to_svq(&d->sh, &e) : shadow_to_passthrough(&d->sh, &e);
		unsigned calls = fault_vdpa_disarm(d->faulty, injected, sizeof(injected));
		if (r == 0 && !injected[0]) {
			assert_true(calls <= k); /* it never reached the fault */
			break;
		}
		if (r == 0) {
			/* the failed call was in the clean-up after the switch
			 * (the shadow rings' unmapping), which tries again */
			assert_int_equal(d->sh.mode, to_svq ? SHADOW_SVQ : SHADOW_PASSTHROUGH);
			assert_int_equal(entries(d), to_svq ? in_svq : base);
			cleanups++;
			if (!to_svq)
				assert_int_equal(shadow_to_svq(&d->sh, &e), 0);
			else
				assert_int_equal(shadow_to_passthrough(&d->sh, &e), 0);
			continue;
		}
		if (r != -EIO)
			fail_msg("strategy %u call %u (%s): %d %s", s, k, injected, r, e.msg);
		assert_err_contains(&e, "rolled back");
		assert_int_equal(d->sh.mode, start);
		if (d->sh.stats.recoveries)
			fail_msg("strategy %u %s %s: rollback failed: %s", s, to_svq ? "to svq" : "back", injected, e.msg);
		assert_int_equal(entries(d), start == SHADOW_SVQ ? in_svq : base);
		traffic(d, 200, (k + 1) * lossy);
	}
	assert_true(k >= 6);
	assert_int_equal(d->sh.stats.rollbacks, k - cleanups);
	/* and back (or forth) once more, for real */
	if (to_svq)
		assert_int_equal(shadow_to_passthrough(&d->sh, &e), 0);
	assert_int_equal(d->sh.mode, SHADOW_PASSTHROUGH);
	traffic(d, 200, (k + 2) * lossy);
	assert_int_equal(entries(d), base);
	assert_int_equal(d->sh.iova.nr, 0);
	down(d);
}

static void test_fault_at_every_call(void **state)
{
	(void)state;
	for (unsigned s = 1; s <= 4; s++) {
		fault_sweep(s, true);
		fault_sweep(s, false);
	}
}

static void test_100_failed_starts(void **state)
{
	struct netdrv *d = up(ALL_BACKEND);
	struct err e = { { 0 } };
	unsigned base = entries(d);

	(void)state;
	srand(42);
	for (int i = 0; i < 100; i++) {
		fault_vdpa_arm(d->faulty, rand() % 14, NULL); /* strategy 1 makes more calls than that */
		assert_int_equal(shadow_to_svq(&d->sh, &e), -EIO);
		fault_vdpa_disarm(d->faulty, NULL, 0);
		assert_int_equal(d->sh.mode, SHADOW_PASSTHROUGH);
		assert_int_equal(entries(d), base);
		assert_int_equal(d->sh.iova.nr, 0);
		traffic(d, 20, 0);
	}
	down(d);
}

static void test_pick_by_features(void **state)
{
	static const struct {
		uint64_t off;
		unsigned want;
	} cases[] = {
		{ 0, 1 },
		{ 1ull << VDPA_BF_DESC_ASID, 2 },
		{ 1ull << VDPA_BF_RESUME, 3 },
		{ (1ull << VDPA_BF_RESUME) | (1ull << VDPA_BF_IOTLB_PERSIST), 4 },
		{ (1ull << VDPA_BF_SUSPEND) | (1ull << VDPA_BF_RESUME) | (1ull << VDPA_BF_IOTLB_PERSIST), 4 },
		/* nothing at all: no batching, no ASIDs, no v2 messages */
		{ ~0ull, 4 },
	};
	(void)state;
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct netdrv *d = up(cases[i].off);
		struct err e = { { 0 } };
		const char *why;
		assert_int_equal(shadow_pick(&d->sh, &why), cases[i].want);
		if (cases[i].want > 1) {
			assert_int_equal(shadow_force(&d->sh, cases[i].want - 1, &e), -EOPNOTSUPP);
			assert_err_contains(&e, "needs backend features");
		}
		/* the auto choice works, both ways, with traffic */
		assert_int_equal(shadow_to_svq(&d->sh, &e), 0);
		assert_int_equal(d->sh.strategy, cases[i].want);
		traffic(d, 300, cases[i].want >= 3 ? 4 : 0);
		assert_int_equal(shadow_to_passthrough(&d->sh, &e), 0);
		traffic(d, 300, cases[i].want >= 3 ? 8 : 0);
		down(d);
	}
}

struct broken {
	unsigned queue;
	int err, count;
};

static void note_broken(void *opaque, unsigned queue, int err)
{
	struct broken *b = opaque;

	b->queue = queue;
	b->err = err;
	__atomic_fetch_add(&b->count, 1, __ATOMIC_SEQ_CST);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { 0, (long)ms * 1000000 };
	nanosleep(&ts, NULL);
}

/* A guest that breaks a shadowed ring stops that queue, and the owner
 * hears of it (once) so it can signal NEEDS_RESET: a broken queue used to
 * stop silently. */
static void test_broken_queue_reported(void **state)
{
	struct netdrv *d = up(ALL_BACKEND);
	struct err e = { { 0 } };
	struct broken b = { 0 };
	uint64_t one = 1;

	(void)state;
	d->sh.on_queue_error = note_broken;
	d->sh.on_queue_error_opaque = &b;
	assert_int_equal(shadow_to_svq(&d->sh, &e), 0);
	traffic(d, 50, 0);
	/* TX (queue 1): a head outside the descriptor table */
	struct netdrv_q *q = &d->q[1];
	uint16_t bad = NETDRV_NUM + 3;
	memcpy(d->vm.mem.hva + q->avail + 4 + 2 * (q->avail_idx % NETDRV_NUM), &bad, 2);
	q->avail_idx++;
	__atomic_store_n((uint16_t *)(d->vm.mem.hva + q->avail + 2), q->avail_idx, __ATOMIC_RELEASE);
	assert_int_equal(write(d->kick[1], &one, 8), 8);
	for (int i = 0; i < 200 && !__atomic_load_n(&b.count, __ATOMIC_SEQ_CST); i++)
		sleep_ms(10);
	assert_int_equal(__atomic_load_n(&b.count, __ATOMIC_SEQ_CST), 1);
	assert_int_equal(b.queue, 1);
	assert_int_equal(b.err, -EINVAL);
	/* reported once, not at every kick */
	assert_int_equal(write(d->kick[1], &one, 8), 8);
	sleep_ms(50);
	assert_int_equal(__atomic_load_n(&b.count, __ATOMIC_SEQ_CST), 1);
	down(d);
}

/* A device whose resume and vring-base reads fail: a switch to SVQ then
 * fails, and so does its rollback. */
static const struct vdpa_ops *real_ops;

static int fail_get_vring_base(struct vdpa_dev *dev, unsigned i, uint16_t *base)
{
	(void)dev;
	(void)i;
	(void)base;
	return -EIO;
}

static int fail_resume(struct vdpa_dev *dev)
{
	(void)dev;
	return -EIO;
}

/* A switch to SVQ whose rollback fails (the device's base and resume
 * fail): it ends in one recovery. */
static void switch_with_failed_rollback(struct netdrv *d)
{
	struct err e = { { 0 } };

	real_ops = d->dev->ops;
	struct vdpa_ops broken = *real_ops;
	broken.get_vring_base = fail_get_vring_base;
	broken.resume = fail_resume;
	d->dev->ops = &broken;
	assert_true(shadow_to_svq(&d->sh, &e) < 0);
	d->dev->ops = real_ops;
	assert_int_equal(d->sh.stats.recoveries, 1);
}

/* A switch whose rollback fails recovers by a reset and a drain: the
 * relay's queues from an earlier SVQ session, whose rings are gone, must
 * not be drained (it used to read an unmapped shadow ring: a crash). */
static void test_failed_rollback_after_earlier_session(void **state)
{
	struct netdrv *d = up(ALL_BACKEND);
	struct err e = { { 0 } };
	struct broken b = { 0 };

	(void)state;
	d->sh.on_queue_error = note_broken;
	d->sh.on_queue_error_opaque = &b;
	assert_int_equal(shadow_force(&d->sh, 2, &e), 0);
	assert_int_equal(shadow_to_svq(&d->sh, &e), 0);
	traffic(d, 50, 0);
	assert_int_equal(shadow_to_passthrough(&d->sh, &e), 0);
	traffic(d, 50, 0);
	switch_with_failed_rollback(d);
	/* nothing of the old session was walked: no queue "broke" */
	assert_int_equal(b.count, 0);
	assert_int_equal(d->sh.relay.error, 0);
	assert_int_equal(d->sh.mode, SHADOW_PASSTHROUGH);
	traffic(d, 50, 8);
	down(d);
}

/* A recovery on a device whose mappings do not survive a reset, with the
 * control queue's shadow isolated in ASID 1: the recovery maps tern's own
 * control-queue memory again, or the next guest command never completes. */
static void test_recovery_maps_the_control_queue_again(void **state)
{
	struct err e = { { 0 } };
	struct netdrv *d = netdrv_new(MEM, 1ull << VDPA_BF_IOTLB_PERSIST, true, &e);

	(void)state;
	if (!d)
		fail_msg("netdrv_new: %s", e.msg);
	assert_int_equal(d->cvq_asid, 1);
	assert_int_equal(netdrv_cvq(d, CVQ_RX, CVQ_RX_PROMISC, 1), 0);
	assert_int_equal(shadow_force(&d->sh, 2, &e), 0);
	switch_with_failed_rollback(d);
	assert_int_equal(d->sh.mode, SHADOW_PASSTHROUGH);
	traffic(d, 50, 8);
	assert_int_equal(netdrv_cvq(d, CVQ_RX, CVQ_RX_PROMISC, 0), 0);
	down(d);
}

/* Without IOTLB_MSG_V2 an IOTLB message cannot name an ASID: tern then
 * negotiates no ASID feature and keeps the control queue in ASID 0, where
 * it works, instead of mapping its ring "in ASID 1" that lands in 0. */
static void test_no_msg_v2_keeps_everything_in_asid_0(void **state)
{
	struct err e = { { 0 } };
	struct netdrv *d = netdrv_new(MEM, 1ull << VDPA_BF_IOTLB_MSG_V2, true, &e);

	(void)state;
	if (!d)
		fail_msg("netdrv_new: %s", e.msg);
	assert_int_equal(netdrv_cvq(d, CVQ_RX, CVQ_RX_PROMISC, 1), 0);
	assert_int_equal(d->cvq_asid, 0);
	assert_int_equal(shadow_backend_wanted(~0ull & ~(1ull << VDPA_BF_IOTLB_MSG_V2)) &
				 ((1ull << VDPA_BF_IOTLB_ASID) | (1ull << VDPA_BF_DESC_ASID)),
			 0);
	traffic(d, 50, 0);
	if (shadow_to_svq(&d->sh, &e) < 0)
		fail_msg("switch: %s", e.msg);
	assert_true(d->sh.strategy != 1);
	traffic(d, 50, 8);
	assert_int_equal(netdrv_cvq(d, CVQ_RX, CVQ_RX_PROMISC, 0), 0);
	assert_int_equal(shadow_to_passthrough(&d->sh, &e), 0);
	down(d);
}

/* Freezes and thaws, each kind: a device as strict as hardware (it
 * forgets kicks while suspended or reset, and serves a queue it found
 * empty only after a kick) gets traffic going again only if the thaw kicks
 * it: the guest's RX buffers are on the shadow ring already, and nothing
 * else would tell the restarted device about them. */
static void test_thaw_kicks_strict_device(void **state)
{
	static const uint64_t off[] = {
		0,                                                          /* suspend, resume */
		(1ull << VDPA_BF_SUSPEND) | (1ull << VDPA_BF_RESUME),       /* reset, restart (VDUSE) */
	};

	(void)state;
	for (unsigned k = 0; k < ARRAY_SIZE(off); k++) {
		for (int svq = 0; svq < 2; svq++) {
			if (off[k] && !svq)
				continue; /* without SUSPEND only shadow queues freeze */
			struct netdrv *d = up(off[k]);
			struct err e = { { 0 } };
			if (svq)
				assert_int_equal(shadow_to_svq(&d->sh, &e), 0);
			traffic(d, 100, 0);
			for (int i = 0; i < 5; i++) {
				if (shadow_freeze(&d->sh, &e) < 0)
					fail_msg("freeze: %s", e.msg);
				shadow_thaw(&d->sh);
				traffic(d, 100, off[k] ? 8 : 0);
			}
			down(d);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_each_strategy_round_trip),
		cmocka_unit_test(test_fault_at_every_call),
		cmocka_unit_test(test_100_failed_starts),
		cmocka_unit_test(test_pick_by_features),
		cmocka_unit_test(test_broken_queue_reported),
		cmocka_unit_test(test_failed_rollback_after_earlier_session),
		cmocka_unit_test(test_thaw_kicks_strict_device),
		cmocka_unit_test(test_recovery_maps_the_control_queue_again),
		cmocka_unit_test(test_no_msg_v2_keeps_everything_in_asid_0),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
