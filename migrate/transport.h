/* SPDX-License-Identifier: MIT */
/*
 * migrate/transport.h - where a migration stream goes: "tcp:HOST:PORT"
 * (HOST a name, an IPv4 address or a bracketed IPv6 address) or
 * "unix:PATH". Connections are blocking sockets with timeouts on every
 * send and receive, and on TCP a user timeout with keepalives, so a peer
 * that vanishes without a reset (a black hole) is noticed within the
 * timeout rather than never.
 */
#ifndef TERN_MIGRATE_TRANSPORT_H
#define TERN_MIGRATE_TRANSPORT_H

#include <sys/types.h>

#include "vmm/util.h"

/* Checks the syntax of an address (no resolution, no socket). */
int mig_addr_check(const char *addr, struct err *e);
/* Listens on addr (a unix: path must not exist as anything but a stale
 * socket: one that a live process accepts on is refused, -EADDRINUSE).
 * Returns the listening fd or -errno. */
int mig_listen(const char *addr, struct err *e);
/* What ends a destination's wait early: descriptors (a signalfd, an
 * eventfd) that become readable when the wait should stop; -1 entries are
 * unused. They are only polled, never read, so their owner can still tell
 * which one fired and why. */
struct mig_cancel {
	int fd[2];
};
/* Whether one of c's descriptors is readable now (false for c NULL). */
bool mig_cancelled(const struct mig_cancel *c);
/* Waits for one connection (timeout_ms 0: forever), or until one of
 * cancel's descriptors is readable (-ECANCELED; cancel may be NULL);
 * returns its fd. */
int mig_accept(int lfd, const char *addr, unsigned timeout_ms, const struct mig_cancel *cancel, struct err *e);
/* Connects to addr within timeout_ms; returns the fd. */
int mig_connect(const char *addr, unsigned timeout_ms, struct err *e);
/* Before closing a connection just answered with a refusal: ends this
 * side's sending and reads what the peer still sends (until its EOF, or
 * for at most timeout_ms), so that closing does not reset the connection
 * and destroy the answer before the peer has read it. */
void mig_drain_before_close(int fd, unsigned timeout_ms);
/* Send and receive timeouts (and TCP_USER_TIMEOUT) of timeout_ms. */
void mig_set_timeout(int fd, unsigned timeout_ms);
/* What a unix: listening socket's path named when this tern bound it, so
 * that only that one is ever removed. */
struct mig_listen_id {
	bool valid;
	dev_t dev;
	ino_t ino;
};
int mig_listen_identity(const char *addr, struct mig_listen_id *id);
/* Removes a unix: listening socket's file if it is still the one id
 * recorded; nothing for tcp:. */
void mig_unlink(const char *addr, const struct mig_listen_id *id);
/* The host of a tcp: address (the name or address the source connects
 * to, without brackets); -EINVAL for unix:. */
int mig_addr_host(const char *addr, char *host, size_t len);
/* "ADDR:PORT" of a connection's peer, for the log. */
void mig_peer_name(int fd, char *out, size_t len);

#endif
