/* SPDX-License-Identifier: MIT */
/*
 * vdpa/vhost_vdpa.c - see vhost_vdpa.h. Ioctl semantics and versions from
 * Linux (drivers/vhost/vdpa.c, QEMU
 * hw/virtio/vhost-vdpa.c for the call order).
 */
#include "vdpa/vhost_vdpa.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "vmm/vhost_compat.h"

_Static_assert(VDPA_BF_IOTLB_MSG_V2 == VHOST_BACKEND_F_IOTLB_MSG_V2 && VDPA_BF_IOTLB_BATCH == VHOST_BACKEND_F_IOTLB_BATCH &&
		       VDPA_BF_IOTLB_ASID == VHOST_BACKEND_F_IOTLB_ASID && VDPA_BF_SUSPEND == VHOST_BACKEND_F_SUSPEND &&
		       VDPA_BF_RESUME == VHOST_BACKEND_F_RESUME &&
		       VDPA_BF_ENABLE_AFTER_DRIVER_OK == VHOST_BACKEND_F_ENABLE_AFTER_DRIVER_OK &&
		       VDPA_BF_DESC_ASID == VHOST_BACKEND_F_DESC_ASID &&
		       VDPA_BF_IOTLB_PERSIST == VHOST_BACKEND_F_IOTLB_PERSIST,
	       "tern's backend feature bits are the kernel's");
_Static_assert(VDPA_PERM_RO == VHOST_ACCESS_RO && VDPA_PERM_WO == VHOST_ACCESS_WO && VDPA_PERM_RW == VHOST_ACCESS_RW,
	       "tern's IOTLB permissions are the kernel's");

struct vhost_vdpa {
	struct vdpa_dev vdpa;
	int fd;
	char path[PATH_MAX];
	uint64_t backend;    /* negotiated */
	uint32_t device_id, nvqs;
	uint16_t num_max;
	unsigned batch_depth;
};

static struct vhost_vdpa *to_vv(struct vdpa_dev *d)
{
	return container_of(d, struct vhost_vdpa, vdpa);
}

/* One ioctl; failures are logged with the request's name and queue. */
static int vv_ioctl(struct vhost_vdpa *v, unsigned long req, void *arg, const char *name, int queue)
{
	if (ioctl(v->fd, req, arg) == 0)
		return 0;
	int r = -errno;
	if (queue >= 0)
		pr_warn("%s: %s queue %d: %s", v->path, name, queue, strerror(-r));
	else
		pr_warn("%s: %s: %s", v->path, name, strerror(-r));
	return r;
}

/* Probes that may legitimately be refused are not logged. */
static int vv_quiet(struct vhost_vdpa *v, unsigned long req, void *arg)
{
	return ioctl(v->fd, req, arg) == 0 ? 0 : -errno;
}

static uint32_t vv_device_id(struct vdpa_dev *d)
{
	return to_vv(d)->device_id;
}

static int vv_get_features(struct vdpa_dev *d, uint64_t *f)
{
	return vv_ioctl(to_vv(d), VHOST_GET_FEATURES, f, "VHOST_GET_FEATURES", -1);
}

static int vv_set_features(struct vdpa_dev *d, uint64_t f)
{
	return vv_ioctl(to_vv(d), VHOST_SET_FEATURES, &f, "VHOST_SET_FEATURES", -1);
}

static int vv_get_backend_features(struct vdpa_dev *d, uint64_t *f)
{
	return vv_ioctl(to_vv(d), VHOST_GET_BACKEND_FEATURES, f, "VHOST_GET_BACKEND_FEATURES", -1);
}

static int vv_set_backend_features(struct vdpa_dev *d, uint64_t f)
{
	struct vhost_vdpa *v = to_vv(d);
	int r = vv_ioctl(v, VHOST_SET_BACKEND_FEATURES, &f, "VHOST_SET_BACKEND_FEATURES", -1);

	if (r == 0)
		v->backend = f;
	return r;
}

static int vv_get_status(struct vdpa_dev *d, uint8_t *st)
{
	return vv_ioctl(to_vv(d), VHOST_VDPA_GET_STATUS, st, "VHOST_VDPA_GET_STATUS", -1);
}

static int vv_set_status(struct vdpa_dev *d, uint8_t st)
{
	return vv_ioctl(to_vv(d), VHOST_VDPA_SET_STATUS, &st, "VHOST_VDPA_SET_STATUS", -1);
}

