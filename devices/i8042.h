/* SPDX-License-Identifier: MIT */
/*
 * devices/i8042.h - the PS/2 controller, as far as guests need it: its
 * command byte, self tests, a keyboard that acknowledges, and the reset line
 * (command 0xfe, or the output port's bit 0), which stops tern with status 0.
 */
#ifndef TERN_DEVICES_I8042_H
#define TERN_DEVICES_I8042_H

#include "vmm/bus.h"

struct i8042;
struct irq_line;

/* on_reset is called (from a vCPU thread) when the guest pulls reset. */
struct i8042 *i8042_new(struct irq_line *irq, void (*on_reset)(struct i8042 *k, void *opaque), void *opaque);
void i8042_free(struct i8042 *k);
struct bus_dev *i8042_data_dev(struct i8042 *k);
struct bus_dev *i8042_cmd_dev(struct i8042 *k);

/* The regs of the state tree's "i8042" node (i8042.c): a change here
 * needs a version bump (devices/state.h). */
struct i8042_state {
	uint8_t ctr, pending, last_was_cmd, q_len;
	uint8_t q[16];
	uint8_t q_aux[16];
};
_Static_assert(sizeof(struct i8042_state) == 36, "i8042_state layout");

void i8042_get_state(struct i8042 *k, struct i8042_state *st);
int i8042_set_state(struct i8042 *k, const struct i8042_state *st);

#endif
