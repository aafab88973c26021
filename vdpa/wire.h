/* SPDX-License-Identifier: MIT */
/*
 * vdpa/wire.h - what the software vDPA device's port is plugged into: a TAP
 * interface, or a UNIX datagram socket joined to a peer socket (another tern,
 * or a test program) with no privileges needed. Frames are plain Ethernet,
 * one per datagram/read.
 *
 * Sends never block: wire_send() returns -EAGAIN when the peer is not
 * draining, and the owner waits for POLLOUT on wire->fd (a connected
 * datagram socket reports POLLOUT when the peer's queue has room).
 */
#ifndef TERN_VDPA_WIRE_H
#define TERN_VDPA_WIRE_H

#include <sys/types.h>
#include <sys/un.h>

#include "vmm/util.h"

#define WIRE_MAX_FRAME 65550

struct wire {
	int fd;                   /* -1 when closed */
	bool is_tap;
	bool connected;           /* socket: connected to the peer */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev;                /* the socket file made at path, so that */
	ino_t ino;                /* close removes it only if still ours */
	struct sockaddr_un peer;
	uint64_t dropped_no_peer; /* frames sent while the peer was absent */
};

int wire_open_socket(struct wire *w, const char *path, const char *peer, struct err *e);
/* Opens (creating if needed) TAP interface name and brings it up. */
int wire_open_tap(struct wire *w, const char *name, struct err *e);
void wire_close(struct wire *w);
/* 0 sent (or dropped: no peer), -EAGAIN peer busy, other -errno. */
int wire_send(struct wire *w, const void *frame, size_t len);
/* Frame length, 0 if nothing waits, or -errno. */
ssize_t wire_recv(struct wire *w, void *buf, size_t cap);

#endif
