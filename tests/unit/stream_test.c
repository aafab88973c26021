/* SPDX-License-Identifier: MIT */
/*
 * The migration stream's record layer and addresses without KVM
 * (migrate/stream.c, migrate/transport.c): records round-trip over a
 * socket pair; damaged ones (CRC, reserved bits, padding, lengths past a
 * limit, an early end) are refused with a message; a silent peer times out;
 * the peer's REFUSE and ERROR messages reach the caller, made printable.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migrate/stream.h"
#include "migrate/transport.h"
#include "tests/unit/unit.h"

struct pair {
	struct mig_stream a, b;
};

static void pair_open(struct pair *p)
{
	int fd[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fd), 0);
	memset(p, 0, sizeof(*p));
	p->a.fd = fd[0];
	p->b.fd = fd[1];
	mig_set_timeout(fd[1], 300);
}

static void pair_close(struct pair *p)
{
	close(p->a.fd);
	close(p->b.fd);
}

static void raw(struct pair *p, const void *buf, size_t len)
{
	assert_int_equal(write(p->a.fd, buf, len), (ssize_t)len);
}

static void test_round_trip(void **state)
{
	struct pair p;
	struct err e = { { 0 } };
	struct rec_header h;
	void *payload;
	uint8_t big[3000];
	char abc[] = "abc";
	struct iovec v[2] = { { abc, 3 }, { big, sizeof(big) } };

	(void)state;
	pair_open(&p);
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7);
	assert_int_equal(mig_send_hello(&p.a, &e), 0);
	assert_int_equal(mig_sendv(&p.a, MIG_RAM, v, 2, &e), 0);
	assert_int_equal(mig_send(&p.a, MIG_END, NULL, 0, &e), 0);
	assert_int_equal(mig_recv_hello(&p.b, &e), 0);
	assert_int_equal(mig_recv(&p.b, &h, &payload, 1 << 20, &e), 0);
	assert_int_equal(h.type, MIG_RAM);
	assert_int_equal(h.len, 3 + sizeof(big));
	assert_memory_equal(payload, "abc", 3);
	assert_memory_equal((uint8_t *)payload + 3, big, sizeof(big));
	free(payload);
	assert_int_equal(mig_recv(&p.b, &h, &payload, 0, &e), 0);
	assert_int_equal(h.type, MIG_END);
	assert_null(payload);
	/* every byte went through the framing: header, records, padding */
	assert_int_equal(p.a.sent, p.b.received);
	assert_int_equal(p.a.sent % 8, 0);
	pair_close(&p);
}

/* A record with valid framing but for one change the caller makes. */
static size_t make_record(uint8_t *out, uint32_t type, uint32_t rsvd, const void *payload, uint64_t len)
{
	struct rec_header h = { type, rsvd, len };
	uint32_t crc;
	size_t pad = rec_pad(len);

	memcpy(out, &h, 16);
	memcpy(out + 16, payload, len);
	crc = crc32c(out, 16 + len, 0);
	memcpy(out + 16 + len, &crc, 4);
	memset(out + 20 + len, 0, pad);
	return 20 + len + pad;
}

static void expect_refused(const uint8_t *rec, size_t len, size_t max, int code, const char *needle)
{
	struct pair p;
	struct err e = { { 0 } };
	struct rec_header h;
	void *payload = NULL;

	pair_open(&p);
	raw(&p, rec, len);
	shutdown(p.a.fd, SHUT_WR);
	assert_int_equal(mig_recv(&p.b, &h, &payload, max, &e), code);
	assert_null(payload);
	assert_err_contains(&e, needle);
	pair_close(&p);
}

static void test_damaged_records(void **state)
{
	uint8_t rec[128], bad[128];
	size_t n = make_record(rec, MIG_PASS, 0, "0123456789abcdefghijklmn", 24);

	(void)state;
	memcpy(bad, rec, n);
	bad[20] ^= 1; /* payload */
	expect_refused(bad, n, 64, -EPROTO, "CRC mismatch");
	memcpy(bad, rec, n);
	bad[16 + 24] ^= 0x80; /* the CRC itself */
	expect_refused(bad, n, 64, -EPROTO, "CRC mismatch");
	n = make_record(bad, MIG_PASS, 1, "x", 1);
	expect_refused(bad, n, 64, -EPROTO, "reserved bits");
	n = make_record(bad, MIG_STATE, 0, "hello", 5);
	bad[n - 1] = 1; /* padding */
	expect_refused(bad, n, 64, -EPROTO, "non-zero padding");
	n = make_record(bad, MIG_STATE, 0, rec, 100);
	expect_refused(bad, n, 99, -EPROTO, "exceeds 99");
	/* a length of 2^63: refused before anything is allocated */
	struct rec_header huge = { MIG_RAM, 0, 1ull << 63 };
	expect_refused((uint8_t *)&huge, sizeof(huge), 1 << 20, -EPROTO, "exceeds");
	/* the peer goes away in the middle */
	n = make_record(bad, MIG_STATE, 0, rec, 100);
	for (size_t cut = 0; cut < n; cut += 7)
		expect_refused(bad, cut, 1 << 20, -EPIPE, "closed by the peer");
}

