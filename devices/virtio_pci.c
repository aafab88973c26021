/* SPDX-License-Identifier: MIT */
/*
 * devices/virtio_pci.c - virtio modern PCI transport. Register layouts from
 * the virtio 1.2 specification §4.1.4 (restated, with size checks).
 */
#include "devices/virtio_pci.h"

#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vmm/irq.h"
#include "vmm/vm.h"

#define BAR_CFG 0
#define BAR_MSIX 2
#define CFG_BAR_SIZE 0x4000
#define MSIX_BAR_SIZE 0x2000
#define COMMON_OFF 0x0000
#define ISR_OFF 0x1000
#define DEVCFG_OFF 0x2000
#define NOTIFY_OFF 0x3000
#define NOTIFY_MULT 4
#define PBA_OFF 0x1000

#define CAP_VNDR 0x09
#define CAP_MSIX 0x11
#define CFG_COMMON 1
#define CFG_NOTIFY 2
#define CFG_ISR 3
#define CFG_DEVICE 4
#define CFG_PCI 5

struct common_cfg {
	uint32_t device_feature_select, device_feature;
	uint32_t driver_feature_select, driver_feature;
	uint16_t config_msix_vector, num_queues;
	uint8_t device_status, config_generation;
	uint16_t queue_select, queue_size, queue_msix_vector, queue_enable, queue_notify_off;
	uint64_t queue_desc, queue_driver, queue_device;
} __attribute__((packed));
_Static_assert(sizeof(struct common_cfg) == 0x38, "virtio_pci_common_cfg layout");
#define CC(f) __builtin_offsetof(struct common_cfg, f)

/* ---- interrupts ---------------------------------------------------------- */

static bool vector_live(const struct virtio_pci *vp, uint16_t v)
{
	return v != VPCI_NO_VECTOR && v < vp->nvectors && vp->msix_enabled && !vp->msix_masked &&
	       !(vp->msix[v][3] & 1);
}

/* Binds (or unbinds) an eventfd to the GSI of vector v, as its state says. */
static void rebind(struct virtio_pci *vp, int fd, uint16_t v, int *bound_gsi)
{
	int want = vector_live(vp, v) ? (int)vp->gsi[v] : -1;

	if (fd < 0 || want == *bound_gsi)
		return;
	if (*bound_gsi >= 0)
		irq_irqfd(vp->vm->vm_fd, fd, (uint32_t)*bound_gsi, false);
	*bound_gsi = -1;
	if (want >= 0 && irq_irqfd(vp->vm->vm_fd, fd, (uint32_t)want, true) == 0)
		*bound_gsi = want;
}

static void rebind_all(struct virtio_pci *vp)
{
	for (unsigned i = 0; i < vp->nqueues; i++)
		rebind(vp, vp->q[i].call_fd, vp->q[i].vector, &vp->q[i].irqfd_gsi);
	rebind(vp, vp->config_call_fd, vp->config_vector, &vp->config_irqfd_gsi);
}

void virtio_pci_config_changed_locked(struct virtio_pci *vp)
{
	uint64_t one = 1;

	/* atomic, so that virtio_pci_config_changed_async() needs no lock */
	__atomic_fetch_or(&vp->isr, 2, __ATOMIC_SEQ_CST);
	__atomic_fetch_add(&vp->config_generation, 1, __ATOMIC_SEQ_CST);
	if (write(vp->config_call_fd, &one, sizeof(one)) < 0) {
		/* saturated counter: an interrupt is pending anyway */
	}
}

void virtio_pci_config_changed_async(struct virtio_pci *vp)
{
	virtio_pci_config_changed_locked(vp);
}

void virtio_pci_config_changed(struct virtio_pci *vp)
{
	pthread_mutex_lock(&vp->lock);
	virtio_pci_config_changed_locked(vp);
	pthread_mutex_unlock(&vp->lock);
}

/* ---- common config ------------------------------------------------------- */

