/* SPDX-License-Identifier: MIT */
/*
 * vdpa/cvq_shadow.c - see cvq_shadow.h. What QEMU replays on a destination
 * (net/vhost-vdpa.c) shaped the list
 * of commands; the command formats are virtio 1.x §5.1.6.5.
 */
#include "vdpa/cvq_shadow.h"
#include "vmm/sandbox.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define DESC_OFF 0
#define AVAIL_OFF 1024
#define USED_OFF 4096
#define ACK_OFF 4096
#define REPLAY_TIMEOUT_MS 5000

static struct vring_desc *desc(struct cvq_shadow *c)
{
	return (struct vring_desc *)(c->mem + DESC_OFF);
}

static uint16_t *avail(struct cvq_shadow *c)
{
	return (uint16_t *)(c->mem + AVAIL_OFF);
}

static uint8_t *used(struct cvq_shadow *c)
{
	return c->mem + USED_OFF;
}

static uint8_t *slot(struct cvq_shadow *c, unsigned s)
{
	return c->mem + CVQS_RING + (size_t)s * CVQS_SLOT;
}

static uint64_t slot_iova(const struct cvq_shadow *c, unsigned s)
{
	return c->iova + CVQS_RING + (uint64_t)s * CVQS_SLOT;
}

_Static_assert(AVAIL_OFF >= 16 * CVQS_NUM && USED_OFF >= AVAIL_OFF + 6 + 2 * CVQS_NUM &&
		       CVQS_RING >= USED_OFF + 6 + 8 * CVQS_NUM && 2 * CVQS_SLOTS <= CVQS_NUM &&
		       ACK_OFF >= CVQ_CMD_MAX && ACK_OFF < CVQS_SLOT,
	       "shadow control queue layout");

void cvq_limits_read(struct vdpa_dev *dev, uint64_t features, struct cvq_limits *lim)
{
	uint8_t cfg[24] = { 0 };

	*lim = (struct cvq_limits){ .mac_table_max = 64, .max_pairs = 1 };
	if (features & ((1ull << VNET_F_MQ) | (1ull << VNET_F_RSS))) {
		uint16_t pairs = 0;
		dev->ops->get_config(dev, 8, &pairs, 2);
		lim->max_pairs = cvq_pairs_max(features, pairs);
	}
	/* the RSS fields exist with either feature (virtio 1.2 5.1.4) */
	if ((features & ((1ull << VNET_F_RSS) | (1ull << VNET_F_HASH_REPORT))) &&
	    dev->ops->get_config(dev, 16, cfg + 16, 8) == 0) {
		lim->rss_key_max = cfg[17];
		lim->rss_table_max = (uint16_t)(cfg[18] | (cfg[19] << 8));
		lim->hash_types = ((uint32_t)cfg[20] | ((uint32_t)cfg[21] << 8) | ((uint32_t)cfg[22] << 16) |
				   ((uint32_t)cfg[23] << 24)) & CVQ_HASH_ALL;
	}
}

int cvq_shadow_init(struct cvq_shadow *c, struct vdpa_dev *dev, unsigned idx, uint64_t features,
		    const struct cvq_limits *lim, const uint8_t mac[6], const struct vring_dev *g,
		    const struct iotlb *ram, void *mem, uint64_t iova, struct err *e)
{
	int r;

	memset(c, 0, sizeof(*c));
	c->dev = dev;
	c->idx = idx;
	c->features = features;
	c->lim = *lim;
	c->lim.mac_table_max = 64; /* what the record holds: the device falls back itself */
	if (!c->lim.max_pairs)
		c->lim.max_pairs = 1;
	memcpy(c->default_mac, mac, 6);
	c->ram = ram;
	c->guest = *g;
	c->mem = mem;
	c->iova = iova;
	c->dev_kick = c->dev_call = c->stop_fd = c->guest_kick = c->guest_call = -1;
	r = vring_dev_attach(&c->guest, ram, ram);
	if (r < 0)
		return err_errno(e, r, "control queue: the guest's ring is not in RAM or misaligned");
	c->dev_kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	c->dev_call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	c->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->dev_kick < 0 || c->dev_call < 0 || c->stop_fd < 0)
		return err_errno(e, -errno, "control queue: eventfds");
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	cvq_state_reset(&c->rec, mac, features);
	c->timeout_ms = REPLAY_TIMEOUT_MS;
	return 0;
}

