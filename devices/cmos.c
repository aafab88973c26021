/* SPDX-License-Identifier: MIT */
/* devices/cmos.c - RTC registers per the MC146818A data sheet. */
#include "devices/cmos.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "devices/device.h"
#include "devices/state.h"
#include "firmware/abi.h"
#include "vmm/vm.h"

#define REG_SEC 0x00
#define REG_MIN 0x02
#define REG_HOUR 0x04
#define REG_WDAY 0x06
#define REG_MDAY 0x07
#define REG_MON 0x08
#define REG_YEAR 0x09
#define REG_A 0x0a
#define REG_B 0x0b
#define REG_C 0x0c
#define REG_D 0x0d
#define REG_CENTURY 0x32
#define B_24H 0x02
#define B_BINARY 0x04
#define D_VRT 0x80

struct cmos {
	struct bus_dev dev; /* ports 0x70 (index) and 0x71 (data) */
	time_t (*now)(void);
	pthread_mutex_t lock;
	uint8_t index;      /* low 7 bits; bit 7 is the NMI mask, kept apart */
	uint8_t nmi_masked;
	uint8_t ram[128];
};

static uint8_t bcd(const struct cmos *c, int v)
{
	if (c->ram[REG_B] & B_BINARY)
		return (uint8_t)v;
	return (uint8_t)(((v / 10) << 4) | (v % 10));
}

static uint8_t cmos_reg(struct cmos *c, uint8_t reg)
{
	time_t t = c->now ? c->now() : time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	switch (reg) {
	case REG_SEC: return bcd(c, tm.tm_sec);
	case REG_MIN: return bcd(c, tm.tm_min);
	case REG_HOUR: return bcd(c, tm.tm_hour);
	case REG_WDAY: return bcd(c, tm.tm_wday + 1);
	case REG_MDAY: return bcd(c, tm.tm_mday);
	case REG_MON: return bcd(c, tm.tm_mon + 1);
	case REG_YEAR: return bcd(c, tm.tm_year % 100);
	case REG_CENTURY: return bcd(c, (tm.tm_year + 1900) / 100);
	case REG_A: return c->ram[REG_A] & 0x7f; /* update never in progress */
	case REG_C: return 0;                    /* no interrupt sources */
	case REG_D: return D_VRT;                /* battery good */
	default: return c->ram[reg];
	}
}

static void cmos_read(struct bus_dev *dev, uint64_t off, void *data, unsigned len)
{
	struct cmos *c = container_of(dev, struct cmos, dev);
	uint8_t v;

	pthread_mutex_lock(&c->lock);
	v = off == 0 ? (uint8_t)(c->index | c->nmi_masked) : cmos_reg(c, c->index);
	pthread_mutex_unlock(&c->lock);
	memset(data, 0, len);
	*(uint8_t *)data = v;
}

static void cmos_write(struct bus_dev *dev, uint64_t off, const void *data, unsigned len)
{
	struct cmos *c = container_of(dev, struct cmos, dev);
	uint8_t v = *(const uint8_t *)data;

	(void)len;
	pthread_mutex_lock(&c->lock);
	if (off == 0) {
		c->index = v & 0x7f;
		c->nmi_masked = v & 0x80;
	} else if (c->index != REG_C && c->index != REG_D) {
		/* Time writes are accepted and forgotten: the RTC shows host
		 * time. Control registers and RAM keep what is written. */
		c->ram[c->index] = v;
	}
	pthread_mutex_unlock(&c->lock);
}

static const struct bus_dev_ops cmos_ops = { .read = cmos_read, .write = cmos_write };

struct cmos *cmos_new(time_t (*now)(void))
{
	struct cmos *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->dev = (struct bus_dev){ .ops = &cmos_ops, .name = "cmos" };
	c->now = now;
	c->ram[REG_A] = 0x26; /* 32.768 kHz time base, 1024 Hz rate */
	c->ram[REG_B] = B_24H;
	pthread_mutex_init(&c->lock, NULL);
	return c;
}

void cmos_free(struct cmos *c)
{
	if (!c)
		return;
	pthread_mutex_destroy(&c->lock);
	free(c);
}

struct bus_dev *cmos_bus_dev(struct cmos *c)
{
	return &c->dev;
}

void cmos_get_state(struct cmos *c, struct cmos_state *st)
{
	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&c->lock);
	st->index = c->index;
	st->nmi_masked = c->nmi_masked;
	memcpy(st->ram, c->ram, sizeof(st->ram));
	pthread_mutex_unlock(&c->lock);
}

int cmos_set_state(struct cmos *c, const struct cmos_state *st)
{
	if (st->index > 0x7f || (st->nmi_masked & 0x7f))
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	c->index = st->index;
	c->nmi_masked = st->nmi_masked;
	memcpy(c->ram, st->ram, sizeof(c->ram));
	pthread_mutex_unlock(&c->lock);
	return 0;
}

static int cmos_dev_init(struct vm *vm, struct err *e)
{
	int r;

	vm->cmos = cmos_new(NULL);
	if (!vm->cmos)
		return err_set(e, -ENOMEM, "out of memory for the RTC");
	r = bus_register(&vm->pio, CMOS_INDEX_PORT, 2, &vm->cmos->dev);
	if (r < 0)
		return err_errno(e, r, "cannot place the RTC");
	return 0;
}

static void cmos_dev_exit(struct vm *vm)
{
	cmos_free(vm->cmos);
	vm->cmos = NULL;
}

/* Version of the "cmos" node (devices/state.h): a change to struct
 * cmos_state needs a bump. */
static const struct state_version cmos_state_version = { .major = 1, .minor = 0, .floor = 0 };

static int cmos_save(struct vm *vm, void *fdt, struct err *e)
{
	struct cmos_state st;

	cmos_get_state(vm->cmos, &st);
	return state_put_regs(fdt, "cmos", &cmos_state_version, &st, sizeof(st), e);
}

static int cmos_load(struct vm *vm, const void *fdt, struct err *e)
{
	struct cmos_state st;
	int r = state_get_regs(fdt, "cmos", &cmos_state_version, &st, sizeof(st), e);

	if (r == 0 && cmos_set_state(vm->cmos, &st) < 0)
		r = err_set(e, -EPROTO, "state: cmos registers out of range");
	return r;
}

const struct device_type cmos_device_type = {
	.name = "cmos",
	.init = cmos_dev_init,
	.exit = cmos_dev_exit,
	.save = cmos_save,
	.load = cmos_load,
};
