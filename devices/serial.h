/* SPDX-License-Identifier: MIT */
/*
 * devices/serial.h - a 16550A UART (COM1 at 0x3f8, IRQ 4): the console.
 *
 * Output bytes go to an fd through a queue (serial_out.h) that never blocks
 * the vCPU; input is queued by the event loop with
 * serial_receive(). Interrupts follow the 16550's IIR priority (receive data,
 * then transmitter empty, then modem status) and drive an irq_line level.
 */
#ifndef TERN_DEVICES_SERIAL_H
#define TERN_DEVICES_SERIAL_H

#include "vmm/bus.h"

struct sandbox;

struct irq_line;
struct serial;

#define SERIAL_RX_QUEUE 1024 /* bytes buffered for the guest; more is an overrun */

/* irq may be NULL (polled use); out_fd receives transmitted bytes. */
struct serial *serial_new(struct irq_line *irq, int out_fd, const struct sandbox *sb);
void serial_free(struct serial *s);
struct bus_dev *serial_bus_dev(struct serial *s);
/* Queues input for the guest; returns how many bytes were accepted (the rest
 * is dropped and flagged as an overrun, as the hardware would). */
size_t serial_receive(struct serial *s, const uint8_t *buf, size_t len);

/* The regs of the state tree's "serial" node (serial.c): fixed layout; a
 * change here needs a version bump (devices/state.h). */
struct serial_state {
	uint8_t ier, lcr, mcr, scr, fcr, dll, dlm, lsr_err;
	uint8_t thr_ipending, rsvd[3];
	uint32_t rx_len;
	uint8_t rx[SERIAL_RX_QUEUE];
};
_Static_assert(sizeof(struct serial_state) == 16 + SERIAL_RX_QUEUE, "serial_state layout");

void serial_get_state(struct serial *s, struct serial_state *st);
/* Fails with -EINVAL on out-of-range values. */
int serial_set_state(struct serial *s, const struct serial_state *st);

#endif
