/* SPDX-License-Identifier: MIT */
/*
 * vdpa/fault_vdpa.c - a vDPA device that forwards every op to another and
 * fails one call on demand (fault_vdpa.h).
 */
#include "vdpa/fault_vdpa.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fault_vdpa {
	struct vdpa_dev dev; /* what the user holds: first, see to_fault() */
	struct vdpa_dev *inner;
	pthread_mutex_t lock;
	bool armed;
	pthread_t owner;     /* only its calls are counted */
	int fail_at;         /* -1: count only */
	char fail_op[32];    /* "" for any op */
	unsigned calls, op_calls;
	char injected[96];
};

static struct fault_vdpa *to_fault(struct vdpa_dev *d)
{
	return container_of(d, struct fault_vdpa, dev);
}

/* Counts a call of op by the armed thread; -EIO, before the inner device
 * sees it (as if it had refused), when it is the one to fail. Only what
 * the device is told to do counts: the set_* ops, get_vring_base, the
 * IOTLB, suspend and resume; discovery (features, status, config space,
 * groups, the IOVA range) passes straight through. */
static int injected(struct fault_vdpa *fv, const char *op)
{
	int r = 0;

	pthread_mutex_lock(&fv->lock);
	if (fv->armed && pthread_equal(fv->owner, pthread_self())) {
		unsigned n = fv->calls++;
		bool named = fv->fail_op[0] && !strcmp(fv->fail_op, op);
		unsigned k = named ? fv->op_calls++ : 0;
		if (fv->fail_at >= 0 && !fv->injected[0] &&
		    (fv->fail_op[0] ? named && k == (unsigned)fv->fail_at : n == (unsigned)fv->fail_at)) {
			snprintf(fv->injected, sizeof(fv->injected), "call %u (%s)", n, op);
			r = -EIO;
		}
	}
	pthread_mutex_unlock(&fv->lock);
	return r;
}

static void fault_destroy(struct vdpa_dev *d)
{
	struct fault_vdpa *fv = to_fault(d);

	fv->inner->ops->destroy(fv->inner);
	pthread_mutex_destroy(&fv->lock);
	free(fv);
}

static uint32_t fault_device_id(struct vdpa_dev *d)
{
	struct fault_vdpa *fv = to_fault(d);

	return fv->inner->ops->device_id(fv->inner);
}

static int fault_get_features(struct vdpa_dev *d, uint64_t *features)
{
	struct vdpa_dev *inner = to_fault(d)->inner;

	return inner->ops->get_features(inner, features);
}

static int fault_set_features(struct vdpa_dev *d, uint64_t features)
{
	struct fault_vdpa *fv = to_fault(d);
	int r = injected(fv, "set_features");

	return r ? r : fv->inner->ops->set_features(fv->inner, features);
}

static int fault_get_backend_features(struct vdpa_dev *d, uint64_t *features)
{
	struct vdpa_dev *inner = to_fault(d)->inner;

	return inner->ops->get_backend_features(inner, features);
}

static int fault_set_backend_features(struct vdpa_dev *d, uint64_t features)
{
	struct fault_vdpa *fv = to_fault(d);
	int r = injected(fv, "set_backend_features");

	return r ? r : fv->inner->ops->set_backend_features(fv->inner, features);
}

static int fault_get_status(struct vdpa_dev *d, uint8_t *status)
{
	struct vdpa_dev *inner = to_fault(d)->inner;

	return inner->ops->get_status(inner, status);
}

static int fault_set_status(struct vdpa_dev *d, uint8_t status)
{
	struct fault_vdpa *fv = to_fault(d);
	int r = injected(fv, "set_status");

	return r ? r : fv->inner->ops->set_status(fv->inner, status);
}

static int fault_get_config(struct vdpa_dev *d, unsigned off, void *buf, unsigned len)
{
	struct vdpa_dev *inner = to_fault(d)->inner;

	return inner->ops->get_config(inner, off, buf, len);
}

static int fault_set_config(struct vdpa_dev *d, unsigned off, const void *buf, unsigned len)
{
	struct fault_vdpa *fv = to_fault(d);
	int r = injected(fv, "set_config");

	return r ? r : fv->inner->ops->set_config(fv->inner, off, buf, len);
}

static unsigned fault_vqs_count(struct vdpa_dev *d)
{
	struct fault_vdpa *fv = to_fault(d);

	return fv->inner->ops->vqs_count(fv->inner);
}

