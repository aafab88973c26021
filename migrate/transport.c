/* SPDX-License-Identifier: MIT */
/*
 * migrate/transport.c - TCP and UNIX stream sockets for migration.
 */
#include "migrate/transport.h"
#include "vmm/util.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

struct mig_addr {
	bool unix_sock;
	char host[256], port[16]; /* tcp: */
	struct sockaddr_un un;    /* unix: */
};

static int parse(const char *addr, struct mig_addr *a, struct err *e)
{
	memset(a, 0, sizeof(*a));
	if (!strncmp(addr, "unix:", 5)) {
		const char *p = addr + 5;
		if (!*p || strlen(p) >= sizeof(a->un.sun_path))
			return err_set(e, -EINVAL, "'%s': a unix: path must be 1 to %zu bytes", addr,
				       sizeof(a->un.sun_path) - 1);
		a->unix_sock = true;
		a->un.sun_family = AF_UNIX;
		strcpy(a->un.sun_path, p);
		return 0;
	}
	if (strncmp(addr, "tcp:", 4))
		return err_set(e, -EINVAL, "'%s' is not tcp:HOST:PORT or unix:PATH", addr);
	const char *h = addr + 4, *colon;
	size_t hl;
	if (*h == '[') { /* [v6]:port */
		const char *close = strchr(h, ']');
		if (!close || close[1] != ':')
			return err_set(e, -EINVAL, "'%s': an IPv6 host is written [ADDR]:PORT", addr);
		h++;
		hl = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(h, ':');
		if (!colon)
			return err_set(e, -EINVAL, "'%s' lacks a port (tcp:HOST:PORT)", addr);
		hl = (size_t)(colon - h);
	}
	uint64_t port;
	if (!hl || hl >= sizeof(a->host) || parse_u64(colon + 1, 1, 65535, &port) < 0)
		return err_set(e, -EINVAL, "'%s': the host is empty or the port is not 1..65535", addr);
	memcpy(a->host, h, hl);
	snprintf(a->port, sizeof(a->port), "%u", (unsigned)port);
	return 0;
}

int mig_addr_host(const char *addr, char *host, size_t len)
{
	struct mig_addr a;
	struct err e = { { 0 } };

	if (parse(addr, &a, &e) < 0 || a.unix_sock)
		return -EINVAL;
	snprintf(host, len, "%s", a.host);
	return 0;
}

void mig_peer_name(int fd, char *out, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "?", port[8] = "?";

	if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0) {
		snprintf(out, len, "an unknown peer");
		return;
	}
	if (ss.ss_family == AF_UNIX) {
		snprintf(out, len, "a local process");
		return;
	}
	getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), port, sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV);
	snprintf(out, len, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
}

int mig_addr_check(const char *addr, struct err *e)
{
	struct mig_addr a;

	return parse(addr, &a, e);
}

static int resolve(const struct mig_addr *a, const char *addr, bool passive, struct addrinfo **res, struct err *e)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = passive ? AI_PASSIVE : 0 };
	int r = getaddrinfo(a->host, a->port, &hints, res);

	if (r)
		return err_set(e, -EHOSTUNREACH, "'%s': cannot resolve the host: %s", addr, gai_strerror(r));
	return 0;
}

int mig_listen(const char *addr, struct err *e)
{
	struct mig_addr a;
	struct addrinfo *res = NULL;
	int fd = -1, one = 1, r = parse(addr, &a, e);

	if (r < 0)
		return r;
	if (a.unix_sock) {
		struct stat st;
		/* a socket left by a dead tern may go; a live one (someone
		 * accepts on it) and anything else stay */
		if (lstat(a.un.sun_path, &st) == 0) {
			if (!S_ISSOCK(st.st_mode))
				return err_set(e, -EEXIST, "'%s' exists and is not a socket", a.un.sun_path);
			int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
			bool live = probe >= 0 && connect(probe, (struct sockaddr *)&a.un, sizeof(a.un)) == 0;
			if (probe >= 0)
				close(probe);
			if (live)
				return err_set(e, -EADDRINUSE, "'%s' is in use by another process", a.un.sun_path);
			unlink(a.un.sun_path);
		}
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&a.un, sizeof(a.un)) < 0 || listen(fd, 8) < 0)
			goto fail;
		return fd;
	}
	if ((r = resolve(&a, addr, true, &res, e)) < 0)
		return r;
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 8) < 0) {
		freeaddrinfo(res);
		goto fail;
	}
	freeaddrinfo(res);
	return fd;

fail:
	r = -errno;
	if (fd >= 0)
		close(fd);
	return err_errno(e, r, "cannot listen on '%s'", addr);
}

bool mig_cancelled(const struct mig_cancel *c)
{
	struct pollfd p[2];
	int r;

	if (!c)
		return false;
	for (unsigned i = 0; i < 2; i++)
		p[i] = (struct pollfd){ .fd = c->fd[i], .events = POLLIN }; /* poll skips fd -1 */
	do
		r = poll(p, 2, 0);
	while (r < 0 && errno == EINTR);
	return r > 0;
}