void cvq_shadow_addrs(const struct cvq_shadow *c, struct vdpa_vring_addr *a, uint16_t *num)
{
	*a = (struct vdpa_vring_addr){ c->iova + DESC_OFF, c->iova + AVAIL_OFF, c->iova + USED_OFF };
	*num = CVQS_NUM;
}

const uint16_t *cvq_shadow_used_idx(const struct cvq_shadow *c)
{
	return (const uint16_t *)(c->mem + USED_OFF + 2);
}

/* Puts command slot s (len bytes, then the ack byte) on the shadow ring. */
static void place(struct cvq_shadow *c, unsigned s, size_t len)
{
	uint16_t d = (uint16_t)(2 * s);

	slot(c, s)[ACK_OFF] = 0xff; /* neither OK nor ERR until the device says */
	desc(c)[d] = (struct vring_desc){ slot_iova(c, s), (uint32_t)len, VRING_DESC_F_NEXT, (uint16_t)(d + 1) };
	desc(c)[d + 1] = (struct vring_desc){ slot_iova(c, s) + ACK_OFF, 1, VRING_DESC_F_WRITE, 0 };
	avail(c)[2 + (c->avail_idx % CVQS_NUM)] = d;
	c->avail_idx++;
	/* with EVENT_IDX the device calls only when its used index passes
	 * used_event (after the avail ring): ask for the very next one */
	__atomic_store_n(&avail(c)[2 + CVQS_NUM], c->last_used, __ATOMIC_RELAXED);
	/* descriptors and entry first, then the index that publishes them */
	__atomic_store_n(&avail(c)[1], c->avail_idx, __ATOMIC_RELEASE);
}

/* The next used element: its slot, or -1 if none, -EPROTO if the device
 * returned what it was not given. */
static int take_used(struct cvq_shadow *c, unsigned nslots)
{
	uint16_t idx = __atomic_load_n((uint16_t *)(used(c) + 2), __ATOMIC_ACQUIRE);
	uint32_t id;

	if (idx == c->last_used)
		return -1;
	if ((uint16_t)(idx - c->last_used) > (uint16_t)(c->avail_idx - c->last_used))
		return -EPROTO; /* ran past what was made available */
	memcpy(&id, used(c) + 4 + 8 * (size_t)(c->last_used % CVQS_NUM), 4);
	c->last_used++;
	if (id % 2 || id / 2 >= nslots)
		return -EPROTO;
	return (int)(id / 2);
}

/* The log's lock is held while marking: the migration thread detaches
 * and frees the log (shadow_set_log(), then dirty_stop()) at any time. */
static void mark(struct cvq_shadow *c, uint64_t gpa, uint64_t len)
{
	if (!c->log)
		return;
	pthread_mutex_lock(c->log_lock);
	if (*c->log)
		dirty_mark(*c->log, gpa, len);
	pthread_mutex_unlock(c->log_lock);
}

/* Answers the guest's current command with ack. */
static void answer(struct cvq_shadow *c, uint8_t ack)
{
	uint16_t before = c->guest.used_idx;
	size_t n = vring_chain_write(&c->chain, c->ram, 0, &ack, 1);

	for (unsigned i = 0; n && i < c->chain.nseg; i++)
		if (c->chain.seg[i].write) {
			mark(c, c->chain.seg[i].iova, 1);
			break;
		}
	vring_dev_push(&c->guest, c->chain.head, (uint32_t)n);
	mark(c, c->guest.used_iova + 4 + 8 * (uint64_t)(before & (c->guest.num - 1)), 8);
	mark(c, c->guest.used_iova + 2, 2);
	if (vring_dev_need_notify(&c->guest, before))
		eventfd_signal(c->guest_call, "control queue");
}

/* Lock held. Takes guest commands until one goes to the device (or none
 * is left). */
