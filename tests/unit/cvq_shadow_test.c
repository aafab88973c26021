/* SPDX-License-Identifier: MIT */
/*
 * vdpa/cvq_shadow.c without KVM (tests/lib/netdrv.c with the control queue
 * shadowed, over tern's software device): hostile guest commands are
 * answered ERR without reaching the device, good ones reach it and change
 * the record only when it says OK, a device NACK leaves the record alone;
 * the queue is isolated in ASID 1 on this device; the record round-trips
 * through its travelling form, which refuses out-of-range input; a replay
 * of 64 MAC addresses and 32 VLANs gives a new device the same state,
 * pipelined or one command at a time, and a NACK in it is reported; an
 * RSS state reaches the new device in one RSS_CONFIG and its travelling
 * form is checked against the device's limits.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "tests/lib/netdrv.h"
#include "tests/unit/unit.h"

static struct netdrv *up_nack(uint64_t nack_at)
{
	struct err e = { { 0 } };
	struct netdrv_opts o = { .ctrl = true, .nack_at = nack_at };
	struct netdrv *d = netdrv_new_opts(16 * MiB, &o, &e);

	if (!d)
		fail_msg("netdrv_new_opts: %s", e.msg);
	return d;
}

static struct netdrv *up(void)
{
	struct err e = { { 0 } };
	struct netdrv *d = netdrv_new(16 * MiB, 0, true, &e);

	if (!d)
		fail_msg("netdrv_new: %s", e.msg);
	return d;
}

#define down netdrv_free

static uint64_t device_cmds(struct netdrv *d)
{
	struct sim_net_stats st;

	sim_net_get_stats(d->dev, &st);
	return st.cvq_cmds;
}

static void test_hostile_commands_never_reach_the_device(void **state)
{
	struct netdrv *d = up();
	static uint8_t big[CVQ_CMD_MAX + 16];
	const uint8_t bad_class[] = { 9, 0, 1 };
	const uint8_t bad_rx[] = { CVQ_RX, 7, 1 };
	const uint8_t rx_two[] = { CVQ_RX, CVQ_RX_PROMISC, 2 };
	const uint8_t vlan_4096[] = { CVQ_VLAN, CVQ_VLAN_ADD, 0x00, 0x10 };
	const uint8_t mq_zero[] = { CVQ_MQ, CVQ_MQ_VQ_PAIRS_SET, 0, 0 };
	/* a unicast table that claims 1000 entries in 8 bytes */
	const uint8_t table_lies[] = { CVQ_MAC, CVQ_MAC_TABLE_SET, 0xe8, 0x03, 0, 0, 1, 2, 3, 4 };
	const uint8_t mcast_in_uni[] = { CVQ_MAC, CVQ_MAC_TABLE_SET, 1, 0, 0, 0, 0x01, 0, 0x5e, 0, 0, 1, 0, 0, 0, 0 };

	(void)state;
	assert_int_equal(d->cvq_asid, 1); /* the CVQ's group is its own here */
	uint64_t before = device_cmds(d);
	const struct {
		const void *c;
		size_t len;
	} cases[] = {
		{ bad_class, sizeof(bad_class) }, { bad_rx, sizeof(bad_rx) },     { rx_two, sizeof(rx_two) },
		{ vlan_4096, sizeof(vlan_4096) }, { mq_zero, sizeof(mq_zero) },   { table_lies, sizeof(table_lies) },
		{ mcast_in_uni, sizeof(mcast_in_uni) }, { big, sizeof(big) },     { bad_class, 1 },
	};
	big[0] = CVQ_RX;
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(netdrv_cvq_raw(d, cases[i].c, cases[i].len, 1), CVQ_ERR);
	/* no ack byte to answer in: returned with nothing written */
	const uint8_t promisc_off[] = { CVQ_RX, CVQ_RX_PROMISC, 0 };
	assert_int_equal(netdrv_cvq_raw(d, promisc_off, 3, 0), -ENODATA);
	assert_int_equal(device_cmds(d), before);
	assert_int_equal(d->cvq.refused, 10);
	/* a good one reaches it, and the record follows */
	assert_int_equal(netdrv_cvq(d, CVQ_RX, CVQ_RX_PROMISC, 0), CVQ_OK);
	assert_int_equal(device_cmds(d), before + 1);
	struct net_ctrl_state rec;
	cvq_shadow_record(&d->cvq, &rec);
	assert_false(rec.promisc);
	/* traffic still flows on the data queues (now filtered by MAC) */
	down(d);
}

