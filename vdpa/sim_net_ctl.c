/* SPDX-License-Identifier: MIT */
/*
 * vdpa/sim_net_ctl.c - the software vDPA net device's control path: the
 * vdpa_ops table (vdpa/vdpa.h), creation, statistics and the device-cost
 * model (docs/net.md). Its data path is sim_net.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vdpa/sim_net_priv.h"

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

/* Lock held. Returns the bytes it unmapped (their unpinning costs). */
static uint64_t sim_reset(struct sim_net *s)
{
	uint64_t unmapped = 0;

	s->status = 0;
	s->features = 0;
	s->suspended = false;
	s->rx_held = s->tx_held = false;
	for (unsigned i = 0; i < s->nvqs; i++) {
		struct sim_vq *q = &s->vq[i];
		q->ready = q->attached = false;
		q->starved = true; /* strict: waits for its first kick */
		q->ring = (struct vring_dev){ .num = QUEUE_MAX };
	}
	sim_forget_kicks(s);
	for (unsigned g = 0; g < NR_GROUPS; g++)
		s->group_asid[g] = 0;
	/* mappings survive reset only with IOTLB_PERSIST */
	if (!(s->backend & (1ull << VDPA_BF_IOTLB_PERSIST)))
		for (unsigned a = 0; a < NR_AS; a++) {
			for (unsigned i = 0; i < s->tlb[a].nr; i++)
				unmapped += s->tlb[a].entries[i].size;
			iotlb_clear(&s->tlb[a]);
		}
	cvq_state_reset(&s->ctrl, s->cfg.mac, 0);
	return unmapped;
}