static int vv_config(struct vdpa_dev *d, unsigned off, void *buf, unsigned len, bool write)
{
	/* struct vhost_vdpa_config {off, len} then len bytes */
	union {
		struct vhost_vdpa_config h;
		uint8_t raw[sizeof(struct vhost_vdpa_config) + 256];
	} c;

	if (len > sizeof(c.raw) - sizeof(c.h))
		return -EINVAL;
	memset(&c, 0, sizeof(c));
	c.h.off = off;
	c.h.len = len;
	if (write)
		memcpy(c.raw + sizeof(c.h), buf, len);
	int r = vv_ioctl(to_vv(d), write ? VHOST_VDPA_SET_CONFIG : VHOST_VDPA_GET_CONFIG, &c,
			 write ? "VHOST_VDPA_SET_CONFIG" : "VHOST_VDPA_GET_CONFIG", -1);
	if (r == 0 && !write)
		memcpy(buf, c.raw + sizeof(c.h), len);
	return r;
}

static int vv_get_config(struct vdpa_dev *d, unsigned off, void *buf, unsigned len)
{
	return vv_config(d, off, buf, len, false);
}

static int vv_set_config(struct vdpa_dev *d, unsigned off, const void *buf, unsigned len)
{
	return vv_config(d, off, (void *)buf, len, true);
}

static unsigned vv_vqs_count(struct vdpa_dev *d)
{
	return to_vv(d)->nvqs;
}

static uint16_t vv_vring_num_max(struct vdpa_dev *d)
{
	return to_vv(d)->num_max;
}

static int vv_state(struct vdpa_dev *d, unsigned long req, const char *name, unsigned idx, unsigned num)
{
	struct vhost_vring_state s = { idx, num };
	return vv_ioctl(to_vv(d), req, &s, name, (int)idx);
}

static int vv_set_vring_num(struct vdpa_dev *d, unsigned idx, uint16_t num)
{
	return vv_state(d, VHOST_SET_VRING_NUM, "VHOST_SET_VRING_NUM", idx, num);
}

static int vv_set_vring_addr(struct vdpa_dev *d, unsigned idx, const struct vdpa_vring_addr *a)
{
	/* for vhost-vdpa the "user" addresses are IOVAs */
	struct vhost_vring_addr x = { .index = idx, .desc_user_addr = a->desc, .avail_user_addr = a->avail,
				      .used_user_addr = a->used };
	return vv_ioctl(to_vv(d), VHOST_SET_VRING_ADDR, &x, "VHOST_SET_VRING_ADDR", (int)idx);
}

static int vv_set_vring_base(struct vdpa_dev *d, unsigned idx, uint16_t base)
{
	return vv_state(d, VHOST_SET_VRING_BASE, "VHOST_SET_VRING_BASE", idx, base);
}

static int vv_get_vring_base(struct vdpa_dev *d, unsigned idx, uint16_t *base)
{
	struct vhost_vring_state s = { idx, 0 };
	int r = vv_ioctl(to_vv(d), VHOST_GET_VRING_BASE, &s, "VHOST_GET_VRING_BASE", (int)idx);

	if (r == 0)
		*base = (uint16_t)s.num; /* split rings: the next avail index */
	return r;
}

static int vv_set_vring_enable(struct vdpa_dev *d, unsigned idx, bool en)
{
	return vv_state(d, VHOST_VDPA_SET_VRING_ENABLE, "VHOST_VDPA_SET_VRING_ENABLE", idx, en);
}

static int vv_set_vring_kick(struct vdpa_dev *d, unsigned idx, int fd)
{
	struct vhost_vring_file f = { idx, fd };
	return vv_ioctl(to_vv(d), VHOST_SET_VRING_KICK, &f, "VHOST_SET_VRING_KICK", (int)idx);
}

static int vv_set_vring_call(struct vdpa_dev *d, unsigned idx, int fd)
{
	struct vhost_vring_file f = { idx, fd };
	return vv_ioctl(to_vv(d), VHOST_SET_VRING_CALL, &f, "VHOST_SET_VRING_CALL", (int)idx);
}

static int vv_set_config_call(struct vdpa_dev *d, int fd)
{
	return vv_ioctl(to_vv(d), VHOST_VDPA_SET_CONFIG_CALL, &fd, "VHOST_VDPA_SET_CONFIG_CALL", -1);
}

