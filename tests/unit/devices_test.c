/* SPDX-License-Identifier: MIT */
/* 16550A behaviour that guests depend on, driven through the bus interface. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "devices/cmos.h"
#include "devices/i8042.h"
#include "devices/serial.h"
#include "devices/serial_out.h"
#include "devices/testdev.h"
#include "firmware/abi.h"
#include "tests/unit/unit.h"
#include "vmm/vm.h"

struct fake_irq {
	struct irq_line line;
	int level, changes;
};

static int fake_set(struct irq_line *l, int level)
{
	struct fake_irq *f = container_of(l, struct fake_irq, line);
	f->level = level;
	f->changes++;
	return 0;
}

static uint8_t rd(struct bus_dev *d, unsigned off)
{
	uint8_t v;
	d->ops->read(d, off, &v, 1);
	return v;
}

static void wr(struct bus_dev *d, unsigned off, uint8_t v)
{
	d->ops->write(d, off, &v, 1);
}

static void test_linux_probe(void **state)
{
	struct fake_irq irq = { .line.set = fake_set };
	struct serial *s = serial_new(&irq.line, -1, NULL);
	struct bus_dev *d = serial_bus_dev(s);

	(void)state;
	/* scratch register */
	wr(d, 7, 0xa5);
	assert_int_equal(rd(d, 7), 0xa5);
	/* loopback: MSR mirrors MCR outputs (what 8250 autoconfig checks) */
	wr(d, 4, 0x10 | 0x0a);
	assert_int_equal(rd(d, 6) & 0xf0, 0x90);
	wr(d, 4, 0x10 | 0x05);
	assert_int_equal(rd(d, 6) & 0xf0, 0x60);
	/* loopback transmit comes back as receive */
	wr(d, 0, 'Z');
	assert_int_equal(rd(d, 5) & 0x01, 0x01);
	assert_int_equal(rd(d, 0), 'Z');
	wr(d, 4, 0x00);
	/* FIFO enabled reads back as 16550A in IIR[7:6] */
	wr(d, 2, 0x07);
	assert_int_equal(rd(d, 2) & 0xc0, 0xc0);
	/* divisor latch */
	wr(d, 3, 0x80);
	wr(d, 0, 0x01);
	wr(d, 1, 0x00);
	assert_int_equal(rd(d, 0), 0x01);
	wr(d, 3, 0x03);
	assert_int_equal(rd(d, 3), 0x03);
	serial_free(s);
}

static void test_output_and_thre_irq(void **state)
{
	struct fake_irq irq = { .line.set = fake_set };
	int p[2];
	char buf[8];

	(void)state;
	assert_int_equal(pipe(p), 0);
	struct serial *s = serial_new(&irq.line, p[1], NULL);
	struct bus_dev *d = serial_bus_dev(s);

	wr(d, 0, 'h');
	wr(d, 0, 'i');
	/* the output queue's writer may hand them over one at a time */
	size_t got = 0;
	while (got < 2) {
		ssize_t n = read(p[0], buf + got, sizeof(buf) - got);
		assert_true(n > 0);
		got += (size_t)n;
	}
	assert_int_equal(got, 2);
	assert_memory_equal(buf, "hi", 2);
	assert_int_equal(irq.level, 0);
	/* enabling THRI with an empty THR raises the interrupt ... */
	wr(d, 1, 0x02);
	assert_int_equal(irq.level, 1);
	assert_int_equal(rd(d, 2) & 0x0f, 0x02);
	/* ... and reading IIR acknowledges it */
	assert_int_equal(irq.level, 0);
	assert_int_equal(rd(d, 2) & 0x0f, 0x01);
	/* each transmitted byte empties the THR again */
	wr(d, 0, '!');
	assert_int_equal(irq.level, 1);
	serial_free(s);
	close(p[0]);
	close(p[1]);
}

