/* SPDX-License-Identifier: MIT */
#include "vmm/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

__attribute__((format(printf, 3, 0))) static void verr_set(struct err *e, const char *suffix, const char *fmt,
							      va_list ap)
{
	if (!e || e->msg[0])
		return;
	int n = vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	if (suffix && n >= 0 && (size_t)n < sizeof(e->msg))
		snprintf(e->msg + n, sizeof(e->msg) - (size_t)n, ": %s", suffix);
}

int err_set(struct err *e, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verr_set(e, NULL, fmt, ap);
	va_end(ap);
	return code;
}

int err_errno(struct err *e, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verr_set(e, strerror(-code), fmt, ap);
	va_end(ap);
	return code;
}

__attribute__((format(printf, 2, 0))) static void vlog(const char *level, const char *fmt, va_list ap)
{
	char buf[512];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	fprintf(stderr, "tern: %s%s\n", level, buf);
}

void pr_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("error: ", fmt, ap);
	va_end(ap);
}

void pr_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("warning: ", fmt, ap);
	va_end(ap);
}

void pr_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("", fmt, ap);
	va_end(ap);
}

void pr_debug(const char *fmt, ...)
{
	va_list ap;

	if (!getenv("TERN_DEBUG"))
		return;
	va_start(ap, fmt);
	vlog("debug: ", fmt, ap);
	va_end(ap);
}

int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (*end)
		return -EINVAL;
	if (errno == ERANGE || v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	switch (*end) {
	case '\0':
		break;
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	default:
		return -EINVAL;
	}
	if (shift && (*end == 'i' || *end == 'I') && (end[1] == 'B' || end[1] == 'b'))
		end += 2;
	else if (shift && (*end == 'B' || *end == 'b'))
		end++;
	if (*end)
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = (uint64_t)v << shift;
	return 0;
}

int pwrite_all(int fd, const void *p, size_t len, off_t off)
{
	const uint8_t *b = p;

	while (len) {
		ssize_t n = pwrite(fd, b, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		b += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

int pread_all(int fd, void *p, size_t len, off_t off)
{
	uint8_t *b = p;

	while (len) {
		ssize_t n = pread(fd, b, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -ENODATA;
		b += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

const char *uuid_format(const uint8_t id[16], char out[UUID_STR_LEN])
{
	char *p = out;

	for (unsigned i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		p += sprintf(p, "%02x", id[i]);
	}
	return out;
}

int uuid_parse(const char *s, uint8_t id[16])
{
	static const char *const hex = "0123456789abcdef";

	if (strlen(s) != UUID_STR_LEN - 1)
		return -EINVAL;
	for (unsigned i = 0, k = 0; i < UUID_STR_LEN - 1; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return -EINVAL;
			continue;
		}
		const char *d = strchr(hex, s[i] >= 'A' && s[i] <= 'F' ? s[i] - 'A' + 'a' : s[i]);
		if (!s[i] || !d)
			return -EINVAL;
		if (k % 2 == 0)
			id[k / 2] = (uint8_t)((d - hex) << 4);
		else
			id[k / 2] |= (uint8_t)(d - hex);
		k++;
	}
	return 0;
}

int uuid_random(uint8_t id[16])
{
	if (getrandom(id, 16, 0) != 16)
		return -errno;
	id[6] = (uint8_t)((id[6] & 0x0f) | 0x40); /* version 4 */
	id[8] = (uint8_t)((id[8] & 0x3f) | 0x80); /* the RFC's variant */
	return 0;
}

bool page_is_zero(const void *p)
{
	const uint64_t *q = p;

	for (unsigned i = 0; i < PAGE / 8; i++)
		if (q[i])
			return false;
	return true;
}

void eventfd_signal(int fd, const char *what)
{
	uint64_t one = 1;

	if (fd >= 0 && write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		pr_warn("%s: eventfd write failed: %s", what, strerror(errno));
}

void eventfd_drain(int fd, const char *what)
{
	uint64_t v;

	if (fd >= 0 && read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		pr_warn("%s: eventfd read failed: %s", what, strerror(errno));
}

int open_regular(const char *path, const char *what, struct err *e)
{
	struct stat st;
	/* non-blocking: opening a FIFO someone left under the name would
	 * otherwise wait for a writer for ever */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK), r;

	if (fd < 0)
		return err_errno(e, -errno, "cannot open %s '%s'", what, path);
	if (fstat(fd, &st) < 0)
		r = err_errno(e, -errno, "cannot stat %s '%s'", what, path);
	else if (!S_ISREG(st.st_mode))
		r = err_set(e, -EINVAL, "%s '%s' is not a regular file", what, path);
	else if (fcntl(fd, F_SETFL, 0) < 0)
		r = err_errno(e, -errno, "%s '%s'", what, path);
	else
		return fd;
	close(fd);
	return r;
}

int read_file(const char *path, const char *what, size_t max, uint8_t **buf, size_t *len, struct err *e)
{
	struct stat st;
	uint8_t *b = NULL;
	size_t got = 0;
	int fd, r;

	fd = open_regular(path, what, e);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0) {
		r = err_errno(e, -errno, "cannot stat %s '%s'", what, path);
		goto out_close;
	}
	if ((uint64_t)st.st_size > max) {
		r = err_set(e, -EFBIG, "%s '%s' is too large (%lld bytes, limit %zu)", what, path,
			    (long long)st.st_size, max);
		goto out_close;
	}
	b = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!b) {
		r = err_set(e, -ENOMEM, "out of memory reading %s '%s'", what, path);
		goto out_close;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, b + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = err_errno(e, -errno, "cannot read %s '%s'", what, path);
			goto out_free;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	*buf = b;
	*len = got;
	close(fd);
	return 0;

out_free:
	free(b);
out_close:
	close(fd);
	return r;
}

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	char tail;

	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) != 6)
		return -EINVAL;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	return (mac[0] & 1) ? -EINVAL : 0; /* a station address is unicast */
}
