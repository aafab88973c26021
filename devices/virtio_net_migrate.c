/* SPDX-License-Identifier: MIT */
/*
 * devices/virtio_net_migrate.c - the virtio-net front end in snapshots and
 * migrations (virtio_net_priv.h): pausing the device, dirty tracking
 * through the switch into shadow virtqueues, and its state in the state
 * tree, reached through the device table.
 */
#include "devices/virtio_net_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/state.h"
#include "vdpa/fault_vdpa.h"
#include "vdpa/sim_net.h"
#include "vmm/vm.h"

/* A device frozen for the whole migration (svq=off) is already
 * suspended; its control queue, answered by tern, is not, and is paused
 * here like any other's. */
static int pause_one(struct net_dev *n, struct err *e)
{
	pthread_mutex_lock(&n->vp.lock);
	int r = n->frozen_for_log ? 0 : shadow_freeze(&n->sh, e);
	/* tern answers some guest commands itself: the guest's control
	 * ring must not move while its index is saved */
	if (r == 0 && n->cvq_live)
		cvq_shadow_pause(&n->cvq, true);
	pthread_mutex_unlock(&n->vp.lock);
	return r;
}

static void thaw_one(struct net_dev *n)
{
	pthread_mutex_lock(&n->vp.lock);
	if (!n->frozen_for_log) /* track_end_one() thaws that one */
		shadow_thaw(&n->sh);
	if (n->cvq_live)
		cvq_shadow_pause(&n->cvq, false);
	pthread_mutex_unlock(&n->vp.lock);
}

static int save_regs(struct net_dev *n, struct net_dev_state *st, struct err *e)
{
	uint16_t bases[SHADOW_MAX_QUEUES] = { 0 };
	int r;

	memset(st, 0, sizeof(*st));
	virtio_pci_get_state(&n->vp, &st->vp);
	if (!(n->vp.status & VIRTIO_S_DRIVER_OK))
		return 0;
	/* trustworthy: the device is suspended and completes in order */
	r = shadow_bases(&n->sh, bases, e);
	for (unsigned i = 0; r == 0 && i < n->vp.nqueues && i < SHADOW_MAX_QUEUES; i++)
		st->last_avail[i] = n->vp.q[i].enabled ? bases[i] : 0;
	/* the device's index of the shadow control ring is not the guest's */
	if (r == 0 && n->cvq_live && n->cvq.idx < SHADOW_MAX_QUEUES)
		st->last_avail[n->cvq.idx] = cvq_shadow_guest_base(&n->cvq);
	return r;
}

/* Whether this switch is one the test interface's switch fault is for. */
static bool fault_armed(const struct net_dev *n, bool to_svq, bool tried)
{
	enum fault_switch_dir d = to_svq ? FAULT_SWITCH_TO_SVQ : FAULT_SWITCH_TO_PASSTHROUGH;

	return n->faulty && tried && !n->fault_spent && n->faults->switch_dir == d;
}

/* After an armed switch: its failure names the call that was made to
 * fail; with "each" the next switch fails one call later, until a switch
 * is made whole (every call has failed once). */
static void fault_disarm(struct net_dev *n, int r, struct err *e)
{
	char injected[96];

	fault_vdpa_disarm(n->faulty, injected, sizeof(injected));
	if (r < 0 && injected[0]) {
		size_t len = strlen(e->msg);
		snprintf(e->msg + len, sizeof(e->msg) - len, " [test fault: %s]", injected);
	}
	if (n->faults->switch_each) {
		n->fault_spent = r == 0;
		n->fault_at++;
	}
}