static void test_receive(void **state)
{
	struct fake_irq irq = { .line.set = fake_set };
	struct serial *s = serial_new(&irq.line, -1, NULL);
	struct bus_dev *d = serial_bus_dev(s);
	uint8_t big[SERIAL_RX_QUEUE + 10];

	(void)state;
	assert_int_equal(rd(d, 5) & 0x01, 0);
	wr(d, 1, 0x01); /* receive interrupt */
	assert_int_equal(serial_receive(s, (const uint8_t *)"ab", 2), 2);
	assert_int_equal(irq.level, 1);
	assert_int_equal(rd(d, 2) & 0x0f, 0x04);
	assert_int_equal(rd(d, 0), 'a');
	assert_int_equal(irq.level, 1);
	assert_int_equal(rd(d, 0), 'b');
	assert_int_equal(irq.level, 0);
	assert_int_equal(rd(d, 5) & 0x01, 0);
	/* overrun: the queue keeps what fits and LSR.OE is set once */
	memset(big, 'x', sizeof(big));
	assert_int_equal(serial_receive(s, big, sizeof(big)), SERIAL_RX_QUEUE);
	assert_int_equal(rd(d, 5) & 0x03, 0x03);
	assert_int_equal(rd(d, 5) & 0x02, 0);
	/* FIFO reset drops the receive queue */
	wr(d, 2, 0x03);
	assert_int_equal(rd(d, 5) & 0x01, 0);
	assert_int_equal(irq.level, 0);
	serial_free(s);
}


static void on_reset(struct i8042 *k, void *opaque)
{
	(void)k;
	(*(int *)opaque)++;
}

static void test_i8042(void **state)
{
	int count = 0;
	struct i8042 *k = i8042_new(NULL, on_reset, &count);
	struct bus_dev *data = i8042_data_dev(k), *cmd = i8042_cmd_dev(k);

	(void)state;
	wr(cmd, 0, 0xaa); /* self test */
	assert_int_equal(rd(cmd, 0) & 0x01, 0x01);
	assert_int_equal(rd(data, 0), 0x55);
	assert_int_equal(rd(cmd, 0) & 0x01, 0);
	wr(cmd, 0, 0x60); /* write the command byte */
	wr(data, 0, 0x45);
	wr(cmd, 0, 0x20);
	assert_int_equal(rd(data, 0), 0x45);
	wr(data, 0, 0xff); /* keyboard reset: ACK, self-test passed */
	assert_int_equal(rd(data, 0), 0xfa);
	assert_int_equal(rd(data, 0), 0xaa);
	assert_int_equal(count, 0);
	wr(cmd, 0, 0xfe); /* pulse reset */
	assert_int_equal(count, 1);
	wr(cmd, 0, 0xd1); /* output port with bit 0 clear */
	wr(data, 0, 0x00);
	assert_int_equal(count, 2);
	i8042_free(k);
}

static time_t fixed_time(void)
{
	return 1764067815; /* 2025-11-25 10:50:15 UTC, a Tuesday */
}

static void test_cmos(void **state)
{
	struct cmos *c = cmos_new(fixed_time);
	struct bus_dev *d = cmos_bus_dev(c);

	(void)state;
#define REG(r) (wr(d, 0, (r)), rd(d, 1))
	assert_int_equal(REG(0x00), 0x15);
	assert_int_equal(REG(0x02), 0x50);
	assert_int_equal(REG(0x04), 0x10);
	assert_int_equal(REG(0x07), 0x25);
	assert_int_equal(REG(0x08), 0x11);
	assert_int_equal(REG(0x09), 0x25);
	assert_int_equal(REG(0x32), 0x20);
	assert_int_equal(REG(0x06), 0x03);
	assert_int_equal(REG(0x0a) & 0x80, 0); /* no update in progress */
	assert_int_equal(REG(0x0d), 0x80);     /* valid RAM and time */
	wr(d, 0, 0x0b);                        /* binary mode */
	wr(d, 1, 0x06);
	assert_int_equal(REG(0x00), 15);
	wr(d, 0, 0x8f); /* NMI mask bit does not change the index */
	assert_int_equal(rd(d, 0), 0x8f);
#undef REG
	cmos_free(c);
}