static uint16_t fault_vring_num_max(struct vdpa_dev *d)
{
	struct fault_vdpa *fv = to_fault(d);

	return fv->inner->ops->vring_num_max(fv->inner);
}

static int fault_set_vring_num(struct vdpa_dev *d, unsigned idx, uint16_t num)
{
	struct fault_vdpa *fv = to_fault(d);
	int r = injected(fv, "set_vring_num");

	return r ? r : fv->inner->ops->set_vring_num(fv->inner, idx, num);
}

static int fault_set_vring_addr(struct vdpa_dev *d, unsigned idx, const struct vdpa_vring_addr *a)
{
	struct fault_vdpa *fv = to_fault(d);
	int r = injected(fv, "set_vring_addr");

	return r ? r : fv->inner->ops->set_vring_addr(fv->inner, idx, a);
}

static int fault_set_vring_base(struct vdpa_dev *d, unsigned idx, uint16_t last_avail)
{
	struct fault_vdpa *fv = to_fault(d);
	int r = injected(fv, "set_vring_base");

	return r ? r : fv->inner->ops->set_vring_base(fv->inner, idx, last_avail);
}

static int fault_get_vring_base(struct vdpa_dev *d, unsigned idx, uint16_t *last_avail)
{
	struct fault_vdpa *fv = to_fault(d);
	int r = injected(fv, "get_vring_base");

	return r ? r : fv->inner->ops->get_vring_base(fv->inner, idx, last_avail);
}

static int fault_set_vring_enable(struct vdpa_dev *d, unsigned idx, bool enable)
{
	struct fault_vdpa *fv = to_fault(d);
	int r = injected(fv, "set_vring_enable");

	return r ? r : fv->inner->ops->set_vring_enable(fv->inner, idx, enable);
}

static int fault_set_vring_kick(struct vdpa_dev *d, unsigned idx, int fd)
{
	struct fault_vdpa *fv = to_fault(d);
	int r = injected(fv, "set_vring_kick");

	return r ? r : fv->inner->ops->set_vring_kick(fv->inner, idx, fd);
}

static int fault_set_vring_call(struct vdpa_dev *d, unsigned idx, int fd)
{
	struct fault_vdpa *fv = to_fault(d);
	int r = injected(fv, "set_vring_call");

	return r ? r : fv->inner->ops->set_vring_call(fv->inner, idx, fd);
}

static int fault_set_config_call(struct vdpa_dev *d, int fd)
{
	struct fault_vdpa *fv = to_fault(d);
	int r = injected(fv, "set_config_call");

	return r ? r : fv->inner->ops->set_config_call(fv->inner, fd);
}

static int fault_get_iova_range(struct vdpa_dev *d, uint64_t *first, uint64_t *last)
{
	struct vdpa_dev *inner = to_fault(d)->inner;

	return inner->ops->get_iova_range(inner, first, last);
}

static int fault_iotlb_update(struct vdpa_dev *d, unsigned asid, uint64_t iova, uint64_t size, void *hva, unsigned perm)
{
	struct fault_vdpa *fv = to_fault(d);
	int r = injected(fv, "iotlb_update");

	return r ? r : fv->inner->ops->iotlb_update(fv->inner, asid, iova, size, hva, perm);
}

static int fault_iotlb_invalidate(struct vdpa_dev *d, unsigned asid, uint64_t iova, uint64_t size)
{
	struct fault_vdpa *fv = to_fault(d);
	int r = injected(fv, "iotlb_invalidate");

	return r ? r : fv->inner->ops->iotlb_invalidate(fv->inner, asid, iova, size);
}

static int fault_iotlb_batch_begin(struct vdpa_dev *d, unsigned asid)
{
	struct fault_vdpa *fv = to_fault(d);
	int r = injected(fv, "iotlb_batch_begin");

	return r ? r : fv->inner->ops->iotlb_batch_begin(fv->inner, asid);
}

static int fault_iotlb_batch_end(struct vdpa_dev *d, unsigned asid)
{
	struct fault_vdpa *fv = to_fault(d);
	int r = injected(fv, "iotlb_batch_end");

	return r ? r : fv->inner->ops->iotlb_batch_end(fv->inner, asid);
}

static unsigned fault_group_num(struct vdpa_dev *d)
{
	struct fault_vdpa *fv = to_fault(d);

	return fv->inner->ops->group_num(fv->inner);
}

static unsigned fault_as_num(struct vdpa_dev *d)
{
	struct fault_vdpa *fv = to_fault(d);

	return fv->inner->ops->as_num(fv->inner);
}

