/* SPDX-License-Identifier: MIT */
/*
 * migrate/stream.c - records on a socket (see stream.h).
 */
#include "migrate/stream.h"
#include "migrate/tls.h"
#include "migrate/transport.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* A socket timeout (SO_SNDTIMEO/SO_RCVTIMEO) shows as EAGAIN. */
static int io_err(int err)
{
	return err == EAGAIN || err == EWOULDBLOCK ? -ETIMEDOUT : -err;
}

static int io_fail(const struct mig_stream *s, struct err *e, int r, const char *dir)
{
	if (r == -EACCES && mig_tls_alert(s->tls))
		return err_set(e, r, "TLS: the peer ended the session while %s (%s): it refused this side's certificate "
				     "or the session", dir, mig_tls_alert(s->tls));
	if (r == -EPIPE || r == -ECONNRESET)
		return err_set(e, r, "migration connection closed by the peer while %s", dir);
	if (r == -ETIMEDOUT)
		return err_set(e, r, "migration connection timed out while %s", dir);
	if (r == -EBADMSG)
		return err_set(e, r, "migration connection: a TLS record failed its authentication while %s (damaged or "
				     "tampered with in flight)", dir);
	return err_errno(e, r, "migration connection failed while %s", dir);
}

/* Sleeps as long as the bandwidth limit asks after another n bytes. */
static void throttle(struct mig_stream *s)
{
	if (!s->limit)
		return;
	uint64_t now = now_ns();
	if (!s->limit_start_ns)
		s->limit_start_ns = now;
	uint64_t due = s->limit_start_ns + (uint64_t)((double)s->sent * 1e9 / (double)s->limit);
	if (due > now) {
		struct timespec ts = { .tv_sec = (time_t)((due - now) / 1000000000u),
				       .tv_nsec = (long)((due - now) % 1000000000u) };
		nanosleep(&ts, NULL);
	}
}

static int write_iov(struct mig_stream *s, struct iovec *iov, int n)
{
	if (s->tls) {
		ssize_t w = mig_tls_sendv(s->tls, iov, n);
		if (w < 0)
			return (int)w;
		s->sent += (uint64_t)w;
		throttle(s);
		return 0;
	}
	while (n > 0) {
		struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)n };
		ssize_t w = sendmsg(s->fd, &m, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return io_err(errno);
		s->sent += (uint64_t)w;
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	throttle(s);
	return 0;
}

