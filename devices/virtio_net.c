/* SPDX-License-Identifier: MIT */
/*
 * devices/virtio_net.c - the virtio-net front end on a vDPA backend. The
 * bring-up follows Linux's vhost-vdpa order: features with
 * ACCESS_PLATFORM towards the device (never towards the guest, which has no
 * IOMMU), guest RAM mapped at IOVA = GPA, queues configured and enabled
 * before DRIVER_OK.
 */
#include "devices/virtio_net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/device.h"
#include "devices/virtio_net_priv.h"
#include "vdpa/fault_vdpa.h"
#include "vdpa/cvq.h"
#include "vdpa/sim_net.h"
#include "vdpa/vhost_vdpa.h"
#include "vmm/vm.h"

/* Config space: through mtu, or through supported_hash_types when the
 * device has RSS or HASH_REPORT (virtio 1.2 5.1.4). */
#define RSS_FEATURES (VIRTIO_BIT(VNET_F_RSS) | VIRTIO_BIT(VNET_F_HASH_REPORT))

struct net_dev *to_net(struct virtio_pci *vp)
{
	return container_of(vp, struct net_dev, vp);
}

static void net_config_read(struct virtio_pci *vp, unsigned off, void *buf, unsigned len)
{
	struct net_dev *n = to_net(vp);
	unsigned size = (n->offered & RSS_FEATURES) ? VNET_CFG_LEN_RSS : VNET_CFG_LEN_BASE;
	uint8_t cfg[VNET_CFG_LEN_RSS] = { 0 };

	memset(buf, 0, len);
	if (off < size) {
		n->vdpa->ops->get_config(n->vdpa, 0, cfg, size);
		if (size == VNET_CFG_LEN_RSS) {
			/* the guest sizes its RSS key and table from these: no
			 * more than tern records and replays (vdpa/cvq.h) */
			uint8_t *key = &cfg[VNET_CFG_RSS_MAX_KEY], *table = &cfg[VNET_CFG_RSS_MAX_TABLE];
			uint16_t t = (uint16_t)(table[0] | (table[1] << 8));
			*key = *key < CVQ_RSS_KEY_MAX ? *key : CVQ_RSS_KEY_MAX;
			t = t < CVQ_RSS_TABLE_MAX ? t : CVQ_RSS_TABLE_MAX;
			table[0] = (uint8_t)t;
			table[1] = (uint8_t)(t >> 8);
		}
		memcpy(buf, cfg + off, len < size - off ? len : size - off);
	}
	net_announce_config(&n->announce, off, buf, len);
}

/* The control queue's index, if the driver negotiated one: the device's
 * queues are 2 * max_virtqueue_pairs + 1. */
static int cvq_index(const struct virtio_pci *vp)
{
	uint64_t f = vp->driver_features;

	if (!(f & (1ull << VNET_F_CTRL_VQ)))
		return -1;
	return (int)cvq_queue_index(f, (uint16_t)((vp->nqueues - 1) / 2));
}

static void net_config_write(struct virtio_pci *vp, unsigned off, const void *buf, unsigned len)
{
	/* virtio 1.x net config is read-only to the driver */
	(void)vp, (void)off, (void)buf, (void)len;
}

int net_features_ok(struct virtio_pci *vp)
{
	struct net_dev *n = to_net(vp);
	const struct vdpa_ops *o = n->vdpa->ops;
	uint64_t f = vp->driver_features, dev;

	if ((f & ~n->offered) || !(f & (1ull << VIRTIO_F_VERSION_1)))
		return -EINVAL;
	o->get_features(n->vdpa, &dev);
	f |= dev & (1ull << VIRTIO_F_ACCESS_PLATFORM);
	return shadow_set_features(&n->sh, f) < 0 ? -EINVAL : 0;
}

/* A switch or a freeze reset the device: the control state the guest set
 * goes back to it (docs/net.md). */
static void net_restarted(void *opaque)
{
	struct net_dev *n = opaque;
	struct err e = { { 0 } };
	unsigned sent = 0;

	if (!n->cvq_live)
		return;
	if (cvq_shadow_replay(&n->cvq, NULL, true, &sent, &e) < 0)
		pr_warn("%s: after a reset, the control state could not be replayed: %s", n->vdpa->name, e.msg);
	else
		pr_info("%s: after a reset, control state replayed: %u commands", n->vdpa->name, sent);
}