static int fault_get_vring_group(struct vdpa_dev *d, unsigned idx, unsigned *group)
{
	struct vdpa_dev *inner = to_fault(d)->inner;

	return inner->ops->get_vring_group(inner, idx, group);
}

static int fault_get_vring_desc_group(struct vdpa_dev *d, unsigned idx, unsigned *group)
{
	struct vdpa_dev *inner = to_fault(d)->inner;

	return inner->ops->get_vring_desc_group(inner, idx, group);
}

static int fault_set_group_asid(struct vdpa_dev *d, unsigned group, unsigned asid)
{
	struct fault_vdpa *fv = to_fault(d);
	int r = injected(fv, "set_group_asid");

	return r ? r : fv->inner->ops->set_group_asid(fv->inner, group, asid);
}

static int fault_suspend(struct vdpa_dev *d)
{
	struct fault_vdpa *fv = to_fault(d);
	int r = injected(fv, "suspend");

	return r ? r : fv->inner->ops->suspend(fv->inner);
}

static int fault_resume(struct vdpa_dev *d)
{
	struct fault_vdpa *fv = to_fault(d);
	int r = injected(fv, "resume");

	return r ? r : fv->inner->ops->resume(fv->inner);
}

static const struct vdpa_ops fault_ops = {
	.device_id = fault_device_id,
	.get_features = fault_get_features,
	.set_features = fault_set_features,
	.get_backend_features = fault_get_backend_features,
	.set_backend_features = fault_set_backend_features,
	.get_status = fault_get_status,
	.set_status = fault_set_status,
	.get_config = fault_get_config,
	.set_config = fault_set_config,
	.vqs_count = fault_vqs_count,
	.vring_num_max = fault_vring_num_max,
	.set_vring_num = fault_set_vring_num,
	.set_vring_addr = fault_set_vring_addr,
	.set_vring_base = fault_set_vring_base,
	.get_vring_base = fault_get_vring_base,
	.set_vring_enable = fault_set_vring_enable,
	.set_vring_kick = fault_set_vring_kick,
	.set_vring_call = fault_set_vring_call,
	.set_config_call = fault_set_config_call,
	.get_iova_range = fault_get_iova_range,
	.iotlb_update = fault_iotlb_update,
	.iotlb_invalidate = fault_iotlb_invalidate,
	.iotlb_batch_begin = fault_iotlb_batch_begin,
	.iotlb_batch_end = fault_iotlb_batch_end,
	.group_num = fault_group_num,
	.as_num = fault_as_num,
	.get_vring_group = fault_get_vring_group,
	.get_vring_desc_group = fault_get_vring_desc_group,
	.set_group_asid = fault_set_group_asid,
	.suspend = fault_suspend,
	.resume = fault_resume,
	.destroy = fault_destroy,
};

struct vdpa_dev *fault_vdpa_wrap(struct vdpa_dev *inner, struct err *e)
{
	struct fault_vdpa *fv = calloc(1, sizeof(*fv));

	if (!fv) {
		err_set(e, -ENOMEM, "out of memory for a fault-injecting device");
		return NULL;
	}
	fv->dev = (struct vdpa_dev){ .ops = &fault_ops, .name = inner->name, .keeps_iotlb = inner->keeps_iotlb };
	fv->inner = inner;
	fv->fail_at = -1;
	pthread_mutex_init(&fv->lock, NULL);
	return &fv->dev;
}

struct vdpa_dev *fault_vdpa_inner(struct vdpa_dev *d)
{
	return d->ops == &fault_ops ? to_fault(d)->inner : d;
}

void fault_vdpa_arm(struct vdpa_dev *d, int at, const char *op)
{
	struct fault_vdpa *fv = to_fault(d);

	pthread_mutex_lock(&fv->lock);
	fv->armed = true;
	fv->owner = pthread_self();
	fv->fail_at = at;
	snprintf(fv->fail_op, sizeof(fv->fail_op), "%s", op ? op : "");
	fv->calls = fv->op_calls = 0;
	fv->injected[0] = '\0';
	pthread_mutex_unlock(&fv->lock);
}

unsigned fault_vdpa_disarm(struct vdpa_dev *d, char *injected, size_t len)
{
	struct fault_vdpa *fv = to_fault(d);

	pthread_mutex_lock(&fv->lock);
	unsigned n = fv->calls;
	fv->armed = false;
	if (injected && len)
		snprintf(injected, len, "%s", fv->injected);
	pthread_mutex_unlock(&fv->lock);
	return n;
}