static unsigned exit_status = 999;

static void on_exit_cb(struct testdev *t, unsigned status, void *opaque)
{
	(void)t, (void)opaque;
	exit_status = status;
}

static void test_testdev_hostile_reports(void **state)
{
	struct guest_mem m;
	struct err e = { { 0 } };
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	uint32_t magic;

	(void)state;
	assert_int_equal(mem_init(&m, 16 * MiB, &e), 0);
	struct testdev *t = testdev_new(&m, out, on_exit_cb, NULL);
	struct bus_dev *d = testdev_bus_dev(t);
	d->ops->read(d, TESTDEV_REG_MAGIC, &magic, 4);
	assert_int_equal(magic, TESTDEV_MAGIC);

	struct testdev_report *r = mem_ptr(&m, 0x1000, 64);
	r->len = 5;
	memcpy(r->text, "hi\x01yo", 5);
	uint64_t gpa = 0x1000;
	d->ops->write(d, TESTDEV_REG_REPORT, &gpa, 8);
	r->len = TESTDEV_REPORT_MAX + 1; /* too long */
	d->ops->write(d, TESTDEV_REG_REPORT, &gpa, 8);
	r->len = 4;
	r->rsvd = 1; /* reserved must be zero */
	d->ops->write(d, TESTDEV_REG_REPORT, &gpa, 8);
	gpa = 16 * MiB - 4; /* header past the end of RAM */
	d->ops->write(d, TESTDEV_REG_REPORT, &gpa, 8);
	gpa = UINT64_MAX - 3;
	d->ops->write(d, TESTDEV_REG_REPORT, &gpa, 8);
	struct testdev_report *edge = mem_ptr(&m, 16 * MiB - 16, 16);
	edge->len = 100; /* text runs past the end of RAM */
	edge->rsvd = 0;
	gpa = 16 * MiB - 16;
	d->ops->write(d, TESTDEV_REG_REPORT, &gpa, 8);
	uint32_t st = 0x1234;
	d->ops->write(d, TESTDEV_REG_EXIT, &st, 4);
	fflush(out);
	assert_non_null(strstr(text, "testdev: hi?yo\n"));
	assert_int_equal(testdev_bad_reports(t), 5);
	assert_int_equal(exit_status, 0x1234);
	testdev_free(t);
	fclose(out);
	free(text);
	mem_destroy(&m);
}

/* Device state records: a round trip keeps everything the guest can see;
 * out-of-range fields (max+1, all-ones) are refused and change nothing. */