static void test_device_nack_leaves_the_record(void **state)
{
	struct net_ctrl_state rec;

	(void)state;
	struct netdrv *d = up_nack(2);
	assert_int_equal(netdrv_cvq(d, CVQ_RX, CVQ_RX_ALLMULTI, 1), CVQ_OK);
	assert_int_equal(netdrv_cvq(d, CVQ_RX, CVQ_RX_PROMISC, 0), CVQ_ERR); /* the device's 2nd: refused */
	cvq_shadow_record(&d->cvq, &rec);
	assert_true(rec.allmulti);
	assert_true(rec.promisc);
	assert_int_equal(d->cvq.nacked, 1);
	down(d);
}

static void big_state(struct netdrv *d, struct net_ctrl_state *s)
{
	cvq_state_reset(s, d->mac, d->cvq.features);
	s->promisc = false;
	s->uni_count = 48;
	s->multi_count = 16;
	for (unsigned i = 0; i < 48; i++)
		memcpy(s->uni[i], (uint8_t[6]){ 0x52, 0x54, 0, 1, 0, (uint8_t)i }, 6);
	for (unsigned i = 0; i < 16; i++)
		memcpy(s->multi[i], (uint8_t[6]){ 0x01, 0, 0x5e, 0, 1, (uint8_t)i }, 6);
	for (unsigned v = 100; v < 132; v++)
		s->vlans[v / 64] |= 1ull << (v % 64);
	s->nobcast = true;
}

static void test_replay_pipelined_and_serial(void **state)
{
	(void)state;
	for (int pipelined = 0; pipelined < 2; pipelined++) {
		struct netdrv *d = up();
		struct net_ctrl_state want, got;
		struct err e = { { 0 } };
		unsigned sent = 0;
		big_state(d, &want);
		/* the thread is idle (no guest command): replay on this thread */
		pthread_mutex_lock(&d->cvq.lock);
		pthread_mutex_unlock(&d->cvq.lock);
		uint64_t before = device_cmds(d);
		if (cvq_shadow_replay(&d->cvq, &want, pipelined, &sent, &e) < 0)
			fail_msg("replay: %s", e.msg);
		/* one table, PROMISC off, NOBCAST on, 32 VLANs */
		assert_int_equal(sent, 1 + 2 + 32);
		assert_int_equal(device_cmds(d), before + sent);
		cvq_shadow_record(&d->cvq, &got);
		assert_memory_equal(&got, &want, sizeof(got));
		down(d);
	}
}

/* A guest that turned off exactly its UDP segmentation offloads: the
 * device's defaults have them on (every negotiated receive offload), so
 * the replay must say so, and a GUEST_OFFLOADS_SET naming a bit that is
 * no receive offload is refused. */
static void test_replay_offloads_without_uso(void **state)
{
	struct netdrv *d = up();
	struct net_ctrl_state want, got;
	struct err e = { { 0 } };
	const uint64_t uso = (1ull << VNET_F_GUEST_USO4) | (1ull << VNET_F_GUEST_USO6);
	unsigned sent = 0;

	(void)state;
	assert_true((d->cvq.features & uso) == uso);
	cvq_state_reset(&want, d->mac, d->cvq.features);
	assert_true((want.offloads & uso) == uso);
	uint8_t set[2 + 8] = { CVQ_GUEST_OFFLOADS, CVQ_GUEST_OFFLOADS_SET };
	uint64_t ctrl_vq = 1ull << VNET_F_CTRL_VQ; /* negotiated, but no offload */
	memcpy(set + 2, &ctrl_vq, 8);
	assert_int_equal(netdrv_cvq_raw(d, set, sizeof(set), 1), CVQ_ERR);
	want.offloads &= ~uso;
	if (cvq_shadow_replay(&d->cvq, &want, true, &sent, &e) < 0)
		fail_msg("replay: %s", e.msg);
	assert_int_equal(sent, 1);
	cvq_shadow_record(&d->cvq, &got);
	assert_int_equal(got.offloads, want.offloads);
	down(d);
}

