/* SPDX-License-Identifier: MIT */
#include "cmd/console.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "devices/serial.h"
#include "vmm/vm.h"

void console_input(struct console *c, const uint8_t *buf, size_t len)
{
	uint8_t out[256];
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		uint8_t ch = buf[i];
		if (c->escape) {
			c->escape = false;
			if (ch == 'x' || ch == 'X') {
				vm_request_exit(c->vm, VM_EXIT_OK, "console: Ctrl-A x");
				break;
			}
			if (ch != CONSOLE_ESCAPE)
				continue; /* unknown command: dropped */
		} else if (ch == CONSOLE_ESCAPE) {
			c->escape = true;
			continue;
		}
		out[n++] = ch;
		if (n == sizeof(out)) {
			serial_receive(c->vm->serial, out, n);
			n = 0;
		}
	}
	if (n && c->vm->serial)
		serial_receive(c->vm->serial, out, n);
}

static bool console_ready(struct event_source *src, unsigned revents)
{
	struct console *c = container_of(src, struct console, src);
	uint8_t buf[256];
	ssize_t n;

	(void)revents;
	n = read(src->fd, buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	if (n <= 0)
		return false; /* end of input: the guest keeps running */
	console_input(c, buf, (size_t)n);
	return true;
}

int console_init(struct console *c, struct vm *vm, int in_fd, struct err *e)
{
	memset(c, 0, sizeof(*c));
	c->vm = vm;
	c->src = (struct event_source){ .fd = in_fd, .ready = console_ready };
	if (isatty(in_fd)) {
		struct termios raw;
		if (tcgetattr(in_fd, &c->saved) < 0)
			return err_errno(e, -errno, "tcgetattr on the console");
		raw = c->saved;
		cfmakeraw(&raw);
		/* keep output post-processing: tern's own messages end in \n */
		raw.c_oflag |= OPOST | ONLCR;
		if (tcsetattr(in_fd, TCSANOW, &raw) < 0)
			return err_errno(e, -errno, "cannot put the console in raw mode");
		c->raw = true;
	}
	return 0;
}

void console_exit(struct console *c)
{
	if (c->raw)
		tcsetattr(c->src.fd, TCSANOW, &c->saved);
	c->raw = false;
}
