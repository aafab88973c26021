/* SPDX-License-Identifier: MIT */
/*
 * vdpa/vduse.c: the VDUSE_CREATE_DEV argument tern builds for its net
 * device has the layout Linux 6.12 reads (name, net device id, two queues,
 * vq_align 4096, zero reserved words, the 12 config bytes right after the
 * header), and what 6.12 would refuse with a bare EINVAL is refused before
 * the ioctl with a message that says why.
 */
#include <errno.h>

#include "tests/unit/unit.h"
#include "vdpa/cvq.h"
#include "vdpa/vduse.h"

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_blob_layout),
		cmocka_unit_test(test_longest_name_fits),
		cmocka_unit_test(test_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