static int vv_get_iova_range(struct vdpa_dev *d, uint64_t *first, uint64_t *last)
{
	struct vhost_vdpa_iova_range r;
	int rc = vv_quiet(to_vv(d), VHOST_VDPA_GET_IOVA_RANGE, &r);

	if (rc == -ENOTTY || rc == -EOPNOTSUPP) { /* before 5.10: the whole space */
		*first = 0;
		*last = UINT64_MAX;
		return 0;
	}
	if (rc == 0) {
		*first = r.first;
		*last = r.last;
	}
	return rc;
}

size_t vhost_vdpa_iotlb_msg(void *buf, bool v2, unsigned asid, uint8_t type, uint64_t iova, uint64_t size,
			    uint64_t uaddr, unsigned perm)
{
	struct vhost_iotlb_msg m = { .iova = iova, .size = size, .uaddr = uaddr, .perm = (uint8_t)perm, .type = type };

	if (v2) {
		struct vhost_msg_v2 x;
		memset(&x, 0, sizeof(x));
		x.type = VHOST_IOTLB_MSG_V2;
		x.asid = asid;
		x.iotlb = m;
		memcpy(buf, &x, sizeof(x));
		return sizeof(x);
	}
	struct vhost_msg x;
	memset(&x, 0, sizeof(x));
	x.type = VHOST_IOTLB_MSG;
	x.iotlb = m;
	memcpy(buf, &x, sizeof(x));
	return sizeof(x);
}

static const char *const msg_names[] = { [VHOST_IOTLB_UPDATE] = "IOTLB update", [VHOST_IOTLB_INVALIDATE] = "IOTLB "
												     "invalidate",
					 [VHOST_IOTLB_BATCH_BEGIN] = "IOTLB batch begin",
					 [VHOST_IOTLB_BATCH_END] = "IOTLB batch end" };

static int vv_msg(struct vhost_vdpa *v, unsigned asid, uint8_t type, uint64_t iova, uint64_t size, uint64_t uaddr,
		  unsigned perm)
{
	uint8_t buf[sizeof(struct vhost_msg_v2)];
	bool v2 = v->backend & (1ull << VHOST_BACKEND_F_IOTLB_MSG_V2);

	/* a v1 message has no ASID field and the kernel applies it to ASID 0;
	 * without IOTLB_ASID it ignores the field: either way the map would
	 * land silently in the guest's space */
	if (asid && (!v2 || !(v->backend & (1ull << VHOST_BACKEND_F_IOTLB_ASID))))
		return -EOPNOTSUPP;
	size_t len = vhost_vdpa_iotlb_msg(buf, v2, asid, type, iova, size, uaddr, perm);
	ssize_t w = write(v->fd, buf, len);
	if (w == (ssize_t)len)
		return 0;
	int r = w < 0 ? -errno : -EIO;
	/* the kernel reports any failure of an update as EFAULT (or ENOMEM
	 * when pinning hit the limit): say what was asked, and the usual cause */
	pr_warn("%s: %s ASID %u [0x%llx, +0x%llx) from %p: %s%s", v->path, msg_names[type], asid,
		(unsigned long long)iova, (unsigned long long)size, (void *)(uintptr_t)uaddr, strerror(-r),
		type == VHOST_IOTLB_UPDATE && (r == -ENOMEM || r == -EFAULT)
			? " (devices that pin memory count it against RLIMIT_MEMLOCK: raise `ulimit -l` to at least "
			  "the guest's RAM; an overlap with an existing mapping also fails so)"
			: "");
	return r;
}

static int vv_iotlb_update(struct vdpa_dev *d, unsigned asid, uint64_t iova, uint64_t size, void *hva, unsigned perm)
{
	return vv_msg(to_vv(d), asid, VHOST_IOTLB_UPDATE, iova, size, (uint64_t)(uintptr_t)hva, perm);
}

static int vv_iotlb_invalidate(struct vdpa_dev *d, unsigned asid, uint64_t iova, uint64_t size)
{
	return vv_msg(to_vv(d), asid, VHOST_IOTLB_INVALIDATE, iova, size, 0, 0);
}

/* Batches collapse N updates into one table rebuild for set_map parents
 * (mlx5, VDUSE): without IOTLB_BATCH they are plain no-ops. */
