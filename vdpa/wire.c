/* SPDX-License-Identifier: MIT */
#include "vdpa/wire.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static int set_sun(struct sockaddr_un *a, const char *path)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(a->sun_path))
		return -ENAMETOOLONG;
	strcpy(a->sun_path, path);
	return 0;
}

int wire_open_socket(struct wire *w, const char *path, const char *peer, struct err *e)
{
	struct sockaddr_un me;
	struct stat st;

	memset(w, 0, sizeof(*w));
	w->fd = -1;
	if (set_sun(&me, path) < 0 || set_sun(&w->peer, peer) < 0)
		return err_set(e, -ENAMETOOLONG, "socket path too long (at most %zu bytes)", sizeof(me.sun_path) - 1);
	/* A stale socket from an earlier run is replaced; anything else is not. */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return err_set(e, -EEXIST, "'%s' exists and is not a socket", path);
		unlink(path);
	}
	w->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (w->fd < 0)
		return err_errno(e, -errno, "socket(AF_UNIX)");
	if (bind(w->fd, (struct sockaddr *)&me, sizeof(me)) < 0) {
		int r = err_errno(e, -errno, "cannot bind '%s'", path);
		wire_close(w);
		return r;
	}
	strcpy(w->path, path);
	if (lstat(path, &st) == 0) {
		w->dev = st.st_dev;
		w->ino = st.st_ino;
	}
	return 0;
}

int wire_open_tap(struct wire *w, const char *name, struct err *e)
{
	struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI };
	int s;

	memset(w, 0, sizeof(*w));
	w->is_tap = true;
	if (strlen(name) >= IFNAMSIZ)
		return err_set(e, -ENAMETOOLONG, "TAP name '%s' is too long", name);
	strcpy(ifr.ifr_name, name);
	w->fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (w->fd < 0)
		return err_errno(e, -errno, "cannot open /dev/net/tun");
	if (ioctl(w->fd, TUNSETIFF, &ifr) < 0) {
		int r = err_errno(e, -errno, "cannot attach to TAP '%s'", name);
		wire_close(w);
		return r;
	}
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s >= 0) {
		if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
			ifr.ifr_flags |= IFF_UP;
			ioctl(s, SIOCSIFFLAGS, &ifr);
		}
		close(s);
	}
	w->connected = true;
	return 0;
}

void wire_close(struct wire *w)
{
	struct stat st;

	if (w->fd >= 0)
		close(w->fd);
	/* A later tern on this host (a restore, a migration's destination)
	 * may have taken the path over: its socket file is not ours to remove. */
	if (w->path[0] && lstat(w->path, &st) == 0 && st.st_dev == w->dev && st.st_ino == w->ino)
		unlink(w->path);
	w->fd = -1;
	w->path[0] = '\0';
}

int wire_send(struct wire *w, const void *frame, size_t len)
{
	ssize_t n;

	if (!w->connected) {
		if (connect(w->fd, (struct sockaddr *)&w->peer, sizeof(w->peer)) < 0) {
			w->dropped_no_peer++; /* the cable is not plugged in yet */
			return 0;
		}
		w->connected = true;
	}
	do {
		n = w->is_tap ? write(w->fd, frame, len) : send(w->fd, frame, len, MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n >= 0)
		return 0;
	if (errno == EAGAIN)
		return -EAGAIN;
	if (!w->is_tap && (errno == ECONNREFUSED || errno == ENOTCONN)) {
		/* the peer went away: reconnect on the next frame */
		struct sockaddr_un none = { .sun_family = AF_UNSPEC };
		connect(w->fd, (struct sockaddr *)&none, sizeof(none));
		w->connected = false;
		w->dropped_no_peer++;
		return 0;
	}
	return -errno;
}

ssize_t wire_recv(struct wire *w, void *buf, size_t cap)
{
	ssize_t n;

	do {
		n = w->is_tap ? read(w->fd, buf, cap) : recv(w->fd, buf, cap, MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN ? 0 : -errno;
	return n;
}
