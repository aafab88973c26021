/* SPDX-License-Identifier: MIT */
/* vmm/util.h - small helpers every layer uses: errors, logging, parsing. */
#ifndef TERN_VMM_UTIL_H
#define TERN_VMM_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define container_of(ptr, type, member) ((type *)((char *)(ptr) - __builtin_offsetof(type, member)))
#define KiB (1ull << 10)
#define MiB (1ull << 20)
#define GiB (1ull << 30)
/* The page: the unit of guest memory tern logs, saves, sends and maps. */
#define PAGE 4096u

/* "Cannot happen unless something we trust lies" branches. */
#define NEVER(x) __builtin_expect(!!(x), 0)

/* Guest physical addresses: a distinct type so they are never dereferenced. */
typedef uint64_t gpa_t;

/*
 * struct err carries the one-line, user-facing description of the first
 * failure along a call chain. Functions that can fail for a reason the user
 * must see take a struct err * and return err_set(e, -errno, fmt, ...);
 * callers propagate the return value and leave the message alone.
 */
struct err {
	char msg[320];
};

/* Records the message if none is recorded yet; returns code. e may be NULL. */
int err_set(struct err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* As err_set, with ": strerror(-code)" appended. */
int err_errno(struct err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

void pr_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void pr_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void pr_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Printed only when TERN_DEBUG is set in the environment. */
void pr_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "512M", "1G", "4096", "64K" -> bytes (binary units). 0 or -EINVAL/-ERANGE. */
int parse_size(const char *s, uint64_t *out);
/* Decimal or 0x-hex unsigned integer in [min, max]. 0 or -EINVAL/-ERANGE. */
int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* "xx:xx:xx:xx:xx:xx" into mac; -EINVAL unless well-formed and unicast. */
int parse_mac(const char *s, uint8_t mac[6]);

/*
 * Reads a whole regular file of at most max bytes into a malloc'd buffer.
 * Returns 0, or -errno with e describing the problem using what as the
 * file's role ("kernel", "initrd").
 */
/* Opens path read-only, refusing (e says why) anything but a regular
 * file, without blocking on a FIFO; the fd, or -errno. */
int open_regular(const char *path, const char *what, struct err *e);
/* UUIDs (RFC 9562) as 16 bytes and as text "8-4-4-4-12" (lower case). */
#define UUID_STR_LEN 37
const char *uuid_format(const uint8_t id[16], char out[UUID_STR_LEN]);
int uuid_parse(const char *s, uint8_t id[16]);
/* A random (version 4) UUID; -errno if the kernel gives no randomness. */
int uuid_random(uint8_t id[16]);
/* Whether the PAGE bytes at p (8-byte aligned) are all zero. */
bool page_is_zero(const void *p);
/* Signals an eventfd (adds 1), or empties it; fd < 0 is ignored. A
 * failure other than EAGAIN (a saturated or empty non-blocking counter) is
 * logged with what. */
void eventfd_signal(int fd, const char *what);
void eventfd_drain(int fd, const char *what);
int read_file(const char *path, const char *what, size_t max, uint8_t **buf, size_t *len, struct err *e);

/* pwrite()/pread() of exactly len bytes at off, retrying short transfers
 * and EINTR. 0, or -errno (-EIO for a write that made no progress, -ENODATA
 * for a read past the end of the file). */
int pwrite_all(int fd, const void *p, size_t len, off_t off);
int pread_all(int fd, void *p, size_t len, off_t off);

/* *sum = a + b; true if it wrapped around (then *sum is not to be used). */
static inline bool add_overflows(uint64_t a, uint64_t b, uint64_t *sum)
{
	return __builtin_add_overflow(a, b, sum);
}

/* Monotonic time in nanoseconds. */
uint64_t now_ns(void);

#endif
