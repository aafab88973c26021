/* SPDX-License-Identifier: MIT */
/*
 * devices/i8042.c - PS/2 controller. Command set from the IBM PC/AT
 * technical reference as Linux's i8042 and atkbd drivers use it; no mouse.
 */
#include "devices/i8042.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "devices/device.h"
#include "devices/state.h"
#include "firmware/abi.h"
#include "vmm/vm.h"

#define STS_OBF 0x01
#define STS_SYS 0x04
#define STS_CMD 0x08
#define STS_UNLOCKED 0x10 /* keyboard not inhibited (no keylock) */
#define STS_AUXDATA 0x20
#define CTR_KBDINT 0x01
#define CTR_SYS 0x04
#define CTR_KBDDIS 0x10
#define CTR_AUXDIS 0x20
#define CTR_XLATE 0x40
#define QUEUE 16
#define KBD_IRQ 1

struct i8042 {
	struct bus_dev data_dev;  /* port 0x60 */
	struct bus_dev cmd_dev;   /* port 0x64 */
	struct irq_line *irq;
	void (*on_reset)(struct i8042 *k, void *opaque);
	void *opaque;
	pthread_mutex_t lock;     /* fields below */
	uint8_t ctr;              /* controller command byte */
	uint8_t pending;          /* command awaiting its data byte, or 0 */
	uint8_t last_was_cmd;
	int irq_level;
	unsigned q_head, q_len;
	uint8_t q[QUEUE];
	bool q_aux[QUEUE];
};

static void push(struct i8042 *k, uint8_t v, bool aux)
{
	if (k->q_len == QUEUE)
		return;
	unsigned i = (k->q_head + k->q_len) % QUEUE;
	k->q[i] = v;
	k->q_aux[i] = aux;
	k->q_len++;
}

static void update_irq(struct i8042 *k)
{
	int level = k->q_len && !k->q_aux[k->q_head] && (k->ctr & CTR_KBDINT);

	if (level == k->irq_level || !k->irq)
		return;
	k->irq_level = level;
	k->irq->set(k->irq, level);
}

static void reset(struct i8042 *k)
{
	if (k->on_reset)
		k->on_reset(k, k->opaque);
}

static void kbd_command(struct i8042 *k, uint8_t v)
{
	push(k, 0xfa, false); /* ACK */
	if (v == 0xff)
		push(k, 0xaa, false); /* self test passed */
	else if (v == 0xf2) {
		push(k, 0xab, false); /* MF2 keyboard id */
		push(k, 0x83, false);
	}
}

static void controller_command(struct i8042 *k, uint8_t cmd)
{
	switch (cmd) {
	case 0x20:
		push(k, k->ctr, false);
		break;
	case 0x60: case 0xd1: case 0xd2: case 0xd3: case 0xd4:
		k->pending = cmd;
		break;
	case 0xa7:
		k->ctr |= CTR_AUXDIS;
		break;
	case 0xa8:
		k->ctr &= (uint8_t)~CTR_AUXDIS;
		break;
	case 0xa9:
		push(k, 0xff, false); /* no auxiliary port */
		break;
	case 0xaa:
		push(k, 0x55, false);
		break;
	case 0xab:
		push(k, 0x00, false);
		break;
	case 0xad:
		k->ctr |= CTR_KBDDIS;
		break;
	case 0xae:
		k->ctr &= (uint8_t)~CTR_KBDDIS;
		break;
	case 0xd0:
		push(k, 0x01, false);
		break;
	default:
		break; /* the reset pulses are handled by cmd_write() */
	}
}

static void data_write(struct bus_dev *dev, uint64_t off, const void *data, unsigned len)
{
	struct i8042 *k = container_of(dev, struct i8042, data_dev);
	uint8_t v = *(const uint8_t *)data;
	bool do_reset = false;

	(void)off, (void)len;
	pthread_mutex_lock(&k->lock);
	k->last_was_cmd = 0;
	switch (k->pending) {
	case 0x60:
		k->ctr = v;
		break;
	case 0xd1:
		do_reset = !(v & 1);
		break;
	case 0xd2:
		push(k, v, false);
		break;
	case 0xd3:
		push(k, v, true);
		break;
	case 0xd4:
		break; /* no mouse: the byte goes nowhere */
	default:
		kbd_command(k, v);
		break;
	}
	k->pending = 0;
	update_irq(k);
	pthread_mutex_unlock(&k->lock);
	if (do_reset)
		reset(k);
}

static void data_read(struct bus_dev *dev, uint64_t off, void *data, unsigned len)
{
	struct i8042 *k = container_of(dev, struct i8042, data_dev);
	uint8_t v = 0;

	(void)off;
	pthread_mutex_lock(&k->lock);
	if (k->q_len) {
		v = k->q[k->q_head];
		k->q_head = (k->q_head + 1) % QUEUE;
		k->q_len--;
	}
	update_irq(k);
	pthread_mutex_unlock(&k->lock);
	memset(data, 0, len);
	*(uint8_t *)data = v;
}

static void cmd_write(struct bus_dev *dev, uint64_t off, const void *data, unsigned len)
{
	struct i8042 *k = container_of(dev, struct i8042, cmd_dev);

	(void)off, (void)len;
	pthread_mutex_lock(&k->lock);
	k->last_was_cmd = 1;
	pthread_mutex_unlock(&k->lock);
	/* 0xf0..0xff pulse output lines; bit 0 low is the CPU reset.
	 * reset() may stop the VM: call it without the lock held. */
	uint8_t cmd = *(const uint8_t *)data;
	if (cmd >= 0xf0 && !(cmd & 1)) {
		reset(k);
		return;
	}
	pthread_mutex_lock(&k->lock);
	controller_command(k, cmd);
	update_irq(k);
	pthread_mutex_unlock(&k->lock);
}