static void guest_commands(struct cvq_shadow *c)
{
	uint8_t *cmd = slot(c, 0);

	/* slot 0 may still be the device's (an unanswered replay): the guest
	 * waits until the device has answered it */
	while (!c->busy && !c->owed) {
		int r = vring_dev_pop(&c->guest, &c->chain);
		if (r <= 0) {
			if (r < 0)
				pr_warn("%s: the guest's control queue is malformed (%s): it stops", c->dev->name,
					strerror(-r));
			return;
		}
		size_t len = vring_chain_read(&c->chain, c->ram, 0, cmd, CVQ_CMD_MAX);
		c->trial = c->rec;
		/* validated against tern's own rules before the device sees it */
		if (c->chain.out_len > CVQ_CMD_MAX || !c->chain.in_len ||
		    cvq_apply(&c->trial, &c->lim, c->features, cmd, len) != CVQ_OK) {
			/* the first few are logged: a driver tern refuses is
			 * either hostile or one tern's checks do not know */
			if (c->refused++ < 8)
				pr_warn("%s: the guest's control command class %u command %u (%zu bytes) fails tern's "
					"checks: answered ERR", c->dev->name, len ? cmd[0] : 0, len > 1 ? cmd[1] : 0,
					(size_t)c->chain.out_len);
			answer(c, CVQ_ERR);
			continue;
		}
		if (cmd[0] == CVQ_ANNOUNCE) {
			/* tern owns S_ANNOUNCE: the device never hears of it */
			c->announce_acks++;
			if (c->announce_ack)
				c->announce_ack(c->opaque);
			answer(c, CVQ_OK);
			continue;
		}
		place(c, 0, len);
		c->busy = true;
		c->forwarded++;
		eventfd_signal(c->dev_kick, "control queue");
	}
}

/* Lock held: the device answered replayed command s, which it owed; it
 * applied it if it said OK, so the record does too. */
static void owed_answered(struct cvq_shadow *c, unsigned s)
{
	if (slot(c, s)[ACK_OFF] == CVQ_OK)
		cvq_apply(&c->rec, &c->lim, c->features, slot(c, s), c->owed_len[s]);
	else
		c->nacked++;
	c->owed &= ~(1u << s);
}

static uint8_t replay_fold(const struct cvq_shadow *c, const struct net_ctrl_state *want);

/* Lock held, the device having said OK to a guest command: a mode tern
 * folded on for an overflowing table and that the record no longer needs
 * (the table fits now) goes off again, as the guest's own setting of it
 * would have left it; true while that command is on the device (slot 1),
 * the guest's answer waiting for it. */
static bool fold_fixup(struct cvq_shadow *c)
{
	const bool on[3] = { c->rec.promisc, c->rec.allmulti, c->rec.alluni };
	uint8_t need = replay_fold(c, &c->rec);

	for (uint8_t m = 0; m < 3; m++) {
		if (!(c->folded & (1u << m)) || (need & (1u << m)))
			continue;
		if (on[m]) { /* the guest wants it on now: it is the guest's */
			c->folded &= (uint8_t)~(1u << m);
			continue;
		}
		const uint8_t off[3] = { CVQ_RX, m, 0 };
		memcpy(slot(c, 1), off, sizeof(off));
		place(c, 1, sizeof(off));
		c->fixing = true;
		c->fix_mode = m;
		eventfd_signal(c->dev_kick, "control queue");
		return true;
	}
	return false;
}

/* Lock held: the device answered the command(s) on the ring. */
static void device_answers(struct cvq_shadow *c)
{
	int s;

	while ((c->busy || c->owed) && (s = take_used(c, CVQS_SLOTS)) != -1) {
		if (s >= 0 && (c->owed & (1u << s))) {
			owed_answered(c, (unsigned)s);
			continue;
		}
		if (s == 1 && c->fixing) {
			c->fixing = false;
			if (slot(c, 1)[ACK_OFF] == CVQ_OK)
				c->folded &= (uint8_t)~(1u << c->fix_mode);
			else /* the device keeps the mode on; the next command tries again */
				pr_warn("%s: the device refused to turn RX mode %u off again", c->dev->name, c->fix_mode);
			if (slot(c, 1)[ACK_OFF] == CVQ_OK && fold_fixup(c))
				continue;
			c->busy = false;
			answer(c, CVQ_OK);
			continue;
		}
		if (s != 0 || !c->busy || c->fixing) {
			/* nothing tern can match it to: the device is broken; the
			 * guest is answered rather than left waiting */
			pr_warn("%s: the device's control queue returned a command it was not given", c->dev->name);
			c->owed = 0;
			c->fixing = false;
			if (c->busy) {
				c->busy = false;
				answer(c, CVQ_ERR);
			}
			return;
		}
		uint8_t ack = slot(c, 0)[ACK_OFF];
		if (ack == CVQ_OK) {
			c->rec = c->trial; /* only what the device acknowledged */
			if (slot(c, 0)[0] == CVQ_RX && slot(c, 0)[1] < 3) /* the guest's own word on the mode */
				c->folded &= (uint8_t)~(1u << slot(c, 0)[1]);
			if (fold_fixup(c))
				continue;
		} else {
			c->nacked++;
		}
		c->busy = false;
		answer(c, ack == CVQ_OK ? CVQ_OK : CVQ_ERR);
	}
}

