/* SPDX-License-Identifier: MIT */
/*
 * vdpa/vduse.c: the VDUSE_CREATE_DEV argument tern builds for its net
 * device has the layout Linux 6.12 reads (name, net device id, two queues,
 * vq_align 4096, zero reserved words, the 12 config bytes right after the
 * header), and what 6.12 would refuse with a bare EINVAL is refused before
 * the ioctl with a message that says why. The IOTLB mirror, fed by a
 * kernel that announces every change over the whole space as 6.12 does,
 * never takes an unchanged mapping away from the device.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tests/unit/unit.h"
#include "vdpa/cvq.h"
#include "vdpa/vduse.h"
#include "vdpa/vduse_iotlb.h"

#define GOOD_FEATURES                                                                                  \
	((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_ACCESS_PLATFORM) | (1ull << VNET_F_MAC) |    \
	 (1ull << VNET_F_STATUS))

static const uint8_t net_config[VDUSE_NET_CONFIG_SIZE] = {
	0x02, 0x74, 0x6e, 0x01, 0x02, 0x03, /* mac */
	0x01, 0x00,                         /* status: link up */
	0x01, 0x00,                         /* max_virtqueue_pairs */
	0xdc, 0x05,                         /* mtu 1500 */
};

static void test_good_blob_layout(void **state)
{
	const size_t hdr = offsetof(struct vduse_dev_config, config);
	struct vduse_dev_config cfg, *c = &cfg;
	uint8_t buf[1024];
	struct err e = { { 0 } };
	size_t len = 0;

	(void)state;
	memset(buf, 0xa5, sizeof(buf)); /* garbage the builder must overwrite */
	assert_int_equal(vduse_net_dev_config(net_config, GOOD_FEATURES, "vduse-net0", buf, sizeof(buf), &len, &e),
			 0);
	assert_int_equal(len, hdr + VDUSE_NET_CONFIG_SIZE);
	assert_int_equal(len, VDUSE_NET_DEV_CONFIG_LEN);
	memcpy(&cfg, buf, hdr); /* read it as the kernel does: a copy */
	assert_string_equal(c->name, "vduse-net0");
	for (size_t i = strlen("vduse-net0"); i < VDUSE_NAME_MAX; i++)
		assert_int_equal(c->name[i], 0);
	assert_int_equal(c->vendor_id, 0);
	assert_int_equal(c->device_id, 1);
	assert_int_equal(c->features, GOOD_FEATURES);
	assert_int_equal(c->vq_num, 2);
	assert_int_equal(c->vq_align, 4096);
	for (size_t i = 0; i < ARRAY_SIZE(c->reserved); i++)
		assert_int_equal(c->reserved[i], 0);
	assert_int_equal(c->config_size, 12);
	assert_memory_equal(buf + hdr, net_config, VDUSE_NET_CONFIG_SIZE);
	/* the header as the kernel's copy_from_user() reads it */
	assert_int_equal(hdr, 336);
	assert_int_equal(offsetof(struct vduse_dev_config, features), 264);
}

static void test_longest_name_fits(void **state)
{
	char name[VDUSE_NAME_MAX];
	uint8_t buf[1024];
	struct vduse_dev_config c;
	struct err e = { { 0 } };
	size_t len;

	(void)state;
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0'; /* 255 bytes and its NUL: the most the kernel takes */
	assert_int_equal(vduse_net_dev_config(net_config, GOOD_FEATURES, name, buf, sizeof(buf), &len, &e), 0);
	memcpy(&c, buf, offsetof(struct vduse_dev_config, config));
	assert_int_equal(strnlen(c.name, VDUSE_NAME_MAX), VDUSE_NAME_MAX - 1);
}

static void refused(uint64_t features, const char *name, size_t cap, int code, const char *why)
{
	uint8_t buf[1024];
	struct err e = { { 0 } };
	size_t len = 12345;

	assert_true(cap <= sizeof(buf));
	assert_int_equal(vduse_net_dev_config(net_config, features, name, buf, cap, &len, &e), code);
	assert_err_contains(&e, why);
	assert_int_equal(len, 12345); /* nothing claimed */
}