int mig_accept(int lfd, const char *addr, unsigned timeout_ms, const struct mig_cancel *cancel, struct err *e)
{
	struct pollfd p[3] = { { .fd = lfd, .events = POLLIN }, { .fd = -1 }, { .fd = -1 } };
	int r;

	for (unsigned i = 0; cancel && i < 2; i++)
		p[1 + i] = (struct pollfd){ .fd = cancel->fd[i], .events = POLLIN };
	do
		r = poll(p, 3, timeout_ms ? (int)timeout_ms : -1);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return err_set(e, -ETIMEDOUT, "no migration arrived on '%s' within %u s", addr, timeout_ms / 1000);
	if (r < 0)
		return err_errno(e, -errno, "waiting on '%s'", addr);
	if (p[1].revents || p[2].revents)
		return err_set(e, -ECANCELED, "stopped while waiting for a migration on '%s'", addr);
	r = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (r < 0)
		return err_errno(e, -errno, "accept on '%s'", addr);
	return r;
}

/* connect() with a deadline: non-blocking, poll, then blocking again. */
static int connect_timeout(int fd, const struct sockaddr *sa, socklen_t len, unsigned timeout_ms)
{
	int fl = fcntl(fd, F_GETFL), soerr = 0, r;
	socklen_t sl = sizeof(soerr);
	struct pollfd p = { .fd = fd, .events = POLLOUT };

	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	r = connect(fd, sa, len);
	if (r < 0 && errno == EINPROGRESS) {
		do
			r = poll(&p, 1, (int)timeout_ms);
		while (r < 0 && errno == EINTR);
		if (r == 0)
			r = -ETIMEDOUT;
		else if (r < 0)
			r = -errno;
		else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr)
			r = soerr ? -soerr : -errno;
		else
			r = 0;
	} else if (r < 0) {
		r = -errno;
	}
	fcntl(fd, F_SETFL, fl);
	return r;
}

int mig_connect(const char *addr, unsigned timeout_ms, struct err *e)
{
	struct mig_addr a;
	struct addrinfo *res = NULL, *ai;
	int fd = -1, r = parse(addr, &a, e);

	if (r < 0)
		return r;
	if (a.unix_sock) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return err_errno(e, -errno, "socket");
		r = connect_timeout(fd, (struct sockaddr *)&a.un, sizeof(a.un), timeout_ms);
	} else {
		if ((r = resolve(&a, addr, false, &res, e)) < 0)
			return r;
		r = -EHOSTUNREACH;
		for (ai = res; ai && r < 0; ai = ai->ai_next) {
			if (fd >= 0)
				close(fd);
			fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
			r = fd < 0 ? -errno : connect_timeout(fd, ai->ai_addr, ai->ai_addrlen, timeout_ms);
		}
		freeaddrinfo(res);
	}
	if (r < 0) {
		if (fd >= 0)
			close(fd);
		return err_errno(e, r, "cannot connect to '%s'", addr);
	}
	return fd;
}

void mig_drain_before_close(int fd, unsigned timeout_ms)
{
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000u;
	char sink[4096];

	/* (a TCP close with unread data in its receive queue sends a reset,
	 * which discards what the peer has not yet read of ours) */
	shutdown(fd, SHUT_WR);
	for (;;) {
		uint64_t now = now_ns();
		if (now >= deadline)
			return;
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		if (poll(&pfd, 1, (int)((deadline - now) / 1000000u) + 1) <= 0)
			return;
		ssize_t n = recv(fd, sink, sizeof(sink), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			return;
	}
}

void mig_set_timeout(int fd, unsigned timeout_ms)
{
	struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
	int one = 1, idle = 1, intvl = 1, cnt = 3;
	unsigned ut = timeout_ms;

	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	/* TCP only (ENOPROTOOPT on UNIX sockets, harmlessly): unacknowledged
	 * data or silent keepalives for timeout_ms fail the connection */
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ut, sizeof(ut));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int mig_listen_identity(const char *addr, struct mig_listen_id *id)
{
	struct stat st;

	memset(id, 0, sizeof(*id));
	if (strncmp(addr, "unix:", 5) || lstat(addr + 5, &st) < 0)
		return -ENOENT;
	id->dev = st.st_dev;
	id->ino = st.st_ino;
	id->valid = true;
	return 0;
}

void mig_unlink(const char *addr, const struct mig_listen_id *id)
{
	struct stat st;

	/* only the socket this tern bound: another may have taken the path */
	if (!strncmp(addr, "unix:", 5) && id && id->valid && lstat(addr + 5, &st) == 0 && st.st_dev == id->dev &&
	    st.st_ino == id->ino)
		unlink(addr + 5);
}