static struct virtio_pci_queue *selq(struct virtio_pci *vp)
{
	return vp->queue_select < vp->nqueues ? &vp->q[vp->queue_select] : NULL;
}

static uint64_t common_read(struct virtio_pci *vp, unsigned off)
{
	struct virtio_pci_queue *q = selq(vp);

	switch (off) {
	case CC(device_feature_select): return vp->dfselect;
	case CC(device_feature): return vp->dfselect < 2 ? (uint32_t)(vp->device_features >> (32 * vp->dfselect)) : 0;
	case CC(driver_feature_select): return vp->gfselect;
	case CC(driver_feature): return vp->gfselect < 2 ? (uint32_t)(vp->driver_features >> (32 * vp->gfselect)) : 0;
	case CC(config_msix_vector): return vp->config_vector;
	case CC(num_queues): return vp->nqueues;
	case CC(device_status):
		return vp->status | (vp->status && vp->ops->backend_status ? vp->ops->backend_status(vp) & 0x40 : 0);
	case CC(config_generation): return __atomic_load_n(&vp->config_generation, __ATOMIC_SEQ_CST);
	case CC(queue_select): return vp->queue_select;
	case CC(queue_size): return q ? q->size : 0;
	case CC(queue_msix_vector): return q ? q->vector : VPCI_NO_VECTOR;
	case CC(queue_enable): return q ? q->enabled : 0;
	case CC(queue_notify_off): return vp->queue_select;
	case CC(queue_desc): return q ? q->desc : 0;
	case CC(queue_driver): return q ? q->driver : 0;
	case CC(queue_device): return q ? q->device : 0;
	default: return 0;
	}
}

static void set_status(struct virtio_pci *vp, uint8_t st)
{
	if (st == 0) {
		vp->status = 0;
		vp->driver_features = 0;
		vp->isr = 0;
		vp->config_vector = VPCI_NO_VECTOR;
		for (unsigned i = 0; i < vp->nqueues; i++) {
			struct virtio_pci_queue *q = &vp->q[i];
			q->enabled = false;
			q->size = vp->queue_max;
			q->vector = VPCI_NO_VECTOR;
			q->desc = q->driver = q->device = 0;
		}
		rebind_all(vp);
		vp->ops->reset(vp);
		return;
	}
	if ((st & 0x08) && !(vp->status & 0x08) && vp->ops->features_ok(vp) < 0)
		st &= (uint8_t)~0x08; /* FEATURES_OK does not stick: refused */
	if ((st & 0x04) && !(vp->status & 0x04)) {
		vp->status = st;
		if (vp->ops->driver_ok(vp) < 0)
			st |= 0x40; /* NEEDS_RESET: the backend could not start */
	}
	vp->status = st;
}

static void common_write(struct virtio_pci *vp, unsigned off, uint64_t v)
{
	struct virtio_pci_queue *q = selq(vp);
	/* queue layout may change only before DRIVER_OK and while disabled */
	bool qw = q && !q->enabled && !(vp->status & 0x04);

	switch (off) {
	case CC(device_feature_select): vp->dfselect = (uint32_t)v; break;
	case CC(driver_feature_select): vp->gfselect = (uint32_t)v; break;
	case CC(driver_feature):
		if (vp->gfselect < 2 && !(vp->status & 0x08)) {
			uint64_t mask = 0xffffffffull << (32 * vp->gfselect);
			vp->driver_features = (vp->driver_features & ~mask) | (((uint64_t)(uint32_t)v << (32 * vp->gfselect)) & mask);
		}
		break;
	case CC(config_msix_vector):
		vp->config_vector = (uint16_t)v < vp->nvectors ? (uint16_t)v : VPCI_NO_VECTOR;
		rebind_all(vp);
		break;
	case CC(device_status): set_status(vp, (uint8_t)v); break;
	case CC(queue_select): vp->queue_select = (uint16_t)v; break;
	case CC(queue_size):
		/* a power of two no larger than the maximum */
		if (qw && v && v <= vp->queue_max && !(v & (v - 1)))
			q->size = (uint16_t)v;
		break;
	case CC(queue_msix_vector):
		if (q) {
			q->vector = (uint16_t)v < vp->nvectors ? (uint16_t)v : VPCI_NO_VECTOR;
			rebind_all(vp);
		}
		break;
	case CC(queue_enable):
		if (qw && v == 1)
			q->enabled = true;
		break;
	case CC(queue_desc): if (qw) q->desc = v; break;
	case CC(queue_desc) + 4: if (qw) q->desc = (q->desc & 0xffffffffull) | (v << 32); break;
	case CC(queue_driver): if (qw) q->driver = v; break;
	case CC(queue_driver) + 4: if (qw) q->driver = (q->driver & 0xffffffffull) | (v << 32); break;
	case CC(queue_device): if (qw) q->device = v; break;
	case CC(queue_device) + 4: if (qw) q->device = (q->device & 0xffffffffull) | (v << 32); break;
	default: break;
	}
}