static void *cvq_thread(void *arg)
{
	struct cvq_shadow *c = arg;

	sandbox_enter_thread(c->sandbox, SANDBOX_DEVICE, "net-ctrl");
	for (;;) {
		struct pollfd p[3] = { { c->stop_fd, POLLIN, 0 }, { c->guest_kick, POLLIN, 0 }, { c->dev_call, POLLIN, 0 } };
		if (poll(p, 3, -1) < 0 && errno != EINTR)
			break;
		if (p[0].revents)
			break;
		pthread_mutex_lock(&c->lock);
		if (p[1].revents)
			eventfd_drain(c->guest_kick, "control queue");
		if (p[2].revents)
			eventfd_drain(c->dev_call, "control queue");
		/* paused: the work waits (cvq_shadow_pause() wakes us after) */
		if (!c->paused) {
			device_answers(c);
			guest_commands(c);
		}
		pthread_mutex_unlock(&c->lock);
	}
	return NULL;
}

int cvq_shadow_start(struct cvq_shadow *c, int guest_kick, int guest_call, struct err *e)
{
	int r;

	c->guest_kick = guest_kick;
	c->guest_call = guest_call;
	r = pthread_create(&c->thread, NULL, cvq_thread, c);
	if (r)
		return err_errno(e, -r, "%s: cannot start the control queue's thread", c->dev->name);
	c->running = true;
	eventfd_signal(c->guest_kick, "control queue"); /* commands made available before now */
	return 0;
}

void cvq_shadow_exit(struct cvq_shadow *c)
{
	if (c->running) {
		eventfd_signal(c->stop_fd, "control queue");
		pthread_join(c->thread, NULL);
		c->running = false;
	}
	if (c->dev_kick >= 0)
		close(c->dev_kick);
	if (c->dev_call >= 0)
		close(c->dev_call);
	if (c->stop_fd >= 0)
		close(c->stop_fd);
	c->dev_kick = c->dev_call = c->stop_fd = -1;
}

void cvq_shadow_pause(struct cvq_shadow *c, bool paused)
{
	pthread_mutex_lock(&c->lock);
	c->paused = paused;
	pthread_mutex_unlock(&c->lock);
	if (!paused)
		eventfd_signal(c->guest_kick, "control queue"); /* what arrived meanwhile */
}

uint16_t cvq_shadow_guest_base(struct cvq_shadow *c)
{
	pthread_mutex_lock(&c->lock);
	uint16_t b = c->guest.used_idx;
	pthread_mutex_unlock(&c->lock);
	return b;
}

void cvq_shadow_record(struct cvq_shadow *c, struct net_ctrl_state *out)
{
	pthread_mutex_lock(&c->lock);
	*out = c->rec;
	pthread_mutex_unlock(&c->lock);
}

/* ---- replay --------------------------------------------------------------- */

/* MAC, table, six modes, 4096 VLANs, pairs or RSS, hash, offloads */
#define REPLAY_MAX (2 + 6 + 4096 + 3)

struct replay_cmd {
	uint8_t b[2 + 8 + 2 * (4 + 64 * 6)];
	size_t len;
	char what[40];
};

static void put_cmd(struct replay_cmd *list, unsigned *n, uint8_t cls, uint8_t cmd, const void *data, size_t len,
		    const char *what)
{
	struct replay_cmd *x = &list[(*n)++];

	x->b[0] = cls;
	x->b[1] = cmd;
	memcpy(x->b + 2, data, len);
	x->len = 2 + len;
	snprintf(x->what, sizeof(x->what), "%s", what);
}

static bool has(uint64_t f, unsigned bit)
{
	return f & (1ull << bit);
}

/* The RX modes (bit m: mode m, PROMISC .. ALLUNI) a device is told to turn
 * on beyond want's, to pass what a table tern could not hold would have
 * passed, as on a device that fell back: ALLUNI for unicast (PROMISC
 * without CTRL_RX_EXTRA, which has no ALLUNI), ALLMULTI for multicast. The
 * record keeps the guest's own modes and the overflow; the shadow turns a
 * folded mode off again once the guest's tables fit (fold_fixup()). */
static uint8_t replay_fold(const struct cvq_shadow *c, const struct net_ctrl_state *want)
{
	bool extra = c->features & (1ull << VNET_F_CTRL_RX_EXTRA);
	uint8_t f = 0;

	if (want->uni_overflow)
		f |= extra ? 1u << CVQ_RX_ALLUNI : 1u << CVQ_RX_PROMISC;
	if (want->multi_overflow)
		f |= 1u << CVQ_RX_ALLMULTI;
	const bool on[3] = { want->promisc, want->allmulti, want->alluni };
	for (unsigned m = 0; m < 3; m++)
		if (on[m])
			f &= (uint8_t)~(1u << m);
	return f;
}