/* tern's record and the device's own state agree on everything the
 * device filters and steers by. */
static void assert_record_is_device(struct netdrv *d)
{
	struct net_ctrl_state rec, dev;

	cvq_shadow_record(&d->cvq, &rec);
	assert_true(sim_net_get_ctrl(d->dev, &dev));
	assert_memory_equal(rec.mac, dev.mac, 6);
	const bool rm[6] = { rec.promisc, rec.allmulti, rec.alluni, rec.nomulti, rec.nouni, rec.nobcast };
	const bool dm[6] = { dev.promisc, dev.allmulti, dev.alluni, dev.nomulti, dev.nouni, dev.nobcast };
	for (unsigned m = 0; m < 6; m++)
		if (rm[m] != dm[m])
			fail_msg("RX mode %u: record %d, device %d", m, rm[m], dm[m]);
	assert_int_equal(rec.uni_count, dev.uni_count);
	assert_int_equal(rec.multi_count, dev.multi_count);
	assert_memory_equal(rec.uni, dev.uni, 6 * rec.uni_count);
	assert_memory_equal(rec.multi, dev.multi, 6 * rec.multi_count);
	assert_memory_equal(rec.vlans, dev.vlans, sizeof(rec.vlans));
	assert_int_equal(rec.pairs, dev.pairs);
	assert_int_equal(rec.offloads, dev.offloads);
}

/* 2 + 1 MAC addresses (the device keeps 4), NOBCAST, 32 VLANs: 35
 * commands, the first 32 in one pipelined batch. */
static void small_state(struct netdrv *d, struct net_ctrl_state *s)
{
	cvq_state_reset(s, d->mac, d->cvq.features);
	s->promisc = false;
	s->uni_count = 2;
	s->multi_count = 1;
	memcpy(s->uni[0], (uint8_t[6]){ 0x52, 0x54, 0, 1, 0, 1 }, 6);
	memcpy(s->uni[1], (uint8_t[6]){ 0x52, 0x54, 0, 1, 0, 2 }, 6);
	memcpy(s->multi[0], (uint8_t[6]){ 0x01, 0, 0x5e, 0, 1, 1 }, 6);
	for (unsigned v = 100; v < 132; v++)
		s->vlans[v / 64] |= 1ull << (v % 64);
	s->nobcast = true;
}

/* A NACK in the middle of a pipelined replay: the rest of its batch is
 * collected (the device applied it), nothing after is sent, the record is
 * what the device holds; the guest's next commands are each answered as
 * the device answers them and keep the two equal. */