static int vv_batch_begin(struct vdpa_dev *d, unsigned asid)
{
	struct vhost_vdpa *v = to_vv(d);

	if (!(v->backend & (1ull << VHOST_BACKEND_F_IOTLB_BATCH)))
		return 0;
	return vv_msg(v, asid, VHOST_IOTLB_BATCH_BEGIN, 0, 0, 0, 0);
}

static int vv_batch_end(struct vdpa_dev *d, unsigned asid)
{
	struct vhost_vdpa *v = to_vv(d);

	if (!(v->backend & (1ull << VHOST_BACKEND_F_IOTLB_BATCH)))
		return 0;
	return vv_msg(v, asid, VHOST_IOTLB_BATCH_END, 0, 0, 0, 0);
}

static unsigned vv_count(struct vdpa_dev *d, unsigned long req)
{
	uint32_t n = 0;

	/* before 5.19 (or a parent without groups): one group, one space */
	return vv_quiet(to_vv(d), req, &n) == 0 && n ? n : 1;
}

static unsigned vv_group_num(struct vdpa_dev *d)
{
	return vv_count(d, VHOST_VDPA_GET_GROUP_NUM);
}

static unsigned vv_as_num(struct vdpa_dev *d)
{
	return vv_count(d, VHOST_VDPA_GET_AS_NUM);
}

static int vv_group(struct vdpa_dev *d, unsigned long req, unsigned idx, unsigned *group)
{
	struct vhost_vring_state s = { idx, 0 };
	int r = vv_quiet(to_vv(d), req, &s);

	if (r == 0)
		*group = s.num;
	return r == -ENOTTY ? -EOPNOTSUPP : r;
}

static int vv_get_vring_group(struct vdpa_dev *d, unsigned idx, unsigned *group)
{
	return vv_group(d, VHOST_VDPA_GET_VRING_GROUP, idx, group);
}

static int vv_get_vring_desc_group(struct vdpa_dev *d, unsigned idx, unsigned *group)
{
	if (!(to_vv(d)->backend & (1ull << VHOST_BACKEND_F_DESC_ASID)))
		return -EOPNOTSUPP;
	return vv_group(d, VHOST_VDPA_GET_VRING_DESC_GROUP, idx, group);
}

static int vv_set_group_asid(struct vdpa_dev *d, unsigned group, unsigned asid)
{
	struct vhost_vring_state s = { group, asid };
	return vv_ioctl(to_vv(d), VHOST_VDPA_SET_GROUP_ASID, &s, "VHOST_VDPA_SET_GROUP_ASID", -1);
}

static int vv_suspend(struct vdpa_dev *d)
{
	struct vhost_vdpa *v = to_vv(d);

	if (!(v->backend & (1ull << VHOST_BACKEND_F_SUSPEND)))
		return -EOPNOTSUPP;
	return vv_ioctl(v, VHOST_VDPA_SUSPEND, NULL, "VHOST_VDPA_SUSPEND", -1);
}

static int vv_resume(struct vdpa_dev *d)
{
	struct vhost_vdpa *v = to_vv(d);

	if (!(v->backend & (1ull << VHOST_BACKEND_F_RESUME)))
		return -EOPNOTSUPP;
	return vv_ioctl(v, VHOST_VDPA_RESUME, NULL, "VHOST_VDPA_RESUME", -1);
}

static void vv_destroy(struct vdpa_dev *d)
{
	struct vhost_vdpa *v = to_vv(d);

	/* close() resets the device and drops every mapping and pin */
	if (v->fd >= 0)
		close(v->fd);
	free(v);
}

static const struct vdpa_ops vhost_vdpa_ops = {
	.device_id = vv_device_id,
	.get_features = vv_get_features,
	.set_features = vv_set_features,
	.get_backend_features = vv_get_backend_features,
	.set_backend_features = vv_set_backend_features,
	.get_status = vv_get_status,
	.set_status = vv_set_status,
	.get_config = vv_get_config,
	.set_config = vv_set_config,
	.vqs_count = vv_vqs_count,
	.vring_num_max = vv_vring_num_max,
	.set_vring_num = vv_set_vring_num,
	.set_vring_addr = vv_set_vring_addr,
	.set_vring_base = vv_set_vring_base,
	.get_vring_base = vv_get_vring_base,
	.set_vring_enable = vv_set_vring_enable,
	.set_vring_kick = vv_set_vring_kick,
	.set_vring_call = vv_set_vring_call,
	.set_config_call = vv_set_config_call,
	.get_iova_range = vv_get_iova_range,
	.iotlb_update = vv_iotlb_update,
	.iotlb_invalidate = vv_iotlb_invalidate,
	.iotlb_batch_begin = vv_batch_begin,
	.iotlb_batch_end = vv_batch_end,
	.group_num = vv_group_num,
	.as_num = vv_as_num,
	.get_vring_group = vv_get_vring_group,
	.get_vring_desc_group = vv_get_vring_desc_group,
	.set_group_asid = vv_set_group_asid,
	.suspend = vv_suspend,
	.resume = vv_resume,
	.destroy = vv_destroy,
};