/* 32-bit halves of the 64-bit queue addresses are the common access. */
static void common_access(struct virtio_pci *vp, unsigned off, void *data, unsigned len, bool is_write)
{
	uint64_t v = 0;

	if (off + len > sizeof(struct common_cfg))
		goto unclaimed;
	if (is_write) {
		memcpy(&v, data, len);
		if (len == 8 || len == 4 || len == 2 || len == 1) {
			if ((off == CC(queue_desc) || off == CC(queue_driver) || off == CC(queue_device)) && len == 4) {
				struct virtio_pci_queue *q = selq(vp);
				uint64_t *f = !q ? NULL : off == CC(queue_desc) ? &q->desc
						      : off == CC(queue_driver) ? &q->driver : &q->device;
				if (f && !q->enabled && !(vp->status & 0x04))
					*f = (*f & ~0xffffffffull) | v;
				return;
			}
			common_write(vp, off, v);
		}
		return;
	}
	switch (off) {
	case CC(queue_desc) + 4: v = selq(vp) ? selq(vp)->desc >> 32 : 0; break;
	case CC(queue_driver) + 4: v = selq(vp) ? selq(vp)->driver >> 32 : 0; break;
	case CC(queue_device) + 4: v = selq(vp) ? selq(vp)->device >> 32 : 0; break;
	default: v = common_read(vp, off); break;
	}
	memcpy(data, &v, len);
	return;
unclaimed:
	if (!is_write)
		memset(data, 0, len);
}

/* ---- BAR accesses -------------------------------------------------------- */

static struct virtio_pci *to_vp(struct pci_dev *d)
{
	return container_of(d, struct virtio_pci, pci);
}

static void bar_access(struct pci_dev *d, unsigned bar, uint64_t off, void *data, unsigned len, bool is_write)
{
	struct virtio_pci *vp = to_vp(d);

	pthread_mutex_lock(&vp->lock);
	if (bar == BAR_MSIX) {
		if (off < PBA_OFF && off + len <= vp->nvectors * 16u && len == 4) {
			uint32_t *w = &vp->msix[off / 16][(off % 16) / 4];
			if (is_write) {
				memcpy(w, data, 4);
				unsigned vec = (unsigned)(off / 16);
				irq_msi_set(&vp->vm->irqs, vp->gsi[vec],
					    vp->msix[vec][0] | ((uint64_t)vp->msix[vec][1] << 32), vp->msix[vec][2]);
				rebind_all(vp);
			} else {
				memcpy(data, w, 4);
			}
		} else if (!is_write) {
			memset(data, 0, len); /* PBA: nothing pending that we track */
		}
	} else if (off < ISR_OFF) {
		common_access(vp, (unsigned)off, data, len, is_write);
	} else if (off < DEVCFG_OFF) {
		if (!is_write) {
			memset(data, 0, len);
			*(uint8_t *)data = __atomic_exchange_n(&vp->isr, 0, __ATOMIC_SEQ_CST); /* read-to-clear */
		}
	} else if (off < NOTIFY_OFF) {
		if (is_write)
			vp->ops->config_write(vp, (unsigned)(off - DEVCFG_OFF), data, len);
		else
			vp->ops->config_read(vp, (unsigned)(off - DEVCFG_OFF), data, len);
	} else if (is_write && (off - NOTIFY_OFF) / NOTIFY_MULT < vp->nqueues) {
		/* Only reached where KVM could not take the ioeventfd. */
		uint64_t one = 1;
		if (write(vp->q[(off - NOTIFY_OFF) / NOTIFY_MULT].kick_fd, &one, sizeof(one)) < 0) {
			/* saturated: the device has a kick pending */
		}
	} else if (!is_write) {
		memset(data, 0, len);
	}
	pthread_mutex_unlock(&vp->lock);
}