static void test_replay_nack_keeps_record_and_device_together(void **state)
{
	struct net_ctrl_state want, rec;
	struct err e = { { 0 } };
	unsigned sent;

	(void)state;
	struct netdrv *d = up_nack(3);
	small_state(d, &want);
	assert_int_equal(cvq_shadow_replay(&d->cvq, &want, true, &sent, &e), -EPROTO);
	assert_err_contains(&e, "refused the replayed RX_NOBCAST");
	assert_int_equal(sent, CVQS_SLOTS);
	assert_int_equal(device_cmds(d), CVQS_SLOTS);
	cvq_shadow_record(&d->cvq, &rec);
	assert_false(rec.nobcast);
	assert_int_equal(rec.uni_count, 2);
	assert_true(rec.vlans[100 / 64] & (1ull << (100 % 64)));
	assert_false(rec.vlans[131 / 64] & (1ull << (131 % 64))); /* the second batch never went */
	assert_record_is_device(d);
	assert_int_equal(netdrv_cvq(d, CVQ_RX, CVQ_RX_NOBCAST, 1), CVQ_OK);
	assert_record_is_device(d);
	uint8_t vlan[] = { CVQ_VLAN, CVQ_VLAN_ADD, 131, 0 };
	assert_int_equal(netdrv_cvq_raw(d, vlan, sizeof(vlan), 1), CVQ_OK);
	assert_int_equal(netdrv_cvq(d, CVQ_RX, CVQ_RX_ALLMULTI, 1), CVQ_OK);
	assert_record_is_device(d);
	cvq_shadow_record(&d->cvq, &rec);
	assert_true(rec.nobcast && rec.allmulti);
	down(d);
}

struct late_device {
	struct netdrv *d;
	unsigned ms;
};

/* The device wakes after ms and is kicked, as a slow one answers late. */
static void *wake_late(void *arg)
{
	struct late_device *l = arg;
	uint64_t one = 1;

	usleep(l->ms * 1000);
	assert_int_equal(l->d->dev->ops->resume(l->d->dev), 0);
	assert_int_equal(write(l->d->cvq.dev_kick, &one, 8), 8);
	return NULL;
}

/* A replay the device does not answer in time leaves its commands owed:
 * the guest's next command waits for them (it would otherwise take their
 * slot and be matched to their answers), they go into the record when the
 * device answers, and the guest's command is answered as the device
 * answered it. */
static void test_replay_timeout_owes_the_rest(void **state)
{
	struct netdrv *d = up();
	struct net_ctrl_state want, rec;
	struct err e = { { 0 } };
	struct late_device late = { d, 300 };
	pthread_t t;
	unsigned sent;

	(void)state;
	small_state(d, &want);
	d->cvq.timeout_ms = 100;
	assert_int_equal(d->dev->ops->suspend(d->dev), 0);
	assert_int_equal(cvq_shadow_replay(&d->cvq, &want, true, &sent, &e), -ETIMEDOUT);
	assert_int_equal(sent, CVQS_SLOTS);
	assert_int_equal(d->cvq.owed, ~0u);
	cvq_shadow_record(&d->cvq, &rec);
	assert_int_equal(rec.uni_count, 0); /* nothing acknowledged yet */
	/* a second replay cannot start on top of them */
	assert_int_equal(cvq_shadow_replay(&d->cvq, NULL, true, &sent, &e), -ETIMEDOUT);
	assert_int_equal(sent, 0);
	assert_int_equal(pthread_create(&t, NULL, wake_late, &late), 0);
	assert_int_equal(netdrv_cvq(d, CVQ_RX, CVQ_RX_ALLMULTI, 1), CVQ_OK);
	pthread_join(t, NULL);
	assert_int_equal(d->cvq.owed, 0);
	cvq_shadow_record(&d->cvq, &rec);
	assert_int_equal(rec.uni_count, 2);
	assert_true(rec.nobcast && rec.allmulti);
	assert_record_is_device(d);
	down(d);
}

/* A table too large for tern's record is replayed with ALLUNI on, the
 * record keeping the guest's modes and the overflow; when the guest later
 * sets a table that fits (and no RX mode: Linux never sends ALLUNI), the
 * shadow turns ALLUNI off again before answering it, so the device
 * filters as the guest asked and as the record says. */