static void status_read(struct bus_dev *dev, uint64_t off, void *data, unsigned len)
{
	struct i8042 *k = container_of(dev, struct i8042, cmd_dev);
	uint8_t v = STS_SYS | STS_UNLOCKED;

	(void)off;
	pthread_mutex_lock(&k->lock);
	if (k->q_len)
		v |= (uint8_t)(STS_OBF | (k->q_aux[k->q_head] ? STS_AUXDATA : 0));
	if (k->last_was_cmd)
		v |= STS_CMD;
	pthread_mutex_unlock(&k->lock);
	memset(data, 0, len);
	*(uint8_t *)data = v;
}

static const struct bus_dev_ops data_ops = { .read = data_read, .write = data_write };
static const struct bus_dev_ops cmd_ops = { .read = status_read, .write = cmd_write };

struct i8042 *i8042_new(struct irq_line *irq, void (*on_reset)(struct i8042 *k, void *opaque), void *opaque)
{
	struct i8042 *k = calloc(1, sizeof(*k));

	if (!k)
		return NULL;
	k->data_dev = (struct bus_dev){ .ops = &data_ops, .name = "i8042-data" };
	k->cmd_dev = (struct bus_dev){ .ops = &cmd_ops, .name = "i8042-cmd" };
	k->irq = irq;
	k->on_reset = on_reset;
	k->opaque = opaque;
	k->ctr = CTR_KBDINT | CTR_SYS | CTR_XLATE;
	k->irq_level = -1;
	pthread_mutex_init(&k->lock, NULL);
	return k;
}

void i8042_free(struct i8042 *k)
{
	if (!k)
		return;
	pthread_mutex_destroy(&k->lock);
	free(k);
}

struct bus_dev *i8042_data_dev(struct i8042 *k)
{
	return &k->data_dev;
}

struct bus_dev *i8042_cmd_dev(struct i8042 *k)
{
	return &k->cmd_dev;
}

_Static_assert(QUEUE == sizeof(((struct i8042_state *)0)->q), "i8042 queue size");

void i8042_get_state(struct i8042 *k, struct i8042_state *st)
{
	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&k->lock);
	st->ctr = k->ctr;
	st->pending = k->pending;
	st->last_was_cmd = k->last_was_cmd;
	st->q_len = (uint8_t)k->q_len;
	for (unsigned i = 0; i < k->q_len; i++) {
		st->q[i] = k->q[(k->q_head + i) % QUEUE];
		st->q_aux[i] = k->q_aux[(k->q_head + i) % QUEUE];
	}
	pthread_mutex_unlock(&k->lock);
}

int i8042_set_state(struct i8042 *k, const struct i8042_state *st)
{
	if (st->q_len > QUEUE || st->last_was_cmd > 1)
		return -EINVAL;
	pthread_mutex_lock(&k->lock);
	k->ctr = st->ctr;
	k->pending = st->pending;
	k->last_was_cmd = st->last_was_cmd;
	k->q_head = 0;
	k->q_len = st->q_len;
	for (unsigned i = 0; i < st->q_len; i++) {
		k->q[i] = st->q[i];
		k->q_aux[i] = st->q_aux[i] != 0;
	}
	k->irq_level = -1;
	update_irq(k);
	pthread_mutex_unlock(&k->lock);
	return 0;
}

static void i8042_vm_reset(struct i8042 *k, void *opaque)
{
	(void)k;
	vm_request_exit(opaque, VM_EXIT_OK, "guest requested a reset (i8042)");
}

static int i8042_dev_init(struct vm *vm, struct err *e)
{
	int r;

	vm->kbd_irq.gsi = KBD_IRQ;
	vm->i8042 = i8042_new(&vm->kbd_irq.line, i8042_vm_reset, vm);
	if (!vm->i8042)
		return err_set(e, -ENOMEM, "out of memory for the i8042");
	r = bus_register(&vm->pio, I8042_DATA_PORT, 1, &vm->i8042->data_dev);
	if (r == 0)
		r = bus_register(&vm->pio, I8042_CMD_PORT, 1, &vm->i8042->cmd_dev);
	if (r < 0)
		return err_errno(e, r, "cannot place the i8042");
	return 0;
}

static void i8042_dev_exit(struct vm *vm)
{
	i8042_free(vm->i8042);
	vm->i8042 = NULL;
}

/* Version of the "i8042" node (devices/state.h): a change to struct
 * i8042_state needs a bump. */
static const struct state_version i8042_state_version = { .major = 1, .minor = 0, .floor = 0 };

static int i8042_save(struct vm *vm, void *fdt, struct err *e)
{
	struct i8042_state st;

	i8042_get_state(vm->i8042, &st);
	return state_put_regs(fdt, "i8042", &i8042_state_version, &st, sizeof(st), e);
}

static int i8042_load(struct vm *vm, const void *fdt, struct err *e)
{
	struct i8042_state st;
	int r = state_get_regs(fdt, "i8042", &i8042_state_version, &st, sizeof(st), e);

	if (r == 0 && i8042_set_state(vm->i8042, &st) < 0)
		r = err_set(e, -EPROTO, "state: i8042 registers out of range");
	return r;
}

const struct device_type i8042_device_type = {
	.name = "i8042",
	.init = i8042_dev_init,
	.exit = i8042_dev_exit,
	.save = i8042_save,
	.load = i8042_load,
};
