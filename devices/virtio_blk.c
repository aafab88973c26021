/* SPDX-License-Identifier: MIT */
/*
 * devices/virtio_blk.c - the virtio-blk device (virtio_blk.h): config
 * space, feature negotiation, bring-up of the data path at DRIVER_OK, and
 * the device table's entry with its state and pause hooks.
 */
#include "devices/virtio_blk.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/device.h"
#include "devices/state.h"
#include "vdpa/virtio_bits.h"
#include "vmm/vm.h"

static struct blk_dev *to_blk(struct virtio_pci *vp)
{
	return container_of(vp, struct blk_dev, vp);
}

static void blk_config_read(struct virtio_pci *vp, unsigned off, void *buf, unsigned len)
{
	const struct blk_dev *d = to_blk(vp);

	memset(buf, 0, len);
	if (off < sizeof(d->config))
		memcpy(buf, (const uint8_t *)&d->config + off,
		       len < sizeof(d->config) - off ? len : sizeof(d->config) - off);
}

static void blk_config_write(struct virtio_pci *vp, unsigned off, const void *buf, unsigned len)
{
	/* writeback is writable only with CONFIG_WCE, which tern does not offer */
	(void)vp, (void)off, (void)buf, (void)len;
}

static int blk_features_ok(struct virtio_pci *vp)
{
	uint64_t f = vp->driver_features;

	return (f & ~vp->device_features) || !(f & VIRTIO_BIT(VIRTIO_F_VERSION_1)) ? -EINVAL : 0;
}

/* The guest broke a queue's ring rules; called on the disk's thread, which
 * must not wait for vp.lock (its holder may be stopping the thread). */
static void blk_queue_broken(void *opaque, unsigned queue, int err)
{
	struct blk_dev *d = opaque;

	pr_warn("disk '%s': queue %u stopped: the guest broke the ring rules (%s)", d->img.path, queue,
		strerror(-err));
	__atomic_store_n(&d->lost, true, __ATOMIC_RELEASE);
	virtio_pci_config_changed_async(&d->vp);
}

/* Starts the data path on the enabled queues, at bases (NULL: 0). */
static int blk_start_queues(struct blk_dev *d, const uint16_t *avail, const uint16_t *used, struct err *e)
{
	struct virtio_pci *vp = &d->vp;
	struct blk_queue_setup qs[DISK_MAX_QUEUES];
	unsigned nq = 0;

	for (unsigned i = 0; i < vp->nqueues && i < DISK_MAX_QUEUES; i++) {
		const struct virtio_pci_queue *q = &vp->q[i];
		if (!q->enabled)
			break; /* queues are used in order: the first disabled ends them */
		qs[nq++] = (struct blk_queue_setup){
			.num = q->size, .desc = q->desc, .avail = q->driver, .used = q->device,
			.last_avail = avail ? avail[i] : 0, .used_idx = used ? used[i] : 0,
			.event_idx = !!(vp->driver_features & VIRTIO_BIT(VIRTIO_F_EVENT_IDX)),
			.kick_fd = q->kick_fd, .call_fd = q->call_fd,
		};
	}
	if (!nq)
		return err_set(e, -EINVAL, "disk '%s': the driver enabled no queue", d->img.path);
	/* never serve an image without its lock: a hand-over that failed
	 * after the lock was let go may have left it to another VMM */
	int r = blk_image_lock(&d->img, e);
	if (r < 0)
		return r;
	d->eng.on_broken = blk_queue_broken;
	d->eng.opaque = d;
	d->eng.sandbox = &vp->vm->cfg.sandbox;
	r = blk_engine_start(&d->eng, &d->img, &d->lim, &vp->vm->mem, qs, nq, e);
	if (r < 0) {
		blk_engine_stop(&d->eng);
		return r;
	}
	d->running = true;
	return 0;
}

static int blk_driver_ok(struct virtio_pci *vp)
{
	struct blk_dev *d = to_blk(vp);
	struct err e = { { 0 } };
	int r = blk_start_queues(d, NULL, NULL, &e);

	if (r < 0)
		pr_warn("%s", e.msg);
	return r;
}