static void test_oversized_table_fold_is_undone(void **state)
{
	struct netdrv *src = up(), *dst = up();
	struct net_ctrl_state rec, dev;
	struct err e = { { 0 } };
	uint8_t big[2 + 4 + 65 * 6 + 4] = { CVQ_MAC, CVQ_MAC_TABLE_SET, 65 };
	uint8_t small[2 + 4 + 6 + 4] = { CVQ_MAC, CVQ_MAC_TABLE_SET, 1, 0, 0, 0, 0x52, 0x54, 0, 9, 9, 9 };
	unsigned sent;

	(void)state;
	for (unsigned i = 0; i < 65; i++)
		memcpy(big + 6 + 6 * i, (uint8_t[6]){ 0x52, 0x54, 0, 2, 0, (uint8_t)i }, 6);
	assert_int_equal(netdrv_cvq(src, CVQ_RX, CVQ_RX_PROMISC, 0), CVQ_OK);
	assert_int_equal(netdrv_cvq_raw(src, big, sizeof(big), 1), CVQ_OK);
	cvq_shadow_record(&src->cvq, &rec);
	assert_true(rec.uni_overflow);
	assert_false(rec.promisc || rec.alluni);
	if (cvq_shadow_replay(&dst->cvq, &rec, true, &sent, &e) < 0)
		fail_msg("replay: %s", e.msg);
	assert_true(sim_net_get_ctrl(dst->dev, &dev));
	assert_true(dev.alluni); /* what the overflowing table passes */
	assert_false(dev.promisc);
	cvq_shadow_record(&dst->cvq, &rec);
	assert_true(rec.uni_overflow);
	assert_false(rec.alluni);
	assert_int_equal(dst->cvq.folded, 1u << CVQ_RX_ALLUNI);
	uint64_t before = device_cmds(dst);
	assert_int_equal(netdrv_cvq_raw(dst, small, sizeof(small), 1), CVQ_OK);
	assert_int_equal(device_cmds(dst), before + 2); /* the table, then ALLUNI off */
	assert_true(sim_net_get_ctrl(dst->dev, &dev));
	assert_false(dev.promisc || dev.alluni || dev.uni_overflow);
	assert_int_equal(dev.uni_count, 1);
	assert_int_equal(dst->cvq.folded, 0);
	assert_record_is_device(dst);
	/* a guest that asks for ALLUNI itself keeps it */
	assert_int_equal(netdrv_cvq(dst, CVQ_RX, CVQ_RX_ALLUNI, 1), CVQ_OK);
	assert_int_equal(netdrv_cvq_raw(dst, small, sizeof(small), 1), CVQ_OK);
	assert_record_is_device(dst);
	assert_true(sim_net_get_ctrl(dst->dev, &dev));
	assert_true(dev.alluni);
	down(src);
	down(dst);
}

static void test_record_round_trip_and_refusals(void **state)
{
	struct netdrv *d = up();
	struct net_ctrl_state s, back;
	struct cvq_record r, bad;
	struct err e = { { 0 } };

	(void)state;
	big_state(d, &s);
	s.uni_overflow = true;
	s.uni_count = 0;
	memset(s.uni, 0, sizeof(s.uni));
	cvq_record_pack(&s, &r);
	assert_int_equal(cvq_record_unpack(&r, NULL, d->cvq.features, &d->cvq.lim, &back, &e), 0);
	assert_memory_equal(&back, &s, sizeof(s));
	const struct {
		size_t off;
		uint8_t val;
	} flips[] = {
		{ offsetof(struct cvq_record, rx), 0x40 },       { offsetof(struct cvq_record, overflow), 4 },
		{ offsetof(struct cvq_record, uni_count), 65 },  { offsetof(struct cvq_record, multi_count), 200 },
		{ offsetof(struct cvq_record, pairs), 0 },       { offsetof(struct cvq_record, pairs), 2 },
		{ offsetof(struct cvq_record, rsvd0), 1 },       { offsetof(struct cvq_record, mac), 1 },
		{ offsetof(struct cvq_record, offloads) + 7, 0x80 },
	};
	for (unsigned i = 0; i < sizeof(flips) / sizeof(flips[0]); i++) {
		bad = r;
		((uint8_t *)&bad)[flips[i].off] = flips[i].val;
		memset(&e, 0, sizeof(e));
		assert_int_equal(cvq_record_unpack(&bad, NULL, d->cvq.features, &d->cvq.lim, &back, &e), -EPROTO);
	}
	/* a multicast address among the unicast ones */
	bad = r;
	bad.uni_count = 1;
	bad.uni[0][0] = 0x01;
	assert_int_equal(cvq_record_unpack(&bad, NULL, d->cvq.features, &d->cvq.lim, &back, &e), -EPROTO);
	down(d);
}