static int read_all(struct mig_stream *s, void *p, size_t len)
{
	uint8_t *b = p;

	while (len) {
		ssize_t n = s->tls ? mig_tls_recv(s->tls, b, len) : recv(s->fd, b, len, 0);
		if (s->tls && n < 0)
			return (int)n;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return io_err(errno);
		if (n == 0)
			return -EPIPE;
		s->received += (uint64_t)n;
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

int mig_send_hello(struct mig_stream *s, struct err *e)
{
	struct rec_file_header h;
	struct iovec iov = { &h, sizeof(h) };
	int r;

	rec_hello_init(&h, MIG_MAGIC);
	r = write_iov(s, &iov, 1);
	return r < 0 ? io_fail(s, e, r, "sending the stream header") : 0;
}

int mig_recv_hello(struct mig_stream *s, struct err *e)
{
	struct rec_file_header h;
	int r = read_all(s, &h, sizeof(h));

	if (r < 0)
		return io_fail(s, e, r, "receiving the stream header");
	return rec_hello_check(&h, MIG_MAGIC, "migration stream", e);
}

int mig_sendv(struct mig_stream *s, uint32_t type, const struct iovec *iov, int iovcnt, struct err *e)
{
	struct iovec v[8];
	struct rec_header h = { .type = type };
	uint8_t tail[REC_TRAILER_MAX];
	uint32_t crc;
	int r;

	if (iovcnt > 6)
		return err_set(e, -EINVAL, "too many pieces for one record");
	for (int i = 0; i < iovcnt; i++)
		h.len += iov[i].iov_len;
	crc = crc32c(&h, sizeof(h), 0);
	v[0] = (struct iovec){ &h, sizeof(h) };
	for (int i = 0; i < iovcnt; i++) {
		crc = crc32c(iov[i].iov_base, iov[i].iov_len, crc);
		v[1 + i] = iov[i];
	}
	v[1 + iovcnt] = (struct iovec){ tail, rec_trailer(h.len, crc, tail) };
	r = write_iov(s, v, iovcnt + 2);
	return r < 0 ? io_fail(s, e, r, "sending") : 0;
}

int mig_send(struct mig_stream *s, uint32_t type, const void *payload, size_t len, struct err *e)
{
	struct iovec v = { (void *)(uintptr_t)payload, len };

	return mig_sendv(s, type, &v, len ? 1 : 0, e);
}

void mig_send_msg(struct mig_stream *s, uint32_t type, const char *msg)
{
	struct err ignored = { { 0 } };
	size_t n = strlen(msg);

	mig_send(s, type, msg, n < MIG_MSG_MAX ? n : MIG_MSG_MAX, &ignored);
}

int mig_recv_header(struct mig_stream *s, struct rec_header *h, struct err *e)
{
	int r;

	/* a record is at most MIG_RUN_MAX pages: a stop request waits for no
	 * more than that, or for the stream's timeout */
	if (mig_cancelled(s->cancel))
		return err_set(e, -ECANCELED, "stopped while receiving the migration");
	r = read_all(s, h, sizeof(*h));
	if (r < 0)
		return io_fail(s, e, r, "receiving");
	if (h->rsvd)
		return err_set(e, -EPROTO, "migration record (type %u) has reserved bits set", h->type);
	return 0;
}

int mig_recv_payload(struct mig_stream *s, void *dst, size_t len, uint32_t *crc, struct err *e)
{
	int r = read_all(s, dst, len);

	if (r < 0)
		return io_fail(s, e, r, "receiving");
	*crc = crc32c(dst, len, *crc);
	return 0;
}

int mig_recv_trailer(struct mig_stream *s, const struct rec_header *h, uint32_t crc, struct err *e)
{
	uint8_t tail[REC_TRAILER_MAX];
	int r = read_all(s, tail, 4 + rec_pad(h->len));

	if (r < 0)
		return io_fail(s, e, r, "receiving");
	r = rec_trailer_check(tail, h->len, crc);
	if (r == REC_BAD_CRC)
		return err_set(e, -EPROTO, "migration record (type %u, %llu bytes) is corrupt (CRC mismatch)", h->type,
			       (unsigned long long)h->len);
	if (r == REC_BAD_PADDING)
		return err_set(e, -EPROTO, "migration record (type %u) has non-zero padding", h->type);
	return 0;
}

int mig_recv(struct mig_stream *s, struct rec_header *h, void **payload, size_t max, struct err *e)
{
	uint32_t crc;
	int r;

	*payload = NULL;
	if ((r = mig_recv_header(s, h, e)) < 0)
		return r;
	if (h->len > max)
		return err_set(e, -EPROTO, "migration record (type %u) of %llu bytes exceeds %zu", h->type,
			       (unsigned long long)h->len, max);
	crc = crc32c(h, sizeof(*h), 0);
	if (h->len) {
		*payload = malloc(h->len + 1); /* +1: messages get a NUL */
		if (!*payload)
			return err_set(e, -ENOMEM, "out of memory for a migration record");
		((char *)*payload)[h->len] = '\0';
		r = mig_recv_payload(s, *payload, h->len, &crc, e);
	}
	if (r == 0)
		r = mig_recv_trailer(s, h, crc, e);
	if (r < 0) {
		free(*payload);
		*payload = NULL;
	}
	return r;
}

/* A peer's message, made printable. */
static void shown(char *msg)
{
	for (char *p = msg; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
}

int mig_expect(struct mig_stream *s, uint32_t type, const char *what, struct err *e)
{
	struct rec_header h;
	void *p = NULL;
	int r = mig_recv(s, &h, &p, MIG_MSG_MAX, e);

	if (r < 0) {
		if (r == -EPIPE)
			err_set(e, r, "the peer closed the connection while this side waited for %s", what);
		return r;
	}
	if (h.type == MIG_REFUSE || h.type == MIG_ERROR) {
		if (p)
			shown(p);
		r = err_set(e, h.type == MIG_REFUSE ? -ECONNREFUSED : -ECONNABORTED, "the peer %s: %s",
			    h.type == MIG_REFUSE ? "refused the migration" : "gave up", p ? (char *)p : "no reason given");
	} else if (h.type == MIG_NOT_RUN && type == MIG_DONE) {
		if (p)
			shown(p);
		r = err_set(e, -ESRCH, "the destination stopped before it started the guest, and says so%s%s",
			    p ? ": " : "", p ? (char *)p : "");
	} else if (h.type != type || h.len) {
		r = err_set(e, -EPROTO, "expected %s, got a record of type %u and %llu bytes", what, h.type,
			    (unsigned long long)h.len);
	}
	free(p);
	return r;
}