static void vp_bar_read(struct pci_dev *d, unsigned bar, uint64_t off, void *data, unsigned len)
{
	bar_access(d, bar, off, data, len, false);
}

static void vp_bar_write(struct pci_dev *d, unsigned bar, uint64_t off, const void *data, unsigned len)
{
	bar_access(d, bar, off, (void *)(uintptr_t)data, len, true);
}

/* The notify area moved: move every queue's ioeventfd with it. */
static void vp_bar_moved(struct pci_dev *d, unsigned bar, uint64_t old_addr, uint64_t new_addr)
{
	struct virtio_pci *vp = to_vp(d);

	(void)old_addr;
	if (bar != BAR_CFG)
		return;
	for (unsigned i = 0; i < vp->nqueues; i++) {
		if (vp->notify_base)
			irq_ioeventfd(vp->vm->vm_fd, vp->q[i].kick_fd, vp->notify_base + NOTIFY_OFF + NOTIFY_MULT * i, 0,
				      false);
		if (new_addr)
			irq_ioeventfd(vp->vm->vm_fd, vp->q[i].kick_fd, new_addr + NOTIFY_OFF + NOTIFY_MULT * i, 0, true);
	}
	vp->notify_base = new_addr;
}

static void vp_cfg_written(struct pci_dev *d, unsigned off, unsigned len)
{
	struct virtio_pci *vp = to_vp(d);
	unsigned ctl = vp->msix_cap + 2;

	if (off <= ctl + 1 && off + len > ctl) {
		uint16_t v = pci_cfg_get16(d, ctl);
		pthread_mutex_lock(&vp->lock);
		vp->msix_enabled = v & 0x8000;
		vp->msix_masked = v & 0x4000;
		rebind_all(vp);
		pthread_mutex_unlock(&vp->lock);
	}
}

static const struct pci_dev_ops vp_pci_ops = {
	.bar_read = vp_bar_read,
	.bar_write = vp_bar_write,
	.bar_moved = vp_bar_moved,
	.cfg_written = vp_cfg_written,
};

static void add_vcap(struct virtio_pci *vp, uint8_t type, uint8_t bar, uint32_t off, uint32_t len, unsigned extra)
{
	unsigned c = pci_dev_add_cap(&vp->pci, CAP_VNDR, 16 + extra);

	vp->pci.cfg[c + 2] = (uint8_t)(16 + extra);
	vp->pci.cfg[c + 3] = type;
	vp->pci.cfg[c + 4] = bar;
	pci_cfg_set32(&vp->pci, c + 8, off);
	pci_cfg_set32(&vp->pci, c + 12, len);
	if (type == CFG_NOTIFY)
		pci_cfg_set32(&vp->pci, c + 16, NOTIFY_MULT);
}

