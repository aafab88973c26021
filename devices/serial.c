/* SPDX-License-Identifier: MIT */
/*
 * devices/serial.c - 16550A emulation. Register behaviour from the National
 * Semiconductor PC16550D data sheet; the loopback and FIFO-detection details
 * are what Linux's 8250 driver probes at boot.
 */
#include "devices/serial.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/device.h"
#include "devices/state.h"
#include "devices/serial_out.h"
#include "firmware/abi.h"
#include "vmm/vm.h"

#define UART_RBR 0 /* r, DLAB=0 */
#define UART_THR 0 /* w, DLAB=0 */
#define UART_IER 1
#define UART_IIR 2 /* r */
#define UART_FCR 2 /* w */
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7

#define IER_RDI 0x01
#define IER_THRI 0x02
#define IER_RLSI 0x04
#define IER_MSI 0x08
#define IIR_NO_INT 0x01
#define IIR_MSI 0x00
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_RLSI 0x06
#define IIR_FIFO 0xc0
#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define LCR_DLAB 0x80
#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define LSR_DR 0x01
#define LSR_OE 0x02
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI 0x40
#define MSR_DCD 0x80

struct serial {
	struct bus_dev dev;       /* on the PIO bus at COM1_PORT */
	struct irq_line *irq;     /* may be NULL */
	int out_fd;
	struct serial_out *out;   /* the console's output queue (out_fd >= 0) */
	pthread_mutex_t lock;     /* every field below */
	uint8_t ier, lcr, mcr, scr, fcr, dll, dlm;
	uint8_t lsr_err;          /* sticky LSR error bits (OE), cleared on read */
	bool thr_ipending;        /* THR-empty interrupt not yet acknowledged */
	int irq_level;            /* last level driven, -1 before the first */
	size_t rx_head, rx_len;   /* ring of received bytes */
	uint8_t rx[SERIAL_RX_QUEUE];
};

static uint8_t serial_iir(const struct serial *s)
{
	uint8_t fifo = (s->fcr & FCR_ENABLE) ? IIR_FIFO : 0;

	if ((s->ier & IER_RLSI) && s->lsr_err)
		return fifo | IIR_RLSI;
	if ((s->ier & IER_RDI) && s->rx_len)
		return fifo | IIR_RDI;
	if ((s->ier & IER_THRI) && s->thr_ipending)
		return fifo | IIR_THRI;
	return fifo | IIR_NO_INT;
}

/* Called with the lock held after any state change. */
static void serial_update_irq(struct serial *s)
{
	int level = !(serial_iir(s) & IIR_NO_INT);

	if (level == s->irq_level || !s->irq)
		return;
	s->irq_level = level;
	s->irq->set(s->irq, level);
}

static void serial_rx_push(struct serial *s, uint8_t c)
{
	if (s->rx_len == SERIAL_RX_QUEUE) {
		s->lsr_err |= LSR_OE;
		return;
	}
	s->rx[(s->rx_head + s->rx_len) % SERIAL_RX_QUEUE] = c;
	s->rx_len++;
}

static void serial_transmit(struct serial *s, uint8_t c)
{
	if (s->mcr & MCR_LOOP) {
		serial_rx_push(s, c);
	} else if (s->out) {
		/* never blocks: a stalled console must not hold the vCPU */
		serial_out_put(s->out, c);
	}
	s->thr_ipending = true;
}

static uint8_t serial_msr(const struct serial *s)
{
	if (s->mcr & MCR_LOOP)
		return (uint8_t)(((s->mcr & MCR_OUT2) ? MSR_DCD : 0) | ((s->mcr & MCR_OUT1) ? MSR_RI : 0) |
				 ((s->mcr & MCR_DTR) ? MSR_DSR : 0) | ((s->mcr & MCR_RTS) ? MSR_CTS : 0));
	return MSR_DCD | MSR_DSR | MSR_CTS;
}

static void serial_read(struct bus_dev *dev, uint64_t off, void *data, unsigned len)
{
	struct serial *s = container_of(dev, struct serial, dev);
	uint8_t v = 0xff;

	pthread_mutex_lock(&s->lock);
	switch (off) {
	case UART_RBR:
		if (s->lcr & LCR_DLAB) {
			v = s->dll;
		} else if (s->rx_len) {
			v = s->rx[s->rx_head];
			s->rx_head = (s->rx_head + 1) % SERIAL_RX_QUEUE;
			s->rx_len--;
		} else {
			v = 0;
		}
		break;
	case UART_IER:
		v = (s->lcr & LCR_DLAB) ? s->dlm : s->ier;
		break;
	case UART_IIR:
		v = serial_iir(s);
		/* Reading IIR acknowledges a THR-empty interrupt it reports. */
		if ((v & 0x0f) == IIR_THRI)
			s->thr_ipending = false;
		break;
	case UART_LCR:
		v = s->lcr;
		break;
	case UART_MCR:
		v = s->mcr;
		break;
	case UART_LSR:
		v = (uint8_t)(LSR_THRE | LSR_TEMT | (s->rx_len ? LSR_DR : 0) | s->lsr_err);
		s->lsr_err = 0;
		break;
	case UART_MSR:
		v = serial_msr(s);
		break;
	case UART_SCR:
		v = s->scr;
		break;
	}
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
	memset(data, 0, len);
	*(uint8_t *)data = v;
}