static void test_hello(void **state)
{
	struct rec_file_header h = { .magic = MIG_MAGIC, .major = STATE_MAJOR, .minor = STATE_MINOR + 1 };
	struct pair p;
	struct err e = { { 0 } };

	(void)state;
	h.crc = crc32c(&h, 12, 0);
	pair_open(&p);
	raw(&p, &h, sizeof(h));
	assert_int_equal(mig_recv_hello(&p.b, &e), -EPROTO);
	assert_err_contains(&e, "is not supported");
	pair_close(&p);

	h.minor = STATE_MINOR;
	h.crc = 0;
	pair_open(&p);
	raw(&p, &h, sizeof(h));
	memset(&e, 0, sizeof(e));
	assert_int_equal(mig_recv_hello(&p.b, &e), -EPROTO);
	assert_err_contains(&e, "corrupt");
	pair_close(&p);

	pair_open(&p);
	raw(&p, "SSH-2.0-OpenSSH_9\r\n", 16);
	memset(&e, 0, sizeof(e));
	assert_int_equal(mig_recv_hello(&p.b, &e), -EPROTO);
	assert_err_contains(&e, "bad magic");
	pair_close(&p);
}

static void test_timeout_and_peer_messages(void **state)
{
	struct pair p;
	struct err e = { { 0 } };
	struct rec_header h;
	void *payload;

	(void)state;
	pair_open(&p);
	/* nothing comes: the 300 ms timeout */
	assert_int_equal(mig_recv(&p.b, &h, &payload, 64, &e), -ETIMEDOUT);
	assert_err_contains(&e, "timed out");
	/* the peer refuses, with control characters in its message */
	mig_send_msg(&p.a, MIG_REFUSE, "no\nway\x1b");
	memset(&e, 0, sizeof(e));
	assert_int_equal(mig_expect(&p.b, MIG_ACCEPT, "ACCEPT", &e), -ECONNREFUSED);
	assert_err_contains(&e, "refused the migration: no?way?");
	mig_send_msg(&p.a, MIG_ERROR, "disk on fire");
	memset(&e, 0, sizeof(e));
	assert_int_equal(mig_expect(&p.b, MIG_READY, "READY", &e), -ECONNABORTED);
	assert_err_contains(&e, "gave up: disk on fire");
	/* the wrong record, or the right one with a payload */
	struct err se = { { 0 } };
	assert_int_equal(mig_send(&p.a, MIG_DONE, NULL, 0, &se), 0);
	memset(&e, 0, sizeof(e));
	assert_int_equal(mig_expect(&p.b, MIG_GO, "GO", &e), -EPROTO);
	assert_err_contains(&e, "expected GO, got a record of type 36");
	assert_int_equal(mig_send(&p.a, MIG_GO, "x", 1, &se), 0);
	memset(&e, 0, sizeof(e));
	assert_int_equal(mig_expect(&p.b, MIG_GO, "GO", &e), -EPROTO);
	/* an over-long message is cut at MIG_MSG_MAX */
	char longmsg[2000];
	memset(longmsg, 'x', sizeof(longmsg) - 1);
	longmsg[sizeof(longmsg) - 1] = '\0';
	mig_send_msg(&p.a, MIG_ERROR, longmsg);
	assert_int_equal(mig_recv(&p.b, &h, &payload, MIG_MSG_MAX, &e), 0);
	assert_int_equal(h.len, MIG_MSG_MAX);
	free(payload);
	pair_close(&p);
}

static void test_bandwidth_limit(void **state)
{
	struct pair p;
	struct err e = { { 0 } };
	static uint8_t buf[256 << 10];
	uint64_t t0;

	(void)state;
	pair_open(&p);
	p.a.limit = 1 << 20; /* 1 MiB/s: 256 KiB cannot go in under 0.2 s */
	int fl = 1 << 20;
	setsockopt(p.a.fd, SOL_SOCKET, SO_SNDBUF, &fl, sizeof(fl));
	setsockopt(p.b.fd, SOL_SOCKET, SO_RCVBUF, &fl, sizeof(fl));
	t0 = now_ns();
	for (int i = 0; i < 4; i++)
		assert_int_equal(mig_send(&p.a, MIG_STATE, buf, sizeof(buf) / 4, &e), 0);
	assert_true(now_ns() - t0 >= 200000000ull);
	pair_close(&p);
}

static void test_addresses(void **state)
{
	static const char *const good[] = { "tcp:127.0.0.1:4444", "tcp:localhost:1", "tcp:[::1]:65535",
					    "unix:/tmp/x.sock", "unix:rel/path" };
	static const char *const bad[] = { "", "tcp:", "tcp:host", "tcp::80", "tcp:host:0", "tcp:host:65536",
					   "tcp:host:http", "tcp:[::1]80", "tcp:[::1", "unix:", "udp:1.2.3.4:5",
					   "TCP:1.2.3.4:5" };

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		struct err e = { { 0 } };
		if (mig_addr_check(good[i], &e) < 0)
			fail_msg("'%s' refused: %s", good[i], e.msg);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct err e = { { 0 } };
		if (mig_addr_check(bad[i], &e) == 0)
			fail_msg("'%s' accepted", bad[i]);
		assert_true(e.msg[0]);
	}
	char longpath[200] = "unix:";
	memset(longpath + 5, 'a', 150);
	longpath[155] = '\0';
	struct err e = { { 0 } };
	assert_int_equal(mig_addr_check(longpath, &e), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_damaged_records),
		cmocka_unit_test(test_hello),
		cmocka_unit_test(test_timeout_and_peer_messages),
		cmocka_unit_test(test_bandwidth_limit),
		cmocka_unit_test(test_addresses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