/* The commands that take a device from its defaults to want. */
static unsigned replay_list(const struct cvq_shadow *c, const struct net_ctrl_state *want, struct replay_cmd *list)
{
	struct net_ctrl_state def;
	uint64_t f = c->features;
	unsigned n = 0;

	cvq_state_reset(&def, c->default_mac, f);
	if (has(f, VNET_F_CTRL_MAC_ADDR) && memcmp(want->mac, def.mac, 6))
		put_cmd(list, &n, CVQ_MAC, CVQ_MAC_ADDR_SET, want->mac, 6, "MAC_ADDR_SET");
	if (has(f, VNET_F_CTRL_RX) && (want->uni_count || want->multi_count)) {
		uint8_t t[2 * (4 + 64 * 6)];
		size_t off = 0;
		uint32_t nu = want->uni_count, nm = want->multi_count;
		memcpy(t + off, &nu, 4);
		memcpy(t + off + 4, want->uni, (size_t)nu * 6);
		off += 4 + (size_t)nu * 6;
		memcpy(t + off, &nm, 4);
		memcpy(t + off + 4, want->multi, (size_t)nm * 6);
		off += 4 + (size_t)nm * 6;
		put_cmd(list, &n, CVQ_MAC, CVQ_MAC_TABLE_SET, t, off, "MAC_TABLE_SET");
	}
	bool extra = has(f, VNET_F_CTRL_RX_EXTRA);
	uint8_t fold = replay_fold(c, want);
	const bool modes[6] = { want->promisc || (fold & 1), want->allmulti || (fold & 2), want->alluni || (fold & 4),
				want->nomulti, want->nouni, want->nobcast };
	const bool defs[6] = { def.promisc, def.allmulti, def.alluni, def.nomulti, def.nouni, def.nobcast };
	static const char *const names[6] = { "RX_PROMISC", "RX_ALLMULTI", "RX_ALLUNI", "RX_NOMULTI", "RX_NOUNI",
					      "RX_NOBCAST" };
	for (unsigned m = 0; has(f, VNET_F_CTRL_RX) && m < 6; m++) {
		if (m >= CVQ_RX_ALLUNI && !extra)
			break;
		if (modes[m] != defs[m]) {
			uint8_t on = modes[m];
			put_cmd(list, &n, CVQ_RX, (uint8_t)m, &on, 1, names[m]);
		}
	}
	for (unsigned vid = 0; has(f, VNET_F_CTRL_VLAN) && vid < 4096; vid++)
		if (want->vlans[vid / 64] & (1ull << (vid % 64))) {
			uint16_t v = (uint16_t)vid;
			char w[40];
			snprintf(w, sizeof(w), "VLAN_ADD %u", vid);
			put_cmd(list, &n, CVQ_VLAN, CVQ_VLAN_ADD, &v, 2, w);
		}
	/* RSS_CONFIG carries the pair count too (max_tx_vq), so with
	 * steering on it stands for VQ_PAIRS_SET */
	const struct cvq_rss *rss = &want->rss;
	if (rss->mode == CVQ_RSS_STEER) {
		uint8_t b[8 + 2 * CVQ_RSS_TABLE_MAX + 3 + CVQ_RSS_KEY_MAX];
		uint16_t mask = (uint16_t)(rss->table_len - 1);
		size_t t = 8 + 2u * rss->table_len;
		memcpy(b, &rss->hash_types, 4);
		memcpy(b + 4, &mask, 2);
		memcpy(b + 6, &rss->unclassified, 2);
		memcpy(b + 8, rss->table, 2u * rss->table_len);
		memcpy(b + t, &want->pairs, 2);
		b[t + 2] = rss->key_len;
		memcpy(b + t + 3, rss->key, rss->key_len);
		put_cmd(list, &n, CVQ_MQ, CVQ_MQ_RSS_CONFIG, b, t + 3 + rss->key_len, "MQ_RSS_CONFIG");
	} else if (has(f, VNET_F_MQ) && want->pairs != def.pairs) {
		put_cmd(list, &n, CVQ_MQ, CVQ_MQ_VQ_PAIRS_SET, &want->pairs, 2, "MQ_VQ_PAIRS_SET");
	}
	if (rss->mode == CVQ_RSS_HASH) {
		uint8_t b[13 + CVQ_RSS_KEY_MAX] = { 0 };
		memcpy(b, &rss->hash_types, 4);
		b[12] = rss->key_len;
		memcpy(b + 13, rss->key, rss->key_len);
		put_cmd(list, &n, CVQ_MQ, CVQ_MQ_HASH_CONFIG, b, 13u + rss->key_len, "MQ_HASH_CONFIG");
	}
	if (has(f, VNET_F_CTRL_GUEST_OFFLOADS) && want->offloads != def.offloads)
		put_cmd(list, &n, CVQ_GUEST_OFFLOADS, CVQ_GUEST_OFFLOADS_SET, &want->offloads, 8, "GUEST_OFFLOADS_SET");
	return n;
}