int net_switch(struct net_dev *n, bool to_svq, struct err *e)
{
	bool tried = to_svq ? n->sh.mode == SHADOW_PASSTHROUGH : n->sh.mode == SHADOW_SVQ;
	bool armed = fault_armed(n, to_svq, tried);

	if (armed)
		fault_vdpa_arm(n->faulty, n->fault_at, n->faults->switch_op[0] ? n->faults->switch_op : NULL);
	int r = to_svq ? shadow_to_svq(&n->sh, e) : shadow_to_passthrough(&n->sh, e);
	if (armed)
		fault_disarm(n, r, e);

	if (r == -ENODEV) {
		/* the device could not be brought back: tell the driver */
		__atomic_store_n(&n->lost, true, __ATOMIC_RELEASE);
		virtio_pci_config_changed_locked(&n->vp); /* our caller holds vp.lock */
	} else if (r == 0) {
		pr_info("%s: %s (strategy %u), blackout %.2f ms", n->vdpa->name,
			to_svq ? "shadow virtqueues on" : "back to passthrough", n->sh.strategy,
			(double)n->sh.stats.blackout_ns / 1e6);
	}
	return r;
}

static int track_begin_one(struct net_dev *n, struct dirty_log *log, struct err *e)
{
	int r = 0;

	pthread_mutex_lock(&n->vp.lock);
	__atomic_store_n(&n->unlogged, false, __ATOMIC_RELEASE);
	if (n->svq == NET_SVQ_OFF) {
		/* no relay to see the device's writes: it stays frozen; the
		 * control queue's answers are tern's writes and are logged */
		r = shadow_freeze(&n->sh, e);
		n->frozen_for_log = r == 0;
		if (r == 0)
			shadow_set_log(&n->sh, log);
	} else {
		shadow_set_log(&n->sh, log);
		if (n->vp.status & VIRTIO_S_DRIVER_OK)
			r = net_switch(n, true, e);
		if (r < 0)
			shadow_set_log(&n->sh, NULL);
		n->tracking = r == 0;
	}
	pthread_mutex_unlock(&n->vp.lock);
	return r;
}

static void track_end_one(struct net_dev *n)
{
	struct err e = { { 0 } };

	pthread_mutex_lock(&n->vp.lock);
	if (n->frozen_for_log)
		shadow_thaw(&n->sh);
	n->frozen_for_log = false;
	n->tracking = false;
	shadow_set_log(&n->sh, NULL);
	if (n->svq == NET_SVQ_AUTO && net_switch(n, false, &e) < 0)
		pr_warn("%s", e.msg);
	pthread_mutex_unlock(&n->vp.lock);
}

static bool unlogged_one(const struct net_dev *n)
{
	return __atomic_load_n(&n->unlogged, __ATOMIC_ACQUIRE);
}

/* A guest that did not negotiate GUEST_ANNOUNCE cannot announce a move:
 * tern sends a RARP with its MAC, as QEMU does for such guests, so that
 * switches learn where it is now. Only tern's software device has a wire
 * tern can put a frame on; on other backends this needs shadow virtqueues. */
static void net_send_rarp(struct net_dev *n)
{
	uint8_t f[60] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, mac[6];
	static const uint8_t rarp_hdr[10] = { 0x80, 0x35, 0, 1, 0x08, 0x00, 6, 4, 0, 3 };

	if (!n->is_sim) {
		pr_info("%s: the guest cannot announce itself and tern has no wire on this device: switches learn "
			"its MAC from its first frame", n->vdpa->name);
		return;
	}
	if (n->vdpa->ops->get_config(n->vdpa, VNET_CFG_MAC, mac, 6) < 0)
		return;
	memcpy(f + 6, mac, 6);       /* source */
	memcpy(f + 12, rarp_hdr, 10); /* RARP, Ethernet/IPv4, reverse request */
	memcpy(f + 22, mac, 6);       /* sender hardware address */
	memcpy(f + 32, mac, 6);       /* target hardware address */
	int r = sim_net_wire_send(n->vdpa, f, sizeof(f));
	if (r < 0 && r != -EAGAIN)
		pr_warn("%s: cannot announce the guest (RARP): %s", n->vdpa->name, strerror(-r));
}

/* The control-queue state to carry (1), or 0 when the driver has none;
 * rss->mode says whether there is RSS state to carry too. */
static int ctrl_record(struct net_dev *n, struct cvq_record *r, struct cvq_rss *rss)
{
	struct net_ctrl_state s;

	if (!n->cvq_live)
		return 0;
	cvq_shadow_record(&n->cvq, &s);
	cvq_record_pack(&s, r);
	*rss = s.rss;
	return 1;
}