int virtio_pci_init(struct virtio_pci *vp, struct vm *vm, const struct virtio_pci_ops *ops, uint16_t device_id,
		    uint64_t features, unsigned nqueues, uint16_t queue_max, struct err *e)
{
	memset(vp, 0, sizeof(*vp));
	vp->vm = vm;
	vp->ops = ops;
	vp->config_call_fd = vp->config_irqfd_gsi = -1;
	pthread_mutex_init(&vp->lock, NULL);
	for (unsigned i = 0; i < VPCI_MAX_QUEUES; i++)
		vp->q[i].kick_fd = vp->q[i].call_fd = vp->q[i].irqfd_gsi = -1;
	if (nqueues > VPCI_MAX_QUEUES)
		return err_set(e, -EINVAL, "virtio device with %u queues: at most %d", nqueues, VPCI_MAX_QUEUES);
	vp->nqueues = nqueues;
	vp->queue_max = queue_max;
	vp->device_features = features;
	vp->nvectors = nqueues + 1 < VPCI_MAX_VECTORS ? nqueues + 1 : VPCI_MAX_VECTORS;
	for (unsigned i = 0; i < nqueues; i++) {
		vp->q[i].kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		vp->q[i].call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (vp->q[i].kick_fd < 0 || vp->q[i].call_fd < 0)
			return err_errno(e, -errno, "eventfd for virtio queue %u", i);
	}
	vp->config_call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vp->config_call_fd < 0)
		return err_errno(e, -errno, "eventfd for virtio config interrupts");
	for (unsigned v = 0; v < vp->nvectors; v++) {
		vp->msix[v][3] = 1; /* masked until the driver programs it */
		int r = irq_msi_alloc(&vm->irqs, &vp->gsi[v]);
		if (r < 0)
			return err_errno(e, r, "cannot allocate an MSI route");
	}
	/* virtio 1.x ids: 0x1040 + device type; class "network/other" etc. is
	 * the device's business, passed in via device_id's class below. */
	pci_dev_init(&vp->pci, &vp_pci_ops, "virtio", 0x1af4, (uint16_t)(0x1040 + device_id),
		     device_id == 1 ? 0x02000001 : 0xff000001, 0x1af4, device_id);
	pci_dev_add_bar(&vp->pci, BAR_CFG, CFG_BAR_SIZE, false);
	pci_dev_add_bar(&vp->pci, BAR_MSIX, MSIX_BAR_SIZE, false);
	add_vcap(vp, CFG_COMMON, BAR_CFG, COMMON_OFF, sizeof(struct common_cfg), 0);
	add_vcap(vp, CFG_ISR, BAR_CFG, ISR_OFF, 1, 0);
	add_vcap(vp, CFG_DEVICE, BAR_CFG, DEVCFG_OFF, 0x100, 0);
	add_vcap(vp, CFG_NOTIFY, BAR_CFG, NOTIFY_OFF, NOTIFY_MULT * nqueues, 4);
	vp->msix_cap = pci_dev_add_cap(&vp->pci, CAP_MSIX, 12);
	pci_cfg_set16(&vp->pci, vp->msix_cap + 2, (uint16_t)(vp->nvectors - 1));
	pci_cfg_set32(&vp->pci, vp->msix_cap + 4, 0 | BAR_MSIX);
	pci_cfg_set32(&vp->pci, vp->msix_cap + 8, PBA_OFF | BAR_MSIX);
	vp->pci.wmask[vp->msix_cap + 3] = 0xc0; /* enable, function mask */
	vp->config_vector = VPCI_NO_VECTOR;
	for (unsigned i = 0; i < nqueues; i++) {
		vp->q[i].size = queue_max;
		vp->q[i].vector = VPCI_NO_VECTOR;
	}
	return 0;
}

void virtio_pci_get_state(struct virtio_pci *vp, struct virtio_pci_state *st)
{
	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&vp->lock);
	st->driver_features = vp->driver_features;
	st->dfselect = vp->dfselect;
	st->gfselect = vp->gfselect;
	st->status = vp->status;
	st->config_generation = vp->config_generation;
	st->isr = vp->isr;
	st->queue_select = vp->queue_select;
	st->config_vector = vp->config_vector;
	st->nqueues = (uint16_t)vp->nqueues;
	for (unsigned i = 0; i < vp->nqueues; i++) {
		st->q[i].size = vp->q[i].size;
		st->q[i].vector = vp->q[i].vector;
		st->q[i].enabled = vp->q[i].enabled;
		st->q[i].desc = vp->q[i].desc;
		st->q[i].driver = vp->q[i].driver;
		st->q[i].device = vp->q[i].device;
	}
	memcpy(st->msix, vp->msix, sizeof(st->msix));
	pthread_mutex_unlock(&vp->lock);
	memcpy(st->pci_cfg, vp->pci.cfg, PCI_CFG_SIZE);
}

