/* SPDX-License-Identifier: MIT */
/*
 * cmd/console.h - tern's stdin as the guest's serial console. When stdin is
 * a terminal it is put in raw mode (restored by console_exit()), so keys
 * reach the guest unchanged. Ctrl-A x quits tern; Ctrl-A Ctrl-A sends one
 * Ctrl-A to the guest.
 */
#ifndef TERN_CMD_CONSOLE_H
#define TERN_CMD_CONSOLE_H

#include <termios.h>

#include "vmm/event.h"

struct vm;

struct console {
	struct event_source src; /* stdin readiness */
	struct vm *vm;
	bool raw;                /* terminal settings were changed */
	bool escape;             /* Ctrl-A seen, awaiting the command key */
	struct termios saved;    /* settings to restore, when raw */
};

#define CONSOLE_ESCAPE 0x01 /* Ctrl-A */

int console_init(struct console *c, struct vm *vm, int in_fd, struct err *e);
void console_exit(struct console *c);
/* Interprets escape sequences in buf and forwards the rest to the UART.
 * Exposed for tests. */
void console_input(struct console *c, const uint8_t *buf, size_t len);

#endif