static void test_refusals(void **state)
{
	char long_name[257];

	(void)state;
	refused(GOOD_FEATURES & ~(1ull << VIRTIO_F_ACCESS_PLATFORM), "vd0", 1024, -EINVAL, "VIRTIO_F_ACCESS_PLATFORM");
	refused(GOOD_FEATURES & ~(1ull << VIRTIO_F_VERSION_1), "vd0", 1024, -EINVAL, "VIRTIO_F_VERSION_1");
	refused(GOOD_FEATURES | (1ull << VNET_F_CTRL_VQ), "vd0", 1024, -EINVAL, "VIRTIO_NET_F_CTRL_VQ");
	memset(long_name, 'x', 256);
	long_name[256] = '\0';
	refused(GOOD_FEATURES, long_name, 1024, -EINVAL, "1 to 255 bytes");
	refused(GOOD_FEATURES, "", 1024, -EINVAL, "1 to 255 bytes");
	refused(GOOD_FEATURES, "a/b", 1024, -EINVAL, "cannot name");
	refused(GOOD_FEATURES, "control", 1024, -EINVAL, "cannot name");
	refused(GOOD_FEATURES, "vd0", VDUSE_NET_DEV_CONFIG_LEN - 1, -ENOSPC, "bytes");
}

/* ---- the IOTLB mirror against a kernel made of memfds ---------------------- */

struct kentry {
	uint64_t start, last, offset;
	unsigned perm;
	int fd;
};

struct fake_kernel {
	struct kentry e[8];
	unsigned n;
	int fail; /* get_fd answers this (0: normally) */
};

static int fake_get_fd(void *opaque, struct vduse_iotlb_entry *en)
{
	struct fake_kernel *k = opaque;

	if (k->fail)
		return k->fail;
	const struct kentry *best = NULL;
	for (unsigned i = 0; i < k->n; i++)
		if (k->e[i].last >= en->start && k->e[i].start <= en->last && (!best || k->e[i].start < best->start))
			best = &k->e[i];
	if (!best)
		return -EINVAL;
	en->start = best->start;
	en->last = best->last;
	en->offset = best->offset;
	en->perm = (uint8_t)best->perm;
	return dup(best->fd);
}

static const struct vduse_iotlb_ops fake_kernel_ops = { .get_fd = fake_get_fd };

/* A device that keeps its map and counts what is taken from it. */
struct fake_dev {
	struct vdpa_dev d;
	struct {
		uint64_t iova, size;
		void *hva;
	} m[8];
	unsigned n, updates, invalidates;
	uint64_t live;        /* an IOVA in use by the running device ... */
	unsigned live_gaps;   /* ... found unmapped by an invalidate */
};

static int fake_update(struct vdpa_dev *d, unsigned asid, uint64_t iova, uint64_t size, void *hva, unsigned perm)
{
	struct fake_dev *f = (struct fake_dev *)d;

	(void)perm;
	assert_int_equal(asid, 0);
	for (unsigned i = 0; i < f->n; i++)
		if (iova < f->m[i].iova + f->m[i].size && f->m[i].iova < iova + size)
			return -EEXIST; /* the kernel refuses overlaps too */
	assert_true(f->n < 8);
	f->m[f->n].iova = iova;
	f->m[f->n].size = size;
	f->m[f->n].hva = hva;
	f->n++;
	f->updates++;
	return 0;
}

static int fake_invalidate(struct vdpa_dev *d, unsigned asid, uint64_t iova, uint64_t size)
{
	struct fake_dev *f = (struct fake_dev *)d;

	assert_int_equal(asid, 0);
	for (unsigned i = 0; i < f->n; i++)
		if (f->m[i].iova == iova && f->m[i].size == size) {
			if (f->live >= iova && f->live < iova + size)
				f->live_gaps++;
			f->m[i] = f->m[--f->n];
			f->invalidates++;
			return 0;
		}
	return -ENOENT;
}