static void rss_state(struct netdrv *d, struct net_ctrl_state *s)
{
	cvq_state_reset(s, d->cvq.default_mac, d->cvq.features);
	s->rss = (struct cvq_rss){ .mode = CVQ_RSS_STEER, .key_len = 40, .table_len = 16, .hash_types = 5 };
	for (unsigned i = 0; i < 40; i++)
		s->rss.key[i] = (uint8_t)(i * 7 + 1);
}

static void test_rss_replay_and_record(void **state)
{
	struct netdrv *d = up();
	struct net_ctrl_state want, got, dev;
	struct err e = { { 0 } };
	unsigned sent = 0;

	(void)state;
	assert_int_equal(d->cvq.lim.rss_key_max, 40); /* read from the config space */
	assert_int_equal(d->cvq.lim.rss_table_max, 128);
	rss_state(d, &want);
	if (cvq_shadow_replay(&d->cvq, &want, true, &sent, &e) < 0)
		fail_msg("replay: %s", e.msg);
	assert_int_equal(sent, 1);
	cvq_shadow_record(&d->cvq, &got);
	assert_memory_equal(&got.rss, &want.rss, sizeof(want.rss));
	assert_true(sim_net_get_ctrl(d->dev, &dev));
	assert_memory_equal(&dev.rss, &want.rss, sizeof(want.rss)); /* the device's own state */
	/* travelling form: back as it was, and what the device cannot take refused */
	struct cvq_record r;
	struct net_ctrl_state back;
	cvq_record_pack(&want, &r);
	assert_int_equal(cvq_record_unpack(&r, &want.rss, d->cvq.features, &d->cvq.lim, &back, &e), 0);
	assert_memory_equal(&back.rss, &want.rss, sizeof(want.rss));
	struct cvq_rss bad[9];
	for (unsigned i = 0; i < 9; i++)
		bad[i] = want.rss;
	bad[0].mode = 3;
	bad[1].table_len = 12;       /* not a power of two */
	bad[2].table[3] = 1;         /* queue 1 of 1 */
	bad[3].hash_types = 1u << 3; /* IPv6: not offered */
	bad[4].key_len = 41;
	bad[5].table[20] = 0x100;    /* beyond table_len: padding */
	bad[6].mode = CVQ_RSS_HASH;  /* no HASH_REPORT negotiated */
	bad[7].rsvd = 1;
	bad[8].hash_types = 0;       /* nothing hashed, no key: that is mode OFF */
	bad[8].key_len = 0;
	memset(bad[8].key, 0, sizeof(bad[8].key));
	for (unsigned i = 0; i < 9; i++) {
		memset(&e, 0, sizeof(e));
		assert_int_equal(cvq_record_unpack(&r, &bad[i], d->cvq.features, &d->cvq.lim, &back, &e), -EPROTO);
	}
	down(d);
}

struct restart_seen {
	struct netdrv *d;
	int r;
	unsigned sent;
	struct err e;
};

static void replay_after_restart(void *opaque)
{
	struct restart_seen *x = opaque;

	x->r = cvq_shadow_replay(&x->d->cvq, NULL, true, &x->sent, &x->e);
}

/* A guest command on the device when tern resets it (a strategy-3
 * switch): the device, restarted at the shadow ring's used index, takes it
 * again; the guest gets its answer, and the replay that follows keeps it. */