/* Whether the vDPA device behind fd is a VDUSE one (its sysfs parent is
 * the vduse class): VDUSE keeps its IOTLB across reset without offering
 * IOTLB_PERSIST (vdpa-reference §1.6, §3.4). */
static bool is_vduse(int fd)
{
	struct stat st;
	char link[128], real[PATH_MAX];

	if (fstat(fd, &st) < 0)
		return false;
	snprintf(link, sizeof(link), "/sys/dev/char/%u:%u", major(st.st_rdev), minor(st.st_rdev));
	return realpath(link, real) && strstr(real, "/vduse/");
}

struct vdpa_dev *vhost_vdpa_open(const char *path, struct err *e)
{
	struct vhost_vdpa *v = calloc(1, sizeof(*v));
	uint16_t num = 0;
	int r;

	if (!v) {
		err_set(e, -ENOMEM, "out of memory");
		return NULL;
	}
	snprintf(v->path, sizeof(v->path), "%s", path);
	v->vdpa = (struct vdpa_dev){ .ops = &vhost_vdpa_ops, .name = v->path };
	v->fd = open(path, O_RDWR | O_CLOEXEC);
	if (v->fd < 0) {
		r = -errno;
		if (r == -ENOENT)
			err_set(e, r, "%s does not exist: load vhost_vdpa and add a vDPA device (vdpa dev add ...; "
				      "for tern's software device, tern vduse-net)", path);
		else if (r == -EBUSY)
			err_set(e, r, "%s is in use: vhost-vdpa allows one opener (another VMM has it)", path);
		else
			err_errno(e, r, "cannot open %s", path);
		goto fail;
	}
	/* the owner (this process's mm) comes first: vring ioctls and IOTLB
	 * writes fail without it */
	if ((r = vv_quiet(v, VHOST_SET_OWNER, NULL)) < 0) {
		err_errno(e, r, "%s: VHOST_SET_OWNER", path);
		goto fail;
	}
	if ((r = vv_quiet(v, VHOST_VDPA_GET_DEVICE_ID, &v->device_id)) < 0) {
		err_errno(e, r, "%s: VHOST_VDPA_GET_DEVICE_ID (is it a vhost-vdpa device?)", path);
		goto fail;
	}
	if (vv_quiet(v, VHOST_VDPA_GET_VQS_COUNT, &v->nvqs) < 0 || !v->nvqs) {
		err_set(e, -EOPNOTSUPP, "%s: VHOST_VDPA_GET_VQS_COUNT failed (Linux >= 5.18 needed)", path);
		goto fail;
	}
	if ((r = vv_quiet(v, VHOST_VDPA_GET_VRING_NUM, &num)) < 0 || !num) {
		err_errno(e, r ? r : -EINVAL, "%s: VHOST_VDPA_GET_VRING_NUM", path);
		goto fail;
	}
	v->num_max = num;
	v->vdpa.keeps_iotlb = is_vduse(v->fd);
	return &v->vdpa;
fail:
	if (v->fd >= 0)
		close(v->fd);
	free(v);
	return NULL;
}