/* Loads state into a new device before the VM runs: the transport's
 * state and the features are set, the rings and the control-queue state
 * ctrl (or NULL) with its RSS part rss (or NULL: off) checked and kept;
 * nothing starts, so nothing is sent. */
static int load_one(struct net_dev *n, const struct net_dev_state *st, const struct cvq_record *ctrl,
		    const struct cvq_rss *rss, struct err *e)
{
	struct virtio_pci *vp = &n->vp;
	struct net_ctrl_state want;
	int r = virtio_pci_set_state(vp, &st->vp);

	if (r < 0)
		return err_set(e, -EPROTO, "snapshot: virtio-net transport state out of range (different --net?)");
	if (!(vp->status & VIRTIO_S_FEATURES_OK))
		return 0; /* the driver had not got that far: nothing to start */
	if (net_features_ok(vp) < 0)
		return err_set(e, -EPROTO, "snapshot: the device refused the saved features 0x%llx",
			       (unsigned long long)vp->driver_features);
	if (vp->status & VIRTIO_S_DRIVER_OK) {
		struct cvq_limits lim;
		uint64_t f = vp->driver_features | (1ull << VIRTIO_F_ACCESS_PLATFORM);
		cvq_limits_read(n->vdpa, f, &lim);
		if ((ctrl || rss) && !(f & (1ull << VNET_F_CTRL_VQ)))
			return err_set(e, -EPROTO, "snapshot: control-queue state for a driver without a control queue");
		if (rss && !ctrl)
			return err_set(e, -EPROTO, "snapshot: RSS state without the control-queue state");
		if (ctrl && (r = cvq_record_unpack(ctrl, rss, f, &lim, &want, e)) < 0)
			return r;
		_Static_assert(sizeof(n->staged_bases) == sizeof(st->last_avail), "staged bases");
		memcpy(n->staged_bases, st->last_avail, sizeof(n->staged_bases));
		n->staged_ctrl = ctrl != NULL;
		if (ctrl)
			n->staged_state = want;
		n->staged = true;
	}
	return 0;
}

/* Starts a loaded device where its driver left it (no-op if there is
 * nothing to start): the control-queue state is replayed before the data
 * queues are enabled, a NACK fails it; then the guest is asked to announce
 * itself (GUEST_ANNOUNCE) or tern sends a RARP: the VM moved. */
static int start_one(struct net_dev *n, struct err *e)
{
	struct virtio_pci *vp = &n->vp;
	int r;

	if (!n->staged)
		return 0;
	n->staged = false;
	r = net_start_ctrl(vp, n->staged_bases, n->staged_ctrl ? &n->staged_state : NULL, e);
	if (r < 0)
		return r;
	/* the VM moved: the guest tells its network (the interrupt waits in
	 * the restored LAPIC until the vCPUs run), or tern does on its behalf */
	if (vp->driver_features & (1ull << VNET_F_GUEST_ANNOUNCE)) {
		net_announce_request(&n->announce);
		virtio_pci_config_changed(vp);
	} else {
		net_send_rarp(n);
	}
	return 0;
}


/* ---- the device table's hooks (devices/device.h) --------------------------- */

/* Version of the "net@N" nodes (devices/state.h): regs (struct
 * net_dev_state), then optional ctrl (struct cvq_record, 1.1) and rss
 * (struct cvq_rss, 1.2). A change to any of the three needs a bump. */
static const struct state_version net_state_version = { .major = 1, .minor = 2, .floor = 0 };