static const struct vdpa_ops fake_dev_ops = { .iotlb_update = fake_update, .iotlb_invalidate = fake_invalidate };

static int memfd(size_t size)
{
	int fd = memfd_create("vduse-test", MFD_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	return fd;
}

/* The byte the device sees at iova (it must be mapped). */
static uint8_t byte_at(struct fake_dev *f, uint64_t iova)
{
	for (unsigned i = 0; i < f->n; i++)
		if (iova >= f->m[i].iova && iova < f->m[i].iova + f->m[i].size)
			return ((uint8_t *)f->m[i].hva)[iova - f->m[i].iova];
	fail_msg("IOVA 0x%llx is not mapped in the device", (unsigned long long)iova);
	return 0;
}

/* Guest RAM stays mapped in the device while rings come and go and a
 * bounce area moves: each update, announced over [0, ~0], changes only
 * what changed; a failed one drops the range, as the kernel does. */
static void test_iotlb_updates_keep_unchanged_ranges(void **state)
{
	struct fake_kernel k = { 0 };
	struct fake_dev f = { .d = { .ops = &fake_dev_ops, .name = "fake" }, .live = 0x1000 };
	struct vduse_iotlb *t = calloc(1, sizeof(*t));
	struct err e = { { 0 } };
	int ram = memfd(1 << 20), ring = memfd(1 << 16);

	(void)state;
	*t = (struct vduse_iotlb){ .ops = &fake_kernel_ops, .opaque = &k, .dev = &f.d, .name = "test" };
	k.e[k.n++] = (struct kentry){ 0, (1 << 20) - 1, 0, VDUSE_ACCESS_RW, ram };
	assert_int_equal(vduse_iotlb_update(t, 0, ~0ull, &e), 0);
	assert_int_equal(f.n, 1);
	/* the device reaches the guest's memory through the mirror */
	uint8_t *g = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, ram, 0);
	assert_true(g != MAP_FAILED);
	g[0x1000] = 0x5a;
	assert_int_equal(byte_at(&f, 0x1000), 0x5a);
	/* a ring appears: RAM is left alone */
	k.e[k.n++] = (struct kentry){ 0x10000000, 0x1000ffff, 0, VDUSE_ACCESS_RW, ring };
	assert_int_equal(vduse_iotlb_update(t, 0, ~0ull, &e), 0);
	assert_int_equal(f.n, 2);
	assert_int_equal(f.invalidates, 0);
	assert_int_equal(f.updates, 2);
	/* the ring moves within its file (new offset): only it is replaced */
	k.e[1].offset = 0x8000;
	k.e[1].last = 0x10007fff;
	assert_int_equal(vduse_iotlb_update(t, 0, ~0ull, &e), 0);
	assert_int_equal(f.invalidates, 1);
	assert_int_equal(f.updates, 3);
	/* the ring goes */
	k.n = 1;
	assert_int_equal(vduse_iotlb_update(t, 0, ~0ull, &e), 0);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.invalidates, 2);
	assert_int_equal(f.live_gaps, 0); /* RAM was never out of the device */
	assert_int_equal(byte_at(&f, 0x1000), 0x5a);
	/* the same range from another file is a change */
	int other = memfd(1 << 20);
	k.e[0].fd = other;
	assert_int_equal(vduse_iotlb_update(t, 0, ~0ull, &e), 0);
	assert_int_equal(f.live_gaps, 1);
	assert_int_equal(byte_at(&f, 0x1000), 0);
	/* a kernel that fails the walk: everything in the range goes */
	k.fail = -EIO;
	assert_int_equal(vduse_iotlb_update(t, 0, ~0ull, &e), -EIO);
	assert_int_equal(f.n, 0);
	assert_int_equal(t->nr_maps, 0);
	vduse_iotlb_free(t);
	munmap(g, 1 << 20);
	close(ram);
	close(ring);
	close(other);
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_blob_layout),
		cmocka_unit_test(test_longest_name_fits),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_iotlb_updates_keep_unchanged_ranges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