static void cvq_stop(struct net_dev *n)
{
	if (!n->cvq_live)
		return;
	cvq_shadow_exit(&n->cvq);
	n->cvq_live = false;
	n->announce.shadowed = false;
}

/* The guest's control queue q (at base) gets a shadow: tern's ring, in
 * ASID 1 when the device isolates the control queue's group. */
static int cvq_setup(struct net_dev *n, unsigned i, const struct virtio_pci_queue *q, uint16_t base, struct err *e)
{
	struct virtio_pci *vp = &n->vp;
	uint64_t f = vp->driver_features | (1ull << VIRTIO_F_ACCESS_PLATFORM);
	unsigned asid = 0;
	uint8_t mac[6];
	int r;

	n->vdpa->ops->get_config(n->vdpa, VNET_CFG_MAC, mac, 6);
	struct vring_dev g = { .num = q->size, .desc_iova = q->desc, .avail_iova = q->driver, .used_iova = q->device,
			       .last_avail = base, .used_idx = base, .event_idx = !!(f & VIRTIO_BIT(VIRTIO_F_EVENT_IDX)) };
	if ((r = cvq_shadow_setup(&n->cvq, &n->sh, i, f, mac, &g, &asid, e)) < 0)
		return r;
	if (!n->cvq_logged++)
		pr_info("%s: control queue shadowed by tern, %s", n->vdpa->name,
			asid ? "isolated in ASID 1 (its group is its own)"
			     : "in ASID 0's IOVA hole (the device cannot isolate its group)");
	n->cvq.announce_ack = net_announce_acked;
	n->cvq.opaque = &n->announce;
	n->cvq_live = true;
	n->announce.shadowed = true;
	return 0;
}

/* Configures and starts every enabled queue, each at bases[i] (0 without),
 * in passthrough, the control queue on its shadow; replays ctrl (when
 * given) before the data queues are enabled where the device allows
 * enabling after DRIVER_OK; then, with svq=on, moves the data queues to
 * SVQ. */
int net_start_ctrl(struct virtio_pci *vp, const uint16_t *bases, const struct net_ctrl_state *ctrl,
		   struct err *e)
{
	struct net_dev *n = to_net(vp);
	int cvq = cvq_index(vp);
	uint16_t b[VPCI_MAX_QUEUES] = { 0 };
	int r = 0;

	for (unsigned i = 0; r == 0 && i < vp->nqueues; i++) {
		struct virtio_pci_queue *q = &vp->q[i];
		struct vdpa_vring_addr a = { q->desc, q->driver, q->device };
		if (!q->enabled)
			continue;
		b[i] = bases ? bases[i] : 0;
		if ((int)i == cvq) {
			r = cvq_setup(n, i, q, b[i], e);
			b[i] = 0; /* the device starts on a fresh shadow ring */
			continue;
		}
		shadow_set_queue(&n->sh, i, true, q->size, &a, q->kick_fd, q->call_fd);
	}
	shadow_set_config_call(&n->sh, vp->config_call_fd);
	bool late = ctrl && (n->backend_features & (1ull << VDPA_BF_ENABLE_AFTER_DRIVER_OK));
	n->sh.defer_data = late;
	if (!r && (r = shadow_start(&n->sh, b)) < 0)
		err_errno(e, r, "%s: cannot start the vDPA device", n->vdpa->name);
	n->sh.defer_data = false;
	if (!r && ctrl && n->cvq_live) {
		uint64_t t0 = now_ns();
		if (!late)
			pr_info("%s: no ENABLE_AFTER_DRIVER_OK: control state replayed with the data queues already "
				"enabled", n->vdpa->name);
		r = cvq_shadow_replay(&n->cvq, ctrl, !n->faults->replay_serial, &n->replayed, e);
		n->replay_ns = now_ns() - t0;
		if (!r)
			pr_info("%s: control state replayed: %u commands in %.2f ms", n->vdpa->name, n->replayed,
				(double)n->replay_ns / 1e6);
	}
	if (!r && late && (r = shadow_enable_data(&n->sh)) < 0)
		err_errno(e, r, "%s: enable the data queues", n->vdpa->name);
	if (!r && n->cvq_live)
		r = cvq_shadow_start(&n->cvq, vp->q[cvq].kick_fd, vp->q[cvq].call_fd, e);
	if (r < 0) {
		/* stopped before the shadow CVQ's memory goes away */
		cvq_stop(n);
		n->vdpa->ops->set_status(n->vdpa, 0);
		shadow_own_unmap_all(&n->sh);
		return r;
	}
	if (n->frozen_for_log) {
		/* svq=off: the driver reset and restarted the device that a
		 * migration froze; it runs, and nothing sees what it writes */
		n->frozen_for_log = false;
		__atomic_store_n(&n->unlogged, true, __ATOMIC_RELEASE);
		pr_warn("%s: restarted by its driver during a migration with svq=off: the migration will fail",
			n->vdpa->name);
	}
	/* svq=on, or a driver that reset and restarted the device while a
	 * migration tracks pages: its writes must reach the log */
	if (n->svq == NET_SVQ_ON || (n->tracking && n->svq == NET_SVQ_AUTO)) {
		struct err e2 = { { 0 } };
		if (net_switch(n, true, &e2) < 0) {
			pr_warn("%s: %s: %s", n->vdpa->name, n->tracking ? "during a migration" : "svq=on", e2.msg);
			if (n->tracking)
				__atomic_store_n(&n->unlogged, true, __ATOMIC_RELEASE);
		}
	}
	/* the rings may already hold buffers (loaded ones on a restore or a
	 * destination, or posted before DRIVER_OK) whose kick went to another
	 * device or came too early: one kick each, as QEMU gives when it starts
	 * a device's ioeventfds (virtio_device_start_ioeventfd_impl); after
	 * the switch, so that a relay takes them where one runs */
	shadow_kick_guest_rings(&n->sh);
	return 0;
}