static void blk_reset(struct virtio_pci *vp)
{
	struct blk_dev *d = to_blk(vp);

	if (d->running)
		blk_engine_stop(&d->eng);
	d->running = d->paused = false;
	__atomic_store_n(&d->lost, false, __ATOMIC_RELEASE);
}

static uint8_t blk_backend_status(struct virtio_pci *vp)
{
	return __atomic_load_n(&to_blk(vp)->lost, __ATOMIC_ACQUIRE) ? VIRTIO_S_NEEDS_RESET : 0;
}

static const struct virtio_pci_ops blk_vp_ops = {
	.config_read = blk_config_read,
	.config_write = blk_config_write,
	.features_ok = blk_features_ok,
	.driver_ok = blk_driver_ok,
	.reset = blk_reset,
	.backend_status = blk_backend_status,
};

static uint64_t blk_features(const struct blk_dev *d)
{
	const struct disk_config *c = d->cfg;

	return VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX) |
	       VIRTIO_BIT(VIRTIO_F_RING_INDIRECT_DESC) | VIRTIO_BIT(VIRTIO_BLK_F_SIZE_MAX) |
	       VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) | VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE) | VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) |
	       VIRTIO_BIT(VIRTIO_BLK_F_TOPOLOGY) | (c->queues > 1 ? VIRTIO_BIT(VIRTIO_BLK_F_MQ) : 0) |
	       (c->readonly ? VIRTIO_BIT(VIRTIO_BLK_F_RO)
			    : VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES) | (c->discard ? VIRTIO_BIT(VIRTIO_BLK_F_DISCARD) : 0));
}

static void blk_fill_config(struct blk_dev *d)
{
	struct virtio_blk_config *k = &d->config;
	uint32_t phys = d->img.direct ? d->img.align : 4096;

	d->lim = (struct blk_limits){ .capacity = d->img.size / BLK_SECTOR, .seg_max = BLK_SEG_MAX,
				      .max_bytes = BLK_MAX_BYTES, .max_range = BLK_MAX_RANGE,
				      .readonly = d->cfg->readonly, .discard = d->cfg->discard,
				      .serial = d->cfg->serial };
	*k = (struct virtio_blk_config){
		.capacity = d->lim.capacity, .size_max = BLK_MAX_BYTES, .seg_max = BLK_SEG_MAX,
		.blk_size = BLK_SECTOR, .physical_block_exp = (uint8_t)__builtin_ctz(phys / BLK_SECTOR),
		.min_io_size = 1, .opt_io_size = 0, .writeback = 1, .num_queues = (uint16_t)d->cfg->queues,
		.max_discard_sectors = d->cfg->discard ? BLK_MAX_RANGE : 0, .max_discard_seg = d->cfg->discard,
		.discard_sector_alignment = phys / BLK_SECTOR, .max_write_zeroes_sectors = BLK_MAX_RANGE,
		.max_write_zeroes_seg = 1, .write_zeroes_may_unmap = d->cfg->discard,
	};
}

static void blk_copy_abandon_all(struct vm *vm);