static unsigned count_fds(void)
{
	unsigned n = 0;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;

	if (!d)
		return 0;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

/* One open-configure-close cycle: everything a VMM does up to DRIVER_OK
 * except starting the queues (a page of memfd memory mapped, queue 0 set
 * up with eventfds), then close. */
static int cycle(const char *path, struct err *e)
{
	struct vdpa_dev *d = vhost_vdpa_open(path, e);
	const struct vdpa_ops *o;
	uint64_t bf = 0, f = 0;
	int kick = -1, call = -1, mfd = -1, r;
	void *page = MAP_FAILED;

	if (!d)
		return -EIO;
	o = d->ops;
	if ((r = o->get_backend_features(d, &bf)) < 0 ||
	    (r = o->set_backend_features(d, bf & ((1ull << VHOST_BACKEND_F_IOTLB_MSG_V2) |
						  (1ull << VHOST_BACKEND_F_IOTLB_BATCH)))) < 0 ||
	    (r = o->get_features(d, &f)) < 0 || (r = o->set_status(d, VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER)) < 0 ||
	    (r = o->set_features(d, f & ((1ull << 32) | (1ull << 33)))) < 0 ||
	    (r = o->set_status(d, VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER | VIRTIO_S_FEATURES_OK)) < 0) {
		err_errno(e, r, "%s: feature negotiation", path);
		goto out;
	}
	mfd = memfd_create("tern-probe", MFD_CLOEXEC);
	if (mfd < 0 || ftruncate(mfd, 4096) < 0 ||
	    (page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0)) == MAP_FAILED) {
		r = err_errno(e, -errno, "memfd");
		goto out;
	}
	struct vdpa_vring_addr a = { 0x1000, 0x1000 + 16 * 8, 0x2000 };
	kick = eventfd(0, EFD_CLOEXEC);
	call = eventfd(0, EFD_CLOEXEC);
	if ((r = o->iotlb_batch_begin(d, 0)) < 0 || (r = o->iotlb_update(d, 0, 0x1000, 4096, page, VDPA_PERM_RW)) < 0 ||
	    (r = o->iotlb_batch_end(d, 0)) < 0 || (r = o->set_vring_num(d, 0, 8)) < 0 ||
	    (r = o->set_vring_base(d, 0, 0)) < 0 || (r = o->set_vring_addr(d, 0, &a)) < 0 ||
	    (r = o->set_vring_kick(d, 0, kick)) < 0 || (r = o->set_vring_call(d, 0, call)) < 0) {
		err_errno(e, r, "%s: queue set-up", path);
		goto out;
	}
	r = 0;
out:
	d->ops->destroy(d);
	if (page != MAP_FAILED)
		munmap(page, 4096);
	if (mfd >= 0)
		close(mfd);
	if (kick >= 0)
		close(kick);
	if (call >= 0)
		close(call);
	return r;
}

int vhost_vdpa_probe(const char *path, unsigned cycles, FILE *out, struct err *e)
{
	struct vdpa_dev *d = vhost_vdpa_open(path, e);
	uint64_t f = 0, bf = 0, first = 0, last = 0;
	unsigned group = 0;
	int r;

	if (!d)
		return -EIO;
	const struct vdpa_ops *o = d->ops;
	o->get_features(d, &f);
	o->get_backend_features(d, &bf);
	o->get_iova_range(d, &first, &last);
	fprintf(out, "device %s: virtio id %u, %u queues of up to %u entries\n", path, o->device_id(d), o->vqs_count(d),
		o->vring_num_max(d));
	fprintf(out, "features 0x%llx, backend features 0x%llx (%s%s%s%s%s%s%s%s)\n", (unsigned long long)f,
		(unsigned long long)bf, bf & (1ull << 1) ? "IOTLB_MSG_V2 " : "", bf & (1ull << 2) ? "IOTLB_BATCH " : "",
		bf & (1ull << 3) ? "IOTLB_ASID " : "", bf & (1ull << 4) ? "SUSPEND " : "", bf & (1ull << 5) ? "RESUME " : "",
		bf & (1ull << 6) ? "ENABLE_AFTER_DRIVER_OK " : "", bf & (1ull << 7) ? "DESC_ASID " : "",
		bf & (1ull << 8) ? "IOTLB_PERSIST" : "");
	fprintf(out, "groups %u, address spaces %u, queue 0 group %s, IOVA range [0x%llx, 0x%llx]%s\n", o->group_num(d),
		o->as_num(d), o->get_vring_group(d, 0, &group) == 0 ? (group ? "1+" : "0") : "n/a",
		(unsigned long long)first, (unsigned long long)last,
		d->keeps_iotlb ? ", VDUSE (keeps its IOTLB across reset)" : "");
	o->destroy(d);
	if (!cycles)
		return 0;
	unsigned before = count_fds();
	for (unsigned i = 0; i < cycles; i++)
		if ((r = cycle(path, e)) < 0)
			return r;
	unsigned after = count_fds();
	fprintf(out, "cycles %u: open file descriptors %u before, %u after\n", cycles, before, after);
	return after == before ? 0 : err_set(e, -EMFILE, "%u file descriptors leaked in %u cycles", after - before, cycles);
}