static void test_command_in_flight_at_a_reset_is_answered(void **state)
{
	struct netdrv *d = up();
	struct restart_seen x = { .d = d };
	struct net_ctrl_state rec, dev;
	struct err e = { { 0 } };

	(void)state;
	d->sh.on_restart = replay_after_restart;
	d->sh.on_restart_opaque = &x;
	assert_int_equal(netdrv_cvq(d, CVQ_RX, CVQ_RX_NOBCAST, 1), CVQ_OK); /* something to replay */
	/* the device stops taking work: the next command stays on it */
	assert_int_equal(d->dev->ops->suspend(d->dev), 0);
	assert_int_equal(netdrv_cvq(d, CVQ_RX, CVQ_RX_PROMISC, 0), -ETIMEDOUT);
	assert_true(d->cvq.busy);
	assert_int_equal(shadow_force(&d->sh, 3, &e), 0);
	if (shadow_to_svq(&d->sh, &e) < 0)
		fail_msg("switch: %s", e.msg);
	if (x.r < 0)
		fail_msg("replay after the reset: %s", x.e.msg);
	/* the guest's answer: its used index moved, with OK in the ack */
	struct netdrv_q *q = &d->q[2];
	uint16_t used = __atomic_load_n((uint16_t *)(d->vm.mem.hva + q->used + 2), __ATOMIC_ACQUIRE);
	assert_int_equal(used, q->avail_idx);
	assert_int_equal((d->vm.mem.hva + q->bufs + 0x10000)[0], CVQ_OK);
	cvq_shadow_record(&d->cvq, &rec);
	assert_false(rec.promisc);
	assert_true(rec.nobcast);
	assert_true(sim_net_get_ctrl(d->dev, &dev));
	assert_false(dev.promisc); /* the device has both after its reset */
	assert_true(dev.nobcast);
	assert_int_equal(x.sent, 2);
	/* and the queue goes on */
	assert_int_equal(netdrv_cvq(d, CVQ_RX, CVQ_RX_ALLMULTI, 1), CVQ_OK);
	down(d);
}

struct cvq_call {
	struct netdrv *d;
	int ack;
	bool done;
};

static void *promisc_off(void *arg)
{
	struct cvq_call *c = arg;

	c->ack = netdrv_cvq(c->d, CVQ_RX, CVQ_RX_PROMISC, 0);
	__atomic_store_n(&c->done, true, __ATOMIC_RELEASE);
	return NULL;
}

/* The shadow marks its answers under the log's lock, the one
 * shadow_set_log() takes before the migration thread frees the log: while
 * another thread holds it, no answer is marked (or given); once it is let
 * go, the answer comes and its used ring is in the log. Without the lock
 * the shadow read a log that could be freed under it. */
static void test_answers_marked_under_the_log_lock(void **state)
{
	struct netdrv *d = up();
	struct cvq_call c = { .d = d };
	pthread_t t;

	(void)state;
	netdrv_log_on(d);
	pthread_mutex_lock(&d->sh.log_lock);
	assert_int_equal(pthread_create(&t, NULL, promisc_off, &c), 0);
	usleep(300 * 1000);
	bool early = __atomic_load_n(&c.done, __ATOMIC_ACQUIRE);
	pthread_mutex_unlock(&d->sh.log_lock);
	pthread_join(t, NULL);
	assert_false(early);
	assert_int_equal(c.ack, CVQ_OK);
	assert_true(netdrv_dirty(d, d->q[2].used));
	down(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hostile_commands_never_reach_the_device),
		cmocka_unit_test(test_answers_marked_under_the_log_lock),
		cmocka_unit_test(test_device_nack_leaves_the_record),
		cmocka_unit_test(test_replay_pipelined_and_serial),
		cmocka_unit_test(test_replay_offloads_without_uso),
		cmocka_unit_test(test_replay_nack_keeps_record_and_device_together),
		cmocka_unit_test(test_replay_timeout_owes_the_rest),
		cmocka_unit_test(test_oversized_table_fold_is_undone),
		cmocka_unit_test(test_record_round_trip_and_refusals),
		cmocka_unit_test(test_rss_replay_and_record),
		cmocka_unit_test(test_command_in_flight_at_a_reset_is_answered),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