/* Lock held. Waits for the device's answers to the commands in slots
 * [0, n) (list[first ..]), applying each one it acknowledged to *applied:
 * what the device holds. A NACK does not stop the wait (the rest of the
 * batch is the device's until answered): the first is reported after.
 * Silence leaves the unanswered slots owed (struct cvq_shadow). */
static int collect(struct cvq_shadow *c, const struct replay_cmd *list, unsigned first, unsigned n,
		   struct net_ctrl_state *applied, struct err *e)
{
	uint32_t pending = n >= 32 ? ~0u : (1u << n) - 1;
	int nack = -1;

	while (pending) {
		int s = take_used(c, n);
		if (s == -1) {
			/* With EVENT_IDX, used_event still names the first answer
			 * of this batch: a device that answers the rest in a
			 * later round would not call. Ask for the next one, then
			 * look again, in case it came before the device saw the
			 * store (the fence orders the store before the load). */
			__atomic_store_n(&avail(c)[2 + CVQS_NUM], c->last_used, __ATOMIC_RELAXED);
			__atomic_thread_fence(__ATOMIC_SEQ_CST);
			s = take_used(c, n);
		}
		if (s == -1) {
			struct pollfd p = { c->dev_call, POLLIN, 0 };
			if (poll(&p, 1, (int)c->timeout_ms) == 0) {
				c->owed = pending;
				for (unsigned i = 0; i < n; i++)
					c->owed_len[i] = (uint16_t)list[first + i].len;
				return err_set(e, -ETIMEDOUT, "%s: the device did not answer the replayed %s in %u ms",
					       c->dev->name, list[first + (unsigned)__builtin_ctz(pending)].what,
					       c->timeout_ms);
			}
			eventfd_drain(c->dev_call, "control queue");
			continue;
		}
		if (s < 0 || !(pending & (1u << s)))
			return err_set(e, -EPROTO, "%s: the device's control queue returned a command it was not given",
				       c->dev->name);
		pending &= ~(1u << s);
		if (slot(c, (unsigned)s)[ACK_OFF] == CVQ_OK)
			cvq_apply(applied, &c->lim, c->features, list[first + (unsigned)s].b, list[first + (unsigned)s].len);
		else if (nack < 0)
			nack = s;
	}
	if (nack >= 0)
		return err_set(e, -EPROTO, "%s: the device refused the replayed %s (ack %u)", c->dev->name,
			       list[first + (unsigned)nack].what, slot(c, (unsigned)nack)[ACK_OFF]);
	return 0;
}

/* Lock held. Commands were on the device when tern reset it (a guest's, or
 * replayed ones it owed). The device restarted at the shadow ring's used
 * index, so it takes them again from the ring: their answers go to the
 * guest (who would otherwise wait for ever) and, if OK, into the record,
 * before anything is replayed after them. If the device stays silent they
 * stay on it, and nothing is replayed: the device, stuck on them, would
 * not take more, and a new command in their slots would be matched to
 * their answers. */
static int settle(struct cvq_shadow *c, struct err *e)
{
	eventfd_signal(c->dev_kick, "control queue");
	for (;;) {
		device_answers(c);
		if (!c->busy && !c->owed)
			return 0;
		struct pollfd p = { c->dev_call, POLLIN, 0 };
		if (poll(&p, 1, (int)c->timeout_ms) == 0)
			return err_set(e, -ETIMEDOUT, "%s: the device did not answer the control command%s it had "
						      "when reset, in %u ms", c->dev->name, c->busy ? " of the guest" : "s replayed",
				       c->timeout_ms);
		eventfd_drain(c->dev_call, "control queue");
	}
}