static void test_state_records(void **state)
{
	struct fake_irq irq = { .line.set = fake_set };
	struct serial *a = serial_new(&irq.line, -1, NULL), *b = serial_new(&irq.line, -1, NULL);
	struct serial_state ss, ss2;

	(void)state;
	wr(serial_bus_dev(a), 3, 0x03);
	wr(serial_bus_dev(a), 1, 0x01);
	wr(serial_bus_dev(a), 7, 0x5a);
	serial_receive(a, (const uint8_t *)"xyz", 3);
	serial_get_state(a, &ss);
	assert_int_equal(serial_set_state(b, &ss), 0);
	serial_get_state(b, &ss2);
	assert_memory_equal(&ss, &ss2, sizeof(ss));
	assert_int_equal(rd(serial_bus_dev(b), 0), 'x');
	assert_int_equal(rd(serial_bus_dev(b), 7), 0x5a);
	struct serial_state bad = ss;
	bad.rx_len = SERIAL_RX_QUEUE + 1;
	assert_int_equal(serial_set_state(b, &bad), -EINVAL);
	bad = ss;
	bad.rx_len = UINT32_MAX;
	assert_int_equal(serial_set_state(b, &bad), -EINVAL);
	bad = ss;
	bad.ier = 0x10;
	assert_int_equal(serial_set_state(b, &bad), -EINVAL);
	bad = ss;
	bad.thr_ipending = 0xff;
	assert_int_equal(serial_set_state(b, &bad), -EINVAL);
	assert_int_equal(rd(serial_bus_dev(b), 0), 'y'); /* unchanged by the refusals */
	serial_free(a);
	serial_free(b);

	struct cmos *c = cmos_new(fixed_time), *c2 = cmos_new(fixed_time);
	struct cmos_state cs;
	wr(cmos_bus_dev(c), 0, 0x20);
	wr(cmos_bus_dev(c), 1, 0x77);
	cmos_get_state(c, &cs);
	assert_int_equal(cmos_set_state(c2, &cs), 0);
	wr(cmos_bus_dev(c2), 0, 0x20);
	assert_int_equal(rd(cmos_bus_dev(c2), 1), 0x77);
	cs.index = 0x80;
	assert_int_equal(cmos_set_state(c2, &cs), -EINVAL);
	cs.index = 0xff;
	assert_int_equal(cmos_set_state(c2, &cs), -EINVAL);
	cmos_free(c);
	cmos_free(c2);

	struct i8042 *k = i8042_new(NULL, NULL, NULL), *k2 = i8042_new(NULL, NULL, NULL);
	struct i8042_state ks;
	wr(i8042_cmd_dev(k), 0, 0xaa);
	i8042_get_state(k, &ks);
	assert_int_equal(i8042_set_state(k2, &ks), 0);
	assert_int_equal(rd(i8042_data_dev(k2), 0), 0x55);
	ks.q_len = 17;
	assert_int_equal(i8042_set_state(k2, &ks), -EINVAL);
	ks.q_len = 0xff;
	assert_int_equal(i8042_set_state(k2, &ks), -EINVAL);
	i8042_free(k);
	i8042_free(k2);
}

/* A console nobody reads (a full pipe) never blocks the guest's writes:
 * the queue takes SERIAL_OUT_QUEUE bytes beyond what the pipe holds and
 * drops the rest, counted; once the reader is back, everything queued
 * arrives, in order. */
static void test_serial_output_never_blocks(void **state)
{
	int p[2];
	uint64_t t0;
	size_t total = SERIAL_OUT_QUEUE + (512u << 10), got = 0;
	static uint8_t buf[64 << 10];

	(void)state;
	assert_int_equal(pipe(p), 0);
	struct serial_out *o = serial_out_new(p[1], NULL);
	assert_non_null(o);
	t0 = now_ns();
	for (size_t i = 0; i < total; i++)
		serial_out_put(o, (uint8_t)(i * 7));
	/* 1.5 MiB into a 64 KiB pipe nobody reads: done without waiting */
	assert_true(now_ns() - t0 < 5000000000ull);
	uint64_t dropped = serial_out_dropped(o);
	assert_true(dropped > 0 && dropped < total);
	/* the reader comes back: what was queued arrives, in order */
	for (;;) {
		ssize_t n = read(p[0], buf, sizeof(buf));
		assert_true(n > 0);
		for (ssize_t i = 0; i < n; i++)
			assert_int_equal(buf[i], (uint8_t)((got + (size_t)i) * 7));
		got += (size_t)n;
		if (got == total - dropped)
			break;
	}
	serial_out_free(o); /* nothing left to write: returns */
	close(p[1]);
	assert_int_equal(read(p[0], buf, sizeof(buf)), 0);
	close(p[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_serial_output_never_blocks),
		cmocka_unit_test(test_linux_probe),
		cmocka_unit_test(test_output_and_thre_irq),
		cmocka_unit_test(test_receive),
		cmocka_unit_test(test_i8042),
		cmocka_unit_test(test_cmos),
		cmocka_unit_test(test_testdev_hostile_reports),
		cmocka_unit_test(test_state_records),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