static int net_start(struct virtio_pci *vp, const uint16_t *bases)
{
	struct err e = { { 0 } };
	int r = net_start_ctrl(vp, bases, NULL, &e);

	if (r < 0)
		pr_warn("%s", e.msg);
	return r;
}

static int net_driver_ok(struct virtio_pci *vp)
{
	return net_start(vp, NULL);
}

/* A shadowed queue broke (its guest or the device broke the ring rules)
 * and stopped: the driver is told as virtio 1.x 2.1.2 says, NEEDS_RESET
 * and a configuration change. The relay calls this: it must not wait for
 * vp.lock, whose holder may be stopping the relay. */
static void net_queue_broken(void *opaque, unsigned queue, int err)
{
	struct net_dev *n = opaque;

	(void)queue;
	(void)err;
	__atomic_store_n(&n->lost, true, __ATOMIC_RELEASE);
	virtio_pci_config_changed_async(&n->vp);
}

static void net_reset(struct virtio_pci *vp)
{
	struct net_dev *n = to_net(vp);

	net_announce_clear(&n->announce);
	cvq_stop(n);
	shadow_reset(&n->sh);
	shadow_own_unmap_all(&n->sh);
	/* the driver's reset is what NEEDS_RESET asked for */
	__atomic_store_n(&n->lost, false, __ATOMIC_RELEASE);
}

static uint8_t net_backend_status(struct virtio_pci *vp)
{
	struct net_dev *n = to_net(vp);
	uint8_t st = 0;

	n->vdpa->ops->get_status(n->vdpa, &st);
	return __atomic_load_n(&n->lost, __ATOMIC_ACQUIRE) ? (uint8_t)(st | VIRTIO_S_NEEDS_RESET) : st;
}

static const struct virtio_pci_ops net_vp_ops = {
	.config_read = net_config_read,
	.config_write = net_config_write,
	.features_ok = net_features_ok,
	.driver_ok = net_driver_ok,
	.reset = net_reset,
	.backend_status = net_backend_status,
};

/* queues=N against what a kernel device has: its pairs are fixed where it
 * was created, so a different count is refused rather than faked. */
static int check_pairs(struct net_dev *n, uint64_t f, unsigned want, struct err *e)
{
	uint16_t pairs = 1;

	if ((f & (1ull << VNET_F_MQ)) && n->vdpa->ops->get_config(n->vdpa, VNET_CFG_MAX_PAIRS, &pairs, 2) < 0)
		return err_set(e, -EIO, "%s: cannot read max_virtqueue_pairs", n->vdpa->name);
	if (!pairs)
		pairs = 1;
	if (want && want != pairs)
		return err_set(e, -EOPNOTSUPP, "%s has %u queue pair%s%s; queues=%u is not possible (the pairs are set "
					       "where the device is created)", n->vdpa->name, pairs, pairs == 1 ? "" : "s",
			       f & (1ull << VNET_F_MQ) ? "" : " (no VIRTIO_NET_F_MQ)", want);
	return 0;
}