static int blk_create(struct vm *vm, unsigned idx, struct err *e)
{
	struct blk_dev *d = calloc(1, sizeof(*d));
	int r;

	if (!d)
		return err_set(e, -ENOMEM, "out of memory for a disk");
	vm->disks[idx] = d;
	d->cfg = &vm->cfg.disk_cfgs[idx];
	d->img.fd = -1;
	d->eng.ctl_fd = -1;
	pthread_mutex_init(&d->eng.lock, NULL);
	pthread_cond_init(&d->eng.cond, NULL);
	d->copy.fd = -1;
	/* a migration's destination locks the image only when it starts,
	 * after the source let go of it (blk_let_go()), unless it receives
	 * the image's contents: then it writes it from the start */
	if (vm->cfg.incoming && vm->cfg.incoming_copy_disks)
		r = blk_image_open_target(&d->img, d->cfg, vm->cfg.incoming_disk_size[idx], e);
	else
		r = blk_image_open(&d->img, d->cfg, !vm->cfg.incoming, e);
	if (r < 0)
		return r;
	uint64_t want = vm->cfg.incoming ? vm->cfg.incoming_disk_size[idx] : 0;
	if (want && want != d->img.size)
		return err_set(e, -EINVAL, "disk %u: the source's image has %llu bytes; '%s' has %llu bytes: not the same "
					   "disk", idx, (unsigned long long)want, d->img.path, (unsigned long long)d->img.size);
	blk_fill_config(d);
	r = virtio_pci_init(&d->vp, vm, &blk_vp_ops, VIRTIO_ID_BLOCK, blk_features(d), d->cfg->queues,
			    BLK_QUEUE_SIZE, e);
	return r < 0 ? r : virtio_pci_register(&d->vp, vm->pci, e);
}

static int blk_dev_init(struct vm *vm, struct err *e)
{
	if (vm->cfg.nr_disks > VM_MAX_DISKS)
		return err_set(e, -EINVAL, "at most %d --disk devices", VM_MAX_DISKS);
	for (unsigned i = 0; i < vm->cfg.nr_disks; i++) {
		int r = blk_create(vm, i, e);
		if (r < 0) {
			blk_copy_abandon_all(vm); /* images a copy target created */
			return r;
		}
	}
	return 0;
}

static void blk_dev_exit(struct vm *vm)
{
	for (unsigned i = 0; i < VM_MAX_DISKS; i++) {
		struct blk_dev *d = vm->disks[i];
		if (!d)
			continue;
		blk_engine_stop(&d->eng); /* the thread first: it writes guest RAM */
		blk_copy_end(&d->copy);
		pthread_mutex_destroy(&d->eng.lock);
		pthread_cond_destroy(&d->eng.cond);
		if (d->vp.vm)
			virtio_pci_exit(&d->vp);
		blk_image_close(&d->img);
		free(d);
		vm->disks[i] = NULL;
	}
}

void blk_dev_info(struct blk_dev *d, struct disk_info *out)
{
	/* the API thread reads while the driver may reset the disk */
	pthread_mutex_lock(&d->vp.lock);
	*out = (struct disk_info){ .path = d->img.path, .readonly = d->img.readonly, .direct = d->img.direct,
				   .queues = d->running ? d->eng.nq : 0, .size = d->img.size };
	if (d->running)
		blk_engine_stats(&d->eng, &out->stats);
	pthread_mutex_unlock(&d->vp.lock);
}

/* ---- state and pausing, through the device table ----------------------- */

/* Version of the "blk@N" nodes (devices/state.h). */
static const struct state_version blk_state_version = { .major = 1, .minor = 0, .floor = 0 };

static int blk_pause(struct vm *vm, struct err *e)
{
	(void)e;
	for (unsigned i = 0; i < vm->cfg.nr_disks; i++) {
		struct blk_dev *d = vm->disks[i];
		pthread_mutex_lock(&d->vp.lock);
		if (d->running && !d->paused)
			blk_engine_pause(&d->eng); /* returns with nothing in flight */
		d->paused = d->running;
		pthread_mutex_unlock(&d->vp.lock);
	}
	return 0;
}

static void blk_thaw(struct vm *vm)
{
	for (unsigned i = vm->cfg.nr_disks; i-- > 0;) {
		struct blk_dev *d = vm->disks[i];
		struct err e = { { 0 } };
		pthread_mutex_lock(&d->vp.lock);
		/* a hand-over that failed after blk_let_go(): the lock comes
		 * back first; if someone took it meanwhile, this copy must not
		 * write the image, and its guest is told the disk failed */
		if (!d->img.locked && blk_image_lock(&d->img, &e) < 0) {
			pr_warn("%s: the disk stays stopped", e.msg);
			__atomic_store_n(&d->lost, true, __ATOMIC_RELEASE);
			d->paused = false; /* its engine stays paused: no request is served */
			pthread_mutex_unlock(&d->vp.lock);
			virtio_pci_config_changed(&d->vp);
			continue;
		}
		if (d->paused)
			blk_engine_resume(&d->eng);
		d->paused = false;
		pthread_mutex_unlock(&d->vp.lock);
	}
}