static void serial_write(struct bus_dev *dev, uint64_t off, const void *data, unsigned len)
{
	struct serial *s = container_of(dev, struct serial, dev);
	uint8_t v = *(const uint8_t *)data;

	(void)len;
	pthread_mutex_lock(&s->lock);
	switch (off) {
	case UART_THR:
		if (s->lcr & LCR_DLAB)
			s->dll = v;
		else
			serial_transmit(s, v);
		break;
	case UART_IER:
		if (s->lcr & LCR_DLAB) {
			s->dlm = v;
		} else {
			/* Enabling the THR interrupt with the THR empty raises it. */
			if ((v & IER_THRI) && !(s->ier & IER_THRI))
				s->thr_ipending = true;
			s->ier = v & 0x0f;
		}
		break;
	case UART_FCR:
		s->fcr = v & 0xc9;
		if (v & FCR_CLEAR_RX)
			s->rx_head = s->rx_len = 0;
		break;
	case UART_LCR:
		s->lcr = v;
		break;
	case UART_MCR:
		s->mcr = v & 0x1f;
		break;
	case UART_SCR:
		s->scr = v;
		break;
	default:
		break; /* LSR and MSR are read-only */
	}
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

static const struct bus_dev_ops serial_ops = {
	.read = serial_read,
	.write = serial_write,
};

struct serial *serial_new(struct irq_line *irq, int out_fd, const struct sandbox *sb)
{
	struct serial *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->dev = (struct bus_dev){ .ops = &serial_ops, .name = "serial" };
	s->irq = irq;
	s->out_fd = out_fd;
	s->irq_level = -1;
	s->dll = 0x0c; /* 9600 baud until the guest says otherwise */
	if (out_fd >= 0 && !(s->out = serial_out_new(out_fd, sb))) {
		free(s);
		return NULL;
	}
	pthread_mutex_init(&s->lock, NULL);
	return s;
}

void serial_free(struct serial *s)
{
	if (!s)
		return;
	serial_out_free(s->out); /* what the guest wrote goes out first */
	pthread_mutex_destroy(&s->lock);
	free(s);
}

struct bus_dev *serial_bus_dev(struct serial *s)
{
	return &s->dev;
}

size_t serial_receive(struct serial *s, const uint8_t *buf, size_t len)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = SERIAL_RX_QUEUE - s->rx_len;
	if (n > len)
		n = len;
	for (size_t i = 0; i < n; i++)
		serial_rx_push(s, buf[i]);
	if (n < len)
		s->lsr_err |= LSR_OE;
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return n;
}

void serial_get_state(struct serial *s, struct serial_state *st)
{
	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&s->lock);
	*st = (struct serial_state){ .ier = s->ier, .lcr = s->lcr, .mcr = s->mcr, .scr = s->scr, .fcr = s->fcr,
				     .dll = s->dll, .dlm = s->dlm, .lsr_err = s->lsr_err,
				     .thr_ipending = s->thr_ipending, .rx_len = (uint32_t)s->rx_len };
	for (size_t i = 0; i < s->rx_len; i++)
		st->rx[i] = s->rx[(s->rx_head + i) % SERIAL_RX_QUEUE];
	pthread_mutex_unlock(&s->lock);
}

int serial_set_state(struct serial *s, const struct serial_state *st)
{
	if (st->rx_len > SERIAL_RX_QUEUE || st->ier > 0x0f || st->mcr > 0x1f || st->thr_ipending > 1)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	s->ier = st->ier;
	s->lcr = st->lcr;
	s->mcr = st->mcr;
	s->scr = st->scr;
	s->fcr = st->fcr;
	s->dll = st->dll;
	s->dlm = st->dlm;
	s->lsr_err = st->lsr_err & LSR_OE;
	s->thr_ipending = st->thr_ipending;
	s->rx_head = 0;
	s->rx_len = st->rx_len;
	memcpy(s->rx, st->rx, st->rx_len);
	s->irq_level = -1; /* drive the line afresh */
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static int serial_dev_init(struct vm *vm, struct err *e)
{
	int r;

	vm->com1_irq.gsi = COM1_IRQ;
	vm->serial = serial_new(&vm->com1_irq.line, vm->cfg.console_out_fd, &vm->cfg.sandbox);
	if (!vm->serial)
		return err_set(e, -ENOMEM, "out of memory for the serial port");
	r = bus_register(&vm->pio, COM1_PORT, 8, &vm->serial->dev);
	if (r < 0)
		return err_errno(e, r, "cannot place the serial port at 0x%x", COM1_PORT);
	return 0;
}

static void serial_dev_exit(struct vm *vm)
{
	serial_free(vm->serial);
	vm->serial = NULL;
}

/* Version of the "serial" node (devices/state.h): a change to struct
 * serial_state needs a bump. */
static const struct state_version serial_state_version = { .major = 1, .minor = 0, .floor = 0 };

static int serial_save(struct vm *vm, void *fdt, struct err *e)
{
	struct serial_state st;

	serial_get_state(vm->serial, &st);
	return state_put_regs(fdt, "serial", &serial_state_version, &st, sizeof(st), e);
}

static int serial_load(struct vm *vm, const void *fdt, struct err *e)
{
	struct serial_state st;
	int r = state_get_regs(fdt, "serial", &serial_state_version, &st, sizeof(st), e);

	if (r == 0 && serial_set_state(vm->serial, &st) < 0)
		r = err_set(e, -EPROTO, "state: serial registers out of range");
	return r;
}

const struct device_type serial_device_type = {
	.name = "serial",
	.init = serial_dev_init,
	.exit = serial_dev_exit,
	.save = serial_save,
	.load = serial_load,
};