int virtio_pci_set_state(struct virtio_pci *vp, const struct virtio_pci_state *st)
{
	if (st->nqueues != vp->nqueues || (st->driver_features & ~vp->device_features) ||
	    (st->config_vector != VPCI_NO_VECTOR && st->config_vector >= vp->nvectors))
		return -EINVAL;
	for (unsigned i = 0; i < vp->nqueues; i++)
		if (!st->q[i].size || st->q[i].size > vp->queue_max || (st->q[i].size & (st->q[i].size - 1)) ||
		    (st->q[i].vector != VPCI_NO_VECTOR && st->q[i].vector >= vp->nvectors) || st->q[i].enabled > 1)
			return -EINVAL;
	/* config space first: it moves the BARs and so the ioeventfds */
	pci_dev_load_config(&vp->pci, st->pci_cfg);
	pthread_mutex_lock(&vp->lock);
	vp->driver_features = st->driver_features;
	vp->dfselect = st->dfselect;
	vp->gfselect = st->gfselect;
	vp->status = st->status;
	vp->config_generation = st->config_generation;
	vp->isr = st->isr;
	vp->queue_select = st->queue_select;
	vp->config_vector = st->config_vector;
	for (unsigned i = 0; i < vp->nqueues; i++) {
		vp->q[i].size = st->q[i].size;
		vp->q[i].vector = st->q[i].vector;
		vp->q[i].enabled = st->q[i].enabled;
		vp->q[i].desc = st->q[i].desc;
		vp->q[i].driver = st->q[i].driver;
		vp->q[i].device = st->q[i].device;
	}
	memcpy(vp->msix, st->msix, sizeof(vp->msix));
	uint16_t ctl = pci_cfg_get16(&vp->pci, vp->msix_cap + 2);
	vp->msix_enabled = ctl & 0x8000;
	vp->msix_masked = ctl & 0x4000;
	for (unsigned v = 0; v < vp->nvectors; v++)
		irq_msi_set(&vp->vm->irqs, vp->gsi[v], vp->msix[v][0] | ((uint64_t)vp->msix[v][1] << 32), vp->msix[v][2]);
	rebind_all(vp);
	pthread_mutex_unlock(&vp->lock);
	return 0;
}

int virtio_pci_register(struct virtio_pci *vp, struct pci_bus *bus, struct err *e)
{
	return pci_register(bus, &vp->pci, e);
}

void virtio_pci_exit(struct virtio_pci *vp)
{
	for (unsigned i = 0; i < vp->nqueues; i++) {
		if (vp->q[i].irqfd_gsi >= 0)
			irq_irqfd(vp->vm->vm_fd, vp->q[i].call_fd, (uint32_t)vp->q[i].irqfd_gsi, false);
		if (vp->notify_base)
			irq_ioeventfd(vp->vm->vm_fd, vp->q[i].kick_fd, vp->notify_base + NOTIFY_OFF + NOTIFY_MULT * i, 0,
				      false);
		if (vp->q[i].kick_fd >= 0)
			close(vp->q[i].kick_fd);
		if (vp->q[i].call_fd >= 0)
			close(vp->q[i].call_fd);
	}
	if (vp->config_irqfd_gsi >= 0)
		irq_irqfd(vp->vm->vm_fd, vp->config_call_fd, (uint32_t)vp->config_irqfd_gsi, false);
	if (vp->config_call_fd >= 0)
		close(vp->config_call_fd);
	pthread_mutex_destroy(&vp->lock);
}