static int net_create(struct vm *vm, unsigned idx, struct err *e)
{
	const struct net_config *c = &vm->cfg.net_cfgs[idx];
	struct net_dev *n;
	uint64_t bf = 0, f = 0;
	int r;

	struct sim_net_config sc = {
		.sandbox = &vm->cfg.sandbox,
		.max_pairs = (uint16_t)c->queues,
		.mtu = 1500,
		.features_off = c->features_off,
		.backend_off = c->backend_off,
		.socket_path = c->socket[0] ? c->socket : NULL,
		.peer_path = c->peer[0] ? c->peer : NULL,
		.tap = c->tap[0] ? c->tap : NULL,
		.hash_report = c->hash_report,
		.strict = c->strict,
		.nack_at = vm->cfg.faults.cvq_nack,
	};
	if (c->cost_mlx5)
		sim_net_cost_mlx5(&sc.cost);
	n = calloc(1, sizeof(*n));
	if (!n)
		return err_set(e, -ENOMEM, "out of memory for a network device");
	vm->nets[idx] = n;
	if (c->mac_set) {
		memcpy(sc.mac, c->mac, 6);
	} else {
		/* locally administered, stable per process and device */
		uint8_t mac[6] = { 0x52, 0x54, 0x00, (uint8_t)(getpid() >> 8), (uint8_t)getpid(), (uint8_t)idx };
		memcpy(sc.mac, mac, 6);
	}
	net_announce_init(&n->announce);
	n->is_sim = !c->kernel;
	n->vdpa = c->kernel ? vhost_vdpa_open(c->dev, e) : sim_net_create(&sc, e);
	if (!n->vdpa)
		return -EINVAL;
	if (n->vdpa->ops->device_id(n->vdpa) != VIRTIO_ID_NET)
		return err_set(e, -EINVAL, "%s is not a network device (virtio device id %u)", n->vdpa->name,
			       n->vdpa->ops->device_id(n->vdpa));
	if ((r = n->vdpa->ops->get_backend_features(n->vdpa, &bf)) < 0)
		return err_errno(e, r, "%s: backend features", n->vdpa->name);
	/* each used when offered; tern works without any of them */
	n->backend_features = shadow_backend_wanted(bf & ~(c->kernel ? c->backend_off : 0));
	r = n->vdpa->ops->set_backend_features(n->vdpa, n->backend_features);
	if (r < 0)
		return err_errno(e, r, "%s: set backend features 0x%llx", n->vdpa->name,
				 (unsigned long long)n->backend_features);
	if ((r = n->vdpa->ops->get_features(n->vdpa, &f)) < 0)
		return err_errno(e, r, "%s: features", n->vdpa->name);
	if (c->kernel)
		f &= ~c->features_off;
	if (!(f & (1ull << VIRTIO_F_VERSION_1)))
		return err_set(e, -EOPNOTSUPP, "%s does not offer VIRTIO_F_VERSION_1: tern drives modern devices only",
			       n->vdpa->name);
	if (c->kernel && (r = check_pairs(n, f, c->queues, e)) < 0)
		return r;
	n->offered = cvq_guest_features(f);
	n->svq = c->svq;
	/* a switch fault asked for (TERN_TEST_FAULTS): the shadow side drives
	 * the device through a wrapper that can fail its calls */
	n->faults = &vm->cfg.faults;
	if (n->faults->switch_dir != FAULT_SWITCH_NONE && !(n->faulty = fault_vdpa_wrap(n->vdpa, e)))
		return -ENOMEM;
	n->fault_at = n->faults->switch_at;
	r = shadow_init(&n->sh, n->faulty ? n->faulty : n->vdpa, n->backend_features, &vm->mem, n->vdpa->ops->vqs_count(n->vdpa), e);
	n->sh.sandbox = &vm->cfg.sandbox;
	if (r < 0)
		return r;
	n->sh_live = true;
	n->sh.on_restart = net_restarted;
	n->sh.on_restart_opaque = n;
	n->sh.on_queue_error = net_queue_broken;
	n->sh.on_queue_error_opaque = n;
	if (c->strategy && (r = shadow_force(&n->sh, c->strategy, e)) < 0)
		return r;
	r = virtio_pci_init(&n->vp, vm, &net_vp_ops, 1, n->offered, n->vdpa->ops->vqs_count(n->vdpa),
			    n->vdpa->ops->vring_num_max(n->vdpa), e);
	if (r < 0)
		return r;
	return virtio_pci_register(&n->vp, vm->pci, e);
}