int cvq_shadow_replay(struct cvq_shadow *c, const struct net_ctrl_state *want, bool pipelined, unsigned *sent,
		      struct err *e)
{
	struct replay_cmd *list = calloc(REPLAY_MAX, sizeof(*list));
	unsigned n, per = pipelined ? CVQS_SLOTS : 1;
	int r = 0;

	*sent = 0;
	if (!list)
		return err_set(e, -ENOMEM, "out of memory for the control-queue replay");
	/* the thread, if it runs, waits: the ring is this call's meanwhile */
	pthread_mutex_lock(&c->lock);
	if (c->busy && want) {
		pthread_mutex_unlock(&c->lock);
		free(list);
		return err_set(e, -EBUSY, "%s: a guest control command is in flight", c->dev->name);
	}
	if ((c->busy || c->owed) && (r = settle(c, e)) < 0) {
		pthread_mutex_unlock(&c->lock);
		free(list);
		return r;
	}
	if (!want)
		want = &c->rec;
	n = replay_list(c, want, list);

	/* The device starts from its defaults; what it acknowledges builds
	 * up what it holds, which is the record whatever happens. */
	struct net_ctrl_state applied;
	uint8_t fold = replay_fold(c, want);
	cvq_state_reset(&applied, c->default_mac, c->features);
	for (unsigned first = 0; r == 0 && first < n; first += per) {
		unsigned k = n - first < per ? n - first : per;
		for (unsigned s = 0; s < k; s++) {
			memcpy(slot(c, s), list[first + s].b, list[first + s].len);
			place(c, s, list[first + s].len);
		}
		eventfd_signal(c->dev_kick, "control queue");
		*sent += k;
		r = collect(c, list, first, k, &applied, e);
	}
	/* on success the device holds want (and the folded modes); else
	 * exactly what it said OK to, the folded modes among them as modes */
	c->rec = r == 0 ? *want : applied;
	c->folded = r == 0 ? fold : 0;
	pthread_mutex_unlock(&c->lock);
	free(list);
	return r;
}

/* ---- the record's travelling form ----------------------------------------- */

void cvq_record_pack(const struct net_ctrl_state *s, struct cvq_record *r)
{
	const bool modes[6] = { s->promisc, s->allmulti, s->alluni, s->nomulti, s->nouni, s->nobcast };

	memset(r, 0, sizeof(*r));
	memcpy(r->mac, s->mac, 6);
	for (unsigned m = 0; m < 6; m++)
		r->rx |= (uint8_t)(modes[m] << m);
	r->overflow = (uint8_t)(s->uni_overflow | (s->multi_overflow << 1));
	r->uni_count = (uint16_t)s->uni_count;
	r->multi_count = (uint16_t)s->multi_count;
	r->pairs = s->pairs;
	r->offloads = s->offloads;
	memcpy(r->uni, s->uni, sizeof(r->uni));
	memcpy(r->multi, s->multi, sizeof(r->multi));
	memcpy(r->vlans, s->vlans, sizeof(r->vlans));
}

/* RSS state: what the command that set it would have had to pass
 * (cvq.c's rss_config() and hash_config() rules). */
static int rss_unpack(const struct cvq_rss *r, uint64_t features, const struct cvq_limits *lim, struct err *e)
{
	bool steer = r->mode == CVQ_RSS_STEER, hash = r->mode == CVQ_RSS_HASH;
	uint32_t n = r->table_len;

	if (r->mode == CVQ_RSS_OFF)
		return 0;
	if ((steer && !(features & (1ull << VNET_F_RSS))) || (hash && !(features & (1ull << VNET_F_HASH_REPORT))) ||
	    (!steer && !hash))
		return err_set(e, -EPROTO, "control-queue state: RSS mode %u without its feature", r->mode);
	if (r->rsvd || (r->hash_types & ~lim->hash_types) || r->key_len > lim->rss_key_max ||
	    r->key_len > CVQ_RSS_KEY_MAX || (!r->key_len && r->hash_types) || (!r->key_len && !r->hash_types))
		return err_set(e, -EPROTO, "control-queue state: RSS hash types 0x%x or key length %u not possible here",
			       r->hash_types, r->key_len);
	for (unsigned i = r->key_len; i < CVQ_RSS_KEY_MAX; i++)
		if (r->key[i])
			return err_set(e, -EPROTO, "control-queue state: RSS key padding not zero");
	if (hash) {
		if (r->table_len || r->unclassified)
			return err_set(e, -EPROTO, "control-queue state: hash-only RSS with a table");
		for (unsigned i = 0; i < CVQ_RSS_TABLE_MAX; i++)
			if (r->table[i])
				return err_set(e, -EPROTO, "control-queue state: hash-only RSS with a table");
		return 0;
	}
	if (!n || (n & (n - 1)) || n > lim->rss_table_max || n > CVQ_RSS_TABLE_MAX || r->unclassified >= lim->max_pairs)
		return err_set(e, -EPROTO, "control-queue state: RSS table of %u entries (device %u), unclassified "
					   "queue %u", n, lim->rss_table_max, r->unclassified);
	for (unsigned i = 0; i < CVQ_RSS_TABLE_MAX; i++)
		if (i < n ? r->table[i] >= lim->max_pairs : r->table[i] != 0)
			return err_set(e, -EPROTO, "control-queue state: RSS table entry %u is queue %u of %u", i,
				       r->table[i], lim->max_pairs);
	return 0;
}

