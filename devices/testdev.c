/* SPDX-License-Identifier: MIT */
/* devices/testdev.c - see firmware/abi.h for the register contract. */
#include "devices/testdev.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "devices/device.h"
#include "firmware/abi.h"
#include "vmm/vm.h"

struct testdev {
	struct bus_dev dev; /* MMIO page at TESTDEV_GPA */
	const struct guest_mem *mem;
	FILE *out;
	void (*on_exit)(struct testdev *t, unsigned status, void *opaque);
	void *opaque;
	atomic_uint bad_reports;
};

static void testdev_read(struct bus_dev *dev, uint64_t off, void *data, unsigned len)
{
	uint32_t v = 0;

	(void)dev;
	if (off == TESTDEV_REG_MAGIC)
		v = TESTDEV_MAGIC;
	else if (off == TESTDEV_REG_VERSION)
		v = TERN_ABI_VERSION;
	memset(data, 0, len);
	memcpy(data, &v, len < sizeof(v) ? len : sizeof(v));
}

/* The record is guest memory the guest may change under us: copy the header
 * once, check it, then copy the text once. */
static void testdev_report(struct testdev *t, gpa_t gpa)
{
	struct testdev_report hdr;
	const void *src = mem_ptr(t->mem, gpa, sizeof(hdr));
	char text[TESTDEV_REPORT_MAX + 1];

	if (!src)
		goto bad;
	memcpy(&hdr, src, sizeof(hdr));
	if (hdr.len > TESTDEV_REPORT_MAX || hdr.rsvd)
		goto bad;
	src = mem_ptr(t->mem, gpa + sizeof(hdr), hdr.len);
	if (!src)
		goto bad;
	memcpy(text, src, hdr.len);
	for (uint32_t i = 0; i < hdr.len; i++)
		if ((unsigned char)text[i] < 0x20 || (unsigned char)text[i] > 0x7e)
			text[i] = '?';
	text[hdr.len] = '\0';
	fprintf(t->out, "testdev: %s\n", text);
	fflush(t->out);
	return;
bad:
	atomic_fetch_add(&t->bad_reports, 1);
	fprintf(t->out, "testdev: !bad-report gpa=0x%llx\n", (unsigned long long)gpa);
	fflush(t->out);
}

static void testdev_write(struct bus_dev *dev, uint64_t off, const void *data, unsigned len)
{
	struct testdev *t = container_of(dev, struct testdev, dev);
	uint64_t v = 0;

	memcpy(&v, data, len < sizeof(v) ? len : sizeof(v));
	if (off == TESTDEV_REG_EXIT && t->on_exit)
		t->on_exit(t, (unsigned)(v & 0xffffffffu), t->opaque);
	else if (off == TESTDEV_REG_REPORT && len == 8)
		testdev_report(t, v);
}

static const struct bus_dev_ops testdev_ops = { .read = testdev_read, .write = testdev_write };

struct testdev *testdev_new(const struct guest_mem *mem, FILE *out,
			    void (*on_exit)(struct testdev *t, unsigned status, void *opaque), void *opaque)
{
	struct testdev *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->dev = (struct bus_dev){ .ops = &testdev_ops, .name = "testdev" };
	t->mem = mem;
	t->out = out;
	t->on_exit = on_exit;
	t->opaque = opaque;
	return t;
}

void testdev_free(struct testdev *t)
{
	free(t);
}

struct bus_dev *testdev_bus_dev(struct testdev *t)
{
	return &t->dev;
}

unsigned testdev_bad_reports(const struct testdev *t)
{
	return atomic_load(&t->bad_reports);
}

static void testdev_vm_exit(struct testdev *t, unsigned status, void *opaque)
{
	(void)t;
	vm_request_exit(opaque, (int)(status & 0xff), "guest exited with status %u through the test device", status);
}

static int testdev_dev_init(struct vm *vm, struct err *e)
{
	int r;

	if (!vm->cfg.test_device)
		return 0;
	vm->testdev = testdev_new(&vm->mem, vm->cfg.testdev_out ? vm->cfg.testdev_out : stderr, testdev_vm_exit, vm);
	if (!vm->testdev)
		return err_set(e, -ENOMEM, "out of memory for the test device");
	r = bus_register(&vm->mmio, TESTDEV_GPA, TESTDEV_SIZE, &vm->testdev->dev);
	if (r < 0)
		return err_errno(e, r, "cannot place the test device");
	return 0;
}

static void testdev_dev_exit(struct vm *vm)
{
	testdev_free(vm->testdev);
	vm->testdev = NULL;
}

const struct device_type testdev_device_type = {
	.name = "testdev",
	.init = testdev_dev_init,
	.exit = testdev_dev_exit,
};