static int sim_set_status(struct vdpa_dev *d, uint8_t st)
{
	struct sim_net *s = to_sim(d);
	int r = 0;

	uint64_t delay = 0;

	pthread_mutex_lock(&s->lock);
	if (st == 0) {
		delay = s->cfg.cost.reset_ns + sim_per_gib(s->cfg.cost.unpin_ns_per_gib, sim_reset(s));
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
	sim_cost_delay(s, delay);
	sim_wake(s);
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
	sim_wake(s);
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
	sim_wake(s);
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

/* The ASID an IOTLB message reaches, under the kernel's rules
 * (drivers/vhost/vhost.c vhost_chr_write_iter, drivers/vhost/vdpa.c
 * vhost_vdpa_process_iotlb_msg): a v1 message has no ASID field and goes
 * to ASID 0; inside a batch any other ASID than the batch's is refused. */
static int sim_msg_asid(const struct sim_net *s, unsigned *asid)
{
	if (!(s->backend & (1ull << VDPA_BF_IOTLB_MSG_V2)))
		*asid = 0;
	if (*asid >= NR_AS || (s->in_batch && s->batch_asid != *asid))
		return -EINVAL;
	return 0;
}

static int sim_iotlb_update(struct vdpa_dev *d, unsigned asid, uint64_t iova, uint64_t size, void *hva,
			    unsigned perm)
{
	struct sim_net *s = to_sim(d);
	int r;

	if (sim_msg_asid(s, &asid) < 0 || iova + size - 1 > (1ull << 48) - 1)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	r = iotlb_map(&s->tlb[asid], iova, size, hva, perm);
	for (unsigned i = 0; i < s->nvqs; i++)
		s->vq[i].attached = false; /* re-resolve ring pointers */
	pthread_mutex_unlock(&s->lock);
	if (!r)
		sim_cost_delay(s, s->cfg.cost.map_entry_ns + sim_per_gib(s->cfg.cost.pin_ns_per_gib, size));
	return r;
}

static int sim_iotlb_invalidate(struct vdpa_dev *d, unsigned asid, uint64_t iova, uint64_t size)
{
	struct sim_net *s = to_sim(d);
	int r;

	if (sim_msg_asid(s, &asid) < 0)
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
		sim_cost_delay(s, s->cfg.cost.map_entry_ns + sim_per_gib(s->cfg.cost.unpin_ns_per_gib, mapped));
	return r;
}

/* Updates apply at once (batching only saves round trips), but a batch
 * holds the kernel's rule: one ASID from its begin to its end. */
static int sim_batch_begin(struct vdpa_dev *d, unsigned asid)
{
	struct sim_net *s = to_sim(d);

	if (sim_msg_asid(s, &asid) < 0)
		return -EINVAL;
	s->in_batch = true;
	s->batch_asid = asid;
	return 0;
}

static int sim_batch_end(struct vdpa_dev *d, unsigned asid)
{
	struct sim_net *s = to_sim(d);

	if (sim_msg_asid(s, &asid) < 0)
		return -EINVAL;
	s->in_batch = false;
	return 0;
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
	sim_cost_delay(s, s->cfg.cost.suspend_ns);
	return 0;
}

static int sim_resume(struct vdpa_dev *d)
{
	struct sim_net *s = to_sim(d);

	if (!(s->backend_offered & (1ull << VDPA_BF_RESUME)))
		return -EOPNOTSUPP;
	sim_cost_delay(s, s->cfg.cost.resume_ns); /* still suspended while it costs */
	pthread_mutex_lock(&s->lock);
	s->suspended = false;
	for (unsigned i = 0; i < s->nvqs; i++)
		s->vq[i].attached = false;
	sim_forget_kicks(s); /* those that came while suspended */
	pthread_mutex_unlock(&s->lock);
	sim_wake(s);
	return 0;
}

static void sim_destroy(struct vdpa_dev *d)
{
	struct sim_net *s = to_sim(d);

	if (s->thread_started) {
		pthread_mutex_lock(&s->lock);
		s->stop = true;
		pthread_mutex_unlock(&s->lock);
		sim_wake(s);
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
	.iotlb_batch_begin = sim_batch_begin,
	.iotlb_batch_end = sim_batch_end,
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
	s->nack_at = cfg->nack_at;
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
			   (1ull << VNET_F_RSS) | (1ull << VNET_F_GUEST_CSUM) | (1ull << VNET_F_GUEST_USO4) | (1ull << VNET_F_GUEST_USO6) | (1ull << VIRTIO_F_EVENT_IDX) | (1ull << VIRTIO_F_RING_INDIRECT_DESC) |
			   (cfg->max_pairs > 1 ? 1ull << VNET_F_MQ : 0)) &
			  ~cfg->features_off;
	if (cfg->hash_report)
		s->dev_features |= (1ull << VNET_F_HASH_REPORT) & ~cfg->features_off;
	if (!(s->dev_features & (1ull << VNET_F_CTRL_VQ))) /* both are configured through it */
		s->dev_features &= ~((1ull << VNET_F_RSS) | (1ull << VNET_F_HASH_REPORT));
	s->backend_offered = ((1ull << VDPA_BF_IOTLB_MSG_V2) | (1ull << VDPA_BF_IOTLB_BATCH) |
			      (1ull << VDPA_BF_IOTLB_ASID) | (1ull << VDPA_BF_SUSPEND) | (1ull << VDPA_BF_RESUME) |
			      (1ull << VDPA_BF_ENABLE_AFTER_DRIVER_OK) | (1ull << VDPA_BF_IOTLB_PERSIST) |
			      (1ull << VDPA_BF_DESC_ASID)) &
			     ~cfg->backend_off;
	s->nvqs = 2u * cfg->max_pairs + (has_cvq(s) ? 1 : 0);
	s->lim = (struct cvq_limits){ .mac_table_max = cfg->mac_table_max ? cfg->mac_table_max : 32,
				      .max_pairs = cfg->max_pairs, .rss_key_max = CVQ_RSS_KEY_MAX,
				      .rss_table_max = CVQ_RSS_TABLE_MAX,
				      .hash_types = CVQ_HASH_IPV4 | CVQ_HASH_TCPV4 | CVQ_HASH_UDPV4 };
	memcpy(s->config, cfg->mac, 6);
	s->config[6] = 1; /* status: link up */
	s->config[8] = (uint8_t)cfg->max_pairs;
	s->config[9] = (uint8_t)(cfg->max_pairs >> 8);
	s->config[10] = (uint8_t)cfg->mtu;
	s->config[11] = (uint8_t)(cfg->mtu >> 8);
	s->config[17] = s->lim.rss_key_max;
	s->config[18] = (uint8_t)s->lim.rss_table_max;
	s->config[19] = (uint8_t)(s->lim.rss_table_max >> 8);
	s->config[20] = (uint8_t)s->lim.hash_types;
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
	st->iotlb_entries = 0;
	for (unsigned a = 0; a < NR_AS; a++)
		st->iotlb_entries += s->tlb[a].nr;
	pthread_mutex_unlock(&s->lock);
}

bool sim_net_get_ctrl(struct vdpa_dev *d, struct net_ctrl_state *out)
{
	struct sim_net *s = to_sim(d);

	pthread_mutex_lock(&s->lock);
	*out = s->ctrl;
	bool live = (s->status & VIRTIO_S_FEATURES_OK) && neg(s, VNET_F_CTRL_VQ);
	pthread_mutex_unlock(&s->lock);
	return live;
}

void sim_net_set_cost(struct vdpa_dev *d, const struct sim_net_cost *c)
{
	struct sim_net *s = to_sim(d);

	pthread_mutex_lock(&s->lock);
	s->cfg.cost = *c;
	pthread_mutex_unlock(&s->lock);
}

void sim_net_clear_gap(struct vdpa_dev *d)
{
	struct sim_net *s = to_sim(d);

	pthread_mutex_lock(&s->lock);
	s->stats.max_gap_ns = 0; /* last_used_ns stays: the pause that spans the call counts */
	pthread_mutex_unlock(&s->lock);
}

int sim_net_wire_send(struct vdpa_dev *d, const void *frame, size_t len)
{
	/* a send on the wire's fd needs no lock: the device thread only
	 * sends on it too, and one send() is one frame */
	return wire_send(&to_sim(d)->wire, frame, len);
}