static int save_node(struct net_dev *n, void *fdt, const char *name, struct err *e)
{
	struct net_dev_state *st = malloc(sizeof(*st)); /* large: not on the stack */
	struct cvq_record ctrl;
	struct cvq_rss rss;
	int r = st ? save_regs(n, st, e) : err_set(e, -ENOMEM, "out of memory");

	if (r == 0)
		r = state_begin(fdt, name, &net_state_version, e);
	if (r == 0)
		r = state_put(fdt, "regs", st, sizeof(*st), e);
	if (r == 0 && ctrl_record(n, &ctrl, &rss) > 0) {
		r = state_put(fdt, "ctrl", &ctrl, sizeof(ctrl), e);
		if (r == 0 && rss.mode != CVQ_RSS_OFF)
			r = state_put(fdt, "rss", &rss, sizeof(rss), e);
	}
	if (r == 0)
		r = state_end(fdt, name, e);
	free(st);
	return r;
}

int net_state_save(struct vm *vm, void *fdt, struct err *e)
{
	char name[16];

	for (unsigned i = 0; i < vm->cfg.nr_nets; i++) {
		snprintf(name, sizeof(name), "net@%u", i);
		int r = save_node(vm->nets[i], fdt, name, e);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The control-queue state and its RSS part are optional: an older
 * stream, a driver without a control queue, or RSS off, has none. */
static int load_node(struct net_dev *n, const void *fdt, const char *name, struct err *e)
{
	struct net_dev_state st;
	struct cvq_record ctrl;
	struct cvq_rss rss;
	int node = state_find(fdt, name, &net_state_version, NULL, e), has_ctrl = 0, has_rss = 0;
	int r = node < 0 ? node : state_get(fdt, node, name, "regs", &st, sizeof(st), e);

	if (r == 0 && (has_ctrl = state_get_optional(fdt, node, name, "ctrl", &ctrl, sizeof(ctrl), e)) < 0)
		r = has_ctrl;
	if (r == 0 && (has_rss = state_get_optional(fdt, node, name, "rss", &rss, sizeof(rss), e)) < 0)
		r = has_rss;
	return r < 0 ? r : load_one(n, &st, has_ctrl ? &ctrl : NULL, has_rss ? &rss : NULL, e);
}

int net_state_load(struct vm *vm, const void *fdt, struct err *e)
{
	char name[16];

	for (unsigned i = 0; i < vm->cfg.nr_nets; i++) {
		snprintf(name, sizeof(name), "net@%u", i);
		int r = load_node(vm->nets[i], fdt, name, e);
		if (r < 0)
			return r;
	}
	return 0;
}

int net_state_start(struct vm *vm, struct err *e)
{
	for (unsigned i = 0; i < vm->cfg.nr_nets; i++) {
		int r = start_one(vm->nets[i], e);
		if (r < 0)
			return r;
	}
	return 0;
}

int net_track_begin(struct vm *vm, struct dirty_log *log, struct err *e)
{
	for (unsigned i = 0; i < vm->cfg.nr_nets; i++) {
		int r = track_begin_one(vm->nets[i], log, e);
		if (r < 0) {
			while (i-- > 0)
				track_end_one(vm->nets[i]);
			return r;
		}
	}
	return 0;
}

void net_track_end(struct vm *vm)
{
	for (unsigned i = vm->cfg.nr_nets; i-- > 0;)
		track_end_one(vm->nets[i]);
}

void net_forget_log(struct vm *vm)
{
	for (unsigned i = 0; i < vm->cfg.nr_nets; i++)
		shadow_set_log(&vm->nets[i]->sh, NULL);
}

int net_unlogged(struct vm *vm, struct err *e)
{
	for (unsigned i = 0; i < vm->cfg.nr_nets; i++)
		if (unlogged_one(vm->nets[i]))
			return err_set(e, -EIO, "network device %u was restarted by its driver during the migration "
						"and wrote guest memory without dirty logging: not handed over", i);
	return 0;
}

int net_pause(struct vm *vm, struct err *e)
{
	for (unsigned i = 0; i < vm->cfg.nr_nets; i++) {
		int r = pause_one(vm->nets[i], e);
		if (r < 0) {
			while (i-- > 0)
				thaw_one(vm->nets[i]);
			return r;
		}
	}
	return 0;
}

void net_thaw(struct vm *vm)
{
	for (unsigned i = vm->cfg.nr_nets; i-- > 0;)
		thaw_one(vm->nets[i]);
}