static int net_dev_init(struct vm *vm, struct err *e)
{
	if (vm->cfg.nr_nets > VM_MAX_NETS)
		return err_set(e, -EINVAL, "at most %d --net devices", VM_MAX_NETS);
	for (unsigned i = 0; i < vm->cfg.nr_nets; i++) {
		int r = net_create(vm, i, e);
		if (r < 0)
			return r;
	}
	return 0;
}

static void net_dev_exit(struct vm *vm)
{
	for (unsigned i = 0; i < VM_MAX_NETS; i++) {
		struct net_dev *n = vm->nets[i];
		if (!n)
			continue;
		/* the control queue's thread and the relay write the device's
		 * kicks: stop them first; the shadow rings go after the device
		 * that reads them */
		cvq_stop(n);
		if (n->sh_live)
			relay_stop(&n->sh.relay);
		if (n->faulty) /* and the device in it */
			n->faulty->ops->destroy(n->faulty);
		else if (n->vdpa)
			n->vdpa->ops->destroy(n->vdpa);
		if (n->sh_live)
			shadow_exit(&n->sh);
		if (n->vp.vm)
			virtio_pci_exit(&n->vp);
		free(n);
		vm->nets[i] = NULL;
	}
}

const struct device_type net_device_type = {
	.name = "virtio-net",
	.init = net_dev_init,
	.exit = net_dev_exit,
	/* virtio_net_migrate.c */
	.save = net_state_save,
	.load = net_state_load,
	.start = net_state_start,
	.track_begin = net_track_begin,
	.track_end = net_track_end,
	.forget_log = net_forget_log,
	.unlogged = net_unlogged,
	.pause = net_pause,
	.thaw = net_thaw,
};

static void ctrl_summary(const struct net_ctrl_state *s, struct net_ctrl_info *o)
{
	const bool modes[6] = { s->promisc, s->allmulti, s->alluni, s->nomulti, s->nouni, s->nobcast };

	*o = (struct net_ctrl_info){ .valid = true, .uni = s->uni_count, .multi = s->multi_count,
				    .uni_overflow = s->uni_overflow, .multi_overflow = s->multi_overflow,
				    .pairs = s->pairs, .offloads = s->offloads, .rss_mode = s->rss.mode,
				    .hash_types = s->rss.hash_types, .rss_unclassified = s->rss.unclassified,
				    .rss_table_len = s->rss.table_len };
	memcpy(o->mac, s->mac, 6);
	for (unsigned m = 0; m < 6; m++)
		o->rx |= (unsigned)modes[m] << m;
	for (unsigned w = 0; w < 64; w++)
		o->vlans += (unsigned)__builtin_popcountll(s->vlans[w]);
	_Static_assert(sizeof(o->rss_table) == sizeof(s->rss.table), "RSS table sizes");
	memcpy(o->rss_table, s->rss.table, sizeof(o->rss_table));
}

void net_dev_info(struct net_dev *n, struct net_info *out)
{
	struct net_ctrl_state cs;
	static const char *const svq_names[] = { [NET_SVQ_AUTO] = "auto", [NET_SVQ_ON] = "on", [NET_SVQ_OFF] = "off" };
	struct sim_net_stats st = { 0 };

	/* the API thread reads while a switch may run: take the device lock */
	pthread_mutex_lock(&n->vp.lock);
	if (n->is_sim)
		sim_net_get_stats(n->vdpa, &st);
	*out = (struct net_info){
		.mode = n->sh.mode == SHADOW_SVQ ? "svq" : "passthrough",
		.svq = svq_names[n->svq],
		.strategy = n->sh.strategy,
		.switches = n->sh.stats.switches,
		.rollbacks = n->sh.stats.rollbacks,
		.recoveries = n->sh.stats.recoveries,
		.blackout_us = n->sh.stats.blackout_ns / 1000,
		.shadow_maps = n->sh.stats.maps,
		.iotlb_entries = n->is_sim ? (int64_t)st.iotlb_entries : -1,
		.rx_frames = n->is_sim ? (int64_t)st.rx_frames : -1,
		.tx_frames = n->is_sim ? (int64_t)st.tx_frames : -1,
	};
	if (n->cvq_live) {
		cvq_shadow_record(&n->cvq, &cs);
		ctrl_summary(&cs, &out->ctrl);
	}
	if (n->is_sim && sim_net_get_ctrl(n->vdpa, &cs))
		ctrl_summary(&cs, &out->device_ctrl);
	pthread_mutex_unlock(&n->vp.lock);
}