static int blk_save(struct vm *vm, void *fdt, struct err *e)
{
	for (unsigned i = 0; i < vm->cfg.nr_disks; i++) {
		struct blk_dev *d = vm->disks[i];
		struct blk_dev_state *st = calloc(1, sizeof(*st)); /* large: not on the stack */
		char name[16];
		if (!st)
			return err_set(e, -ENOMEM, "out of memory");
		virtio_pci_get_state(&d->vp, &st->vp);
		for (unsigned q = 0; d->running && q < d->eng.nq; q++)
			blk_engine_indices(&d->eng, q, &st->last_avail[q], &st->used_idx[q]);
		st->image_size = d->img.size;
		snprintf(name, sizeof(name), "blk@%u", i);
		int r = state_put_regs(fdt, name, &blk_state_version, st, sizeof(*st), e);
		free(st);
		if (r < 0)
			return r;
	}
	return 0;
}

static int blk_load_one(struct blk_dev *d, const struct blk_dev_state *st, const char *name, struct err *e)
{
	if (st->image_size != d->img.size)
		return err_set(e, -EPROTO, "state: %s was taken with a %llu-byte image; '%s' has %llu bytes: not the "
					   "same disk", name, (unsigned long long)st->image_size, d->img.path,
			       (unsigned long long)d->img.size);
	if (st->rsvd)
		return err_set(e, -EPROTO, "state: %s has reserved bits set", name);
	if (virtio_pci_set_state(&d->vp, &st->vp) < 0)
		return err_set(e, -EPROTO, "state: %s: virtio-blk transport state out of range (different --disk?)",
			       name);
	if ((d->vp.status & VIRTIO_S_FEATURES_OK) && blk_features_ok(&d->vp) < 0)
		return err_set(e, -EPROTO, "state: %s: the disk refuses the saved features", name);
	d->staged = !!(d->vp.status & VIRTIO_S_DRIVER_OK);
	memcpy(d->staged_avail, st->last_avail, sizeof(d->staged_avail));
	memcpy(d->staged_used, st->used_idx, sizeof(d->staged_used));
	return 0;
}