int cvq_record_unpack(const struct cvq_record *r, const struct cvq_rss *rss, uint64_t features,
		      const struct cvq_limits *lim, struct net_ctrl_state *s, struct err *e)
{
	uint16_t max_pairs = lim->max_pairs;

	if ((r->rx & ~0x3fu) || (r->overflow & ~3u) || r->rsvd0 || r->uni_count > 64 || r->multi_count > 64 ||
	    !r->pairs || r->pairs > max_pairs || (r->mac[0] & 1))
		return err_set(e, -EPROTO, "control-queue state out of range (counts %u/%u, pairs %u of %u, flags "
					   "0x%x/0x%x)", r->uni_count, r->multi_count, r->pairs, max_pairs, r->rx,
			       r->overflow);
	for (unsigned i = 0; i < r->uni_count; i++)
		if (r->uni[i][0] & 1)
			return err_set(e, -EPROTO, "control-queue state: multicast address in the unicast table");
	for (unsigned i = 0; i < r->multi_count; i++)
		if (!(r->multi[i][0] & 1))
			return err_set(e, -EPROTO, "control-queue state: unicast address in the multicast table");
	if (r->offloads & ~(features & CVQ_GUEST_OFFLOADS_MASK))
		return err_set(e, -EPROTO, "control-queue state: offloads 0x%llx were not negotiated",
			       (unsigned long long)r->offloads);
	cvq_state_reset(s, r->mac, features);
	bool *modes[6] = { &s->promisc, &s->allmulti, &s->alluni, &s->nomulti, &s->nouni, &s->nobcast };
	for (unsigned m = 0; m < 6; m++)
		*modes[m] = (r->rx >> m) & 1;
	s->uni_overflow = r->overflow & 1;
	s->multi_overflow = (r->overflow >> 1) & 1;
	s->uni_count = r->uni_count;
	s->multi_count = r->multi_count;
	memcpy(s->uni, r->uni, (size_t)r->uni_count * 6);
	memcpy(s->multi, r->multi, (size_t)r->multi_count * 6);
	memcpy(s->vlans, r->vlans, sizeof(s->vlans));
	s->pairs = r->pairs;
	s->offloads = r->offloads;
	if (rss) {
		int err = rss_unpack(rss, features, lim, e);
		if (err < 0)
			return err;
		s->rss = *rss;
	}
	return 0;
}

int cvq_shadow_setup(struct cvq_shadow *c, struct shadow *sh, unsigned idx, uint64_t features, const uint8_t mac[6],
		     const struct vring_dev *guest, unsigned *asid, struct err *e)
{
	struct cvq_limits lim;
	struct vdpa_vring_addr a;
	unsigned group = 0;
	uint16_t num;
	uint64_t iova;
	void *mem;
	int r;

	int g = sh->dev->ops->get_vring_group(sh->dev, idx, &group) == 0 ? (int)group : -1;
	if ((r = shadow_own_map(sh, CVQS_SIZE, g, &mem, &iova, asid, e)) < 0)
		return r;
	cvq_limits_read(sh->dev, features, &lim);
	if ((r = cvq_shadow_init(c, sh->dev, idx, features, &lim, mac, guest, &sh->ram, mem, iova, e)) < 0)
		return r;
	c->log = &sh->log;
	c->sandbox = sh->sandbox;
	c->log_lock = &sh->log_lock;
	cvq_shadow_addrs(c, &a, &num);
	shadow_set_queue(sh, idx, false, num, &a, c->dev_kick, c->dev_call);
	shadow_set_own_ring(sh, idx, cvq_shadow_used_idx(c));
	return 0;
}