static int blk_load(struct vm *vm, const void *fdt, struct err *e)
{
	for (unsigned i = 0; i < vm->cfg.nr_disks; i++) {
		struct blk_dev_state *st = malloc(sizeof(*st));
		char name[16];
		snprintf(name, sizeof(name), "blk@%u", i);
		int r = st ? state_get_regs(fdt, name, &blk_state_version, st, sizeof(*st), e)
			   : err_set(e, -ENOMEM, "out of memory");
		if (r == 0)
			r = blk_load_one(vm->disks[i], st, name, e);
		free(st);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The source let go of each image's lock when it sent GO: the
 * destination takes it before the disk serves a request. */
static void blk_let_go(struct vm *vm)
{
	for (unsigned i = 0; i < vm->cfg.nr_disks; i++)
		blk_image_unlock(&vm->disks[i]->img);
}

static int blk_start(struct vm *vm, struct err *e)
{
	for (unsigned i = 0; i < vm->cfg.nr_disks; i++) {
		struct blk_dev *d = vm->disks[i];
		int r = blk_image_lock(&d->img, e);
		if (r < 0)
			return r;
		if (!d->staged)
			continue;
		d->staged = false;
		r = blk_start_queues(d, d->staged_avail, d->staged_used, e);
		if (r < 0)
			return r;
	}
	return 0;
}

static int blk_track_begin(struct vm *vm, struct dirty_log *log, struct err *e)
{
	(void)e;
	for (unsigned i = 0; i < vm->cfg.nr_disks; i++)
		blk_engine_set_log(&vm->disks[i]->eng, log);
	return 0;
}

static void blk_forget_log(struct vm *vm)
{
	for (unsigned i = 0; i < vm->cfg.nr_disks; i++)
		blk_engine_set_log(&vm->disks[i]->eng, NULL);
}

/* ---- copying the images: a migration without shared storage ----------- */

static void blk_copy_end_all(struct vm *vm)
{
	for (unsigned i = 0; i < vm->cfg.nr_disks; i++) {
		struct blk_dev *d = vm->disks[i];
		if (!d->copying)
			continue;
		blk_engine_set_copy(&d->eng, NULL); /* no completion marks it after this */
		blk_copy_end(&d->copy);
		d->copying = d->copy_pass_done = false;
	}
}

static int blk_copy_begin_all(struct vm *vm, uint64_t *sizes, unsigned *n, struct err *e)
{
	for (unsigned i = 0; i < vm->cfg.nr_disks; i++) {
		struct blk_dev *d = vm->disks[i];
		int r = blk_copy_begin(&d->copy, &d->img, e);
		if (r < 0) {
			blk_copy_end_all(vm);
			return r;
		}
		d->copying = true;
		d->copy_pass_done = false;
		blk_engine_set_copy(&d->eng, &d->copy);
		sizes[i] = d->img.size;
	}
	*n = vm->cfg.nr_disks;
	return 0;
}

/* A pass goes through the disks in order; each says when its part ends. */
static int blk_copy_next_piece(struct vm *vm, struct dev_copy_piece *p, void *buf, struct err *e)
{
	for (unsigned i = 0; i < vm->cfg.nr_disks; i++) {
		struct blk_dev *d = vm->disks[i];
		if (!d->copying || d->copy_pass_done)
			continue;
		int r = blk_copy_next(&d->copy, p, buf, d->img.path, e);
		if (r != 0) {
			p->unit = i;
			return r;
		}
		d->copy_pass_done = true;
	}
	for (unsigned i = 0; i < vm->cfg.nr_disks; i++)
		vm->disks[i]->copy_pass_done = false;
	return 0;
}

static uint64_t blk_copy_pending_all(struct vm *vm)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < vm->cfg.nr_disks; i++)
		if (vm->disks[i]->copying)
			n += blk_copy_pending(&vm->disks[i]->copy);
	return n;
}

static int blk_copy_write_piece(struct vm *vm, const struct dev_copy_piece *p, const void *data, struct err *e)
{
	if (p->unit >= vm->cfg.nr_disks || !vm->disks[p->unit]->img.copying)
		return err_set(e, -EPROTO, "migration: copied contents for disk %u, which this destination does not "
					   "copy into", p->unit);
	const struct blk_image *img = &vm->disks[p->unit]->img;
	return blk_copy_write(img->copy_fd, img->size, p, data, img->path, e);
}

static int blk_copy_done_all(struct vm *vm, struct err *e)
{
	for (unsigned i = 0; i < vm->cfg.nr_disks; i++) {
		int r = blk_image_copy_done(&vm->disks[i]->img, e);
		if (r < 0)
			return r;
	}
	return 0;
}

static void blk_copy_abandon_all(struct vm *vm)
{
	for (unsigned i = 0; i < vm->cfg.nr_disks; i++)
		if (vm->disks[i])
			blk_image_abandon(&vm->disks[i]->img);
}

const struct device_type blk_device_type = {
	.name = "virtio-blk",
	.init = blk_dev_init,
	.exit = blk_dev_exit,
	.save = blk_save,
	.load = blk_load,
	.start = blk_start,
	.track_begin = blk_track_begin,
	.track_end = blk_forget_log,
	.forget_log = blk_forget_log,
	.pause = blk_pause,
	.thaw = blk_thaw,
	.let_go = blk_let_go,
	.copy_begin = blk_copy_begin_all,
	.copy_next = blk_copy_next_piece,
	.copy_pending = blk_copy_pending_all,
	.copy_end = blk_copy_end_all,
	.copy_write = blk_copy_write_piece,
	.copy_done = blk_copy_done_all,
	.copy_abandon = blk_copy_abandon_all,
};
