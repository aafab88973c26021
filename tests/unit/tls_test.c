/* SPDX-License-Identifier: MIT */
/*
 * migrate/tls.c and the stream over it, without KVM: a source and a
 * destination session in one process, joined through a relay thread that
 * flips one bit at a chosen offset of one direction. The clean exchange
 * gets every record through; each of 1000 single-bit flips (random
 * direction and offset) fails the handshake or a record, and no record
 * whose bytes were damaged is ever delivered. Certificates come from
 * tests/kvm/tlscerts.py (certtool).
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migrate/stream.h"
#include "migrate/tls.h"
#include "migrate/transport.h"
#include "tests/unit/unit.h"

#define RECORDS 6
#define PAYLOAD 20000

struct relay {
	int a, b;            /* client side, server side */
	int flip_dir;        /* 0: client to server, 1: back, -1: none */
	uint64_t flip_at;
	uint64_t carried[2]; /* bytes each way */
	uint8_t seen[2][256 << 10]; /* what each way carried, unflipped */
	size_t len[2];
};

/* Whether byte off of a direction's stream is in a record header's type
 * or legacy_record_version: a TLS 1.3 receiver ignores the version (RFC
 * 8446 5.1) and GnuTLS takes the type of a protected record from inside
 * it, so a flip there changes nothing that is delivered. (A flip of the
 * length breaks the framing and is caught.) */
static bool ignored_by_tls13(const struct relay *r, int d, uint64_t off)
{
	size_t i = 0;

	while (i + 5 <= r->len[d] && i + 5 <= sizeof(r->seen[d])) {
		if (off >= i && off <= i + 2)
			return true;
		i += 5 + ((size_t)r->seen[d][i + 3] << 8 | r->seen[d][i + 4]);
	}
	return false;
}

/* Copies both ways until both ends close; flips the chosen bit. */
static void *relay_thread(void *arg)
{
	struct relay *r = arg;
	int fds[2][2] = { { r->a, r->b }, { r->b, r->a } };
	bool open[2] = { true, true };
	uint8_t buf[65536];

	while (open[0] || open[1]) {
		fd_set set;
		FD_ZERO(&set);
		for (int d = 0; d < 2; d++)
			if (open[d])
				FD_SET(fds[d][0], &set);
		if (select((r->a > r->b ? r->a : r->b) + 1, &set, NULL, NULL, NULL) <= 0)
			break;
		for (int d = 0; d < 2; d++) {
			if (!open[d] || !FD_ISSET(fds[d][0], &set))
				continue;
			ssize_t n = read(fds[d][0], buf, sizeof(buf));
			if (n <= 0) {
				open[d] = false;
				shutdown(fds[d][1], SHUT_WR);
				continue;
			}
			if (r->len[d] + (size_t)n <= sizeof(r->seen[d]))
				memcpy(r->seen[d] + r->len[d], buf, (size_t)n);
			r->len[d] += (size_t)n;
			if (d == r->flip_dir && r->flip_at >= r->carried[d] && r->flip_at < r->carried[d] + (uint64_t)n)
				buf[r->flip_at - r->carried[d]] ^= (uint8_t)(1u << (r->flip_at % 8));
			r->carried[d] += (uint64_t)n;
			if (send(fds[d][1], buf, (size_t)n, MSG_NOSIGNAL) != n)
				open[d] = false;
		}
	}
	return NULL;
}

struct server {
	int fd;
	const struct mig_tls_creds *creds;
	int result;          /* 0: every record arrived intact */
	unsigned intact;     /* records received with the right contents */
	bool damaged;        /* a record was delivered with wrong contents */
};

static void fill(uint8_t *p, unsigned rec)
{
	for (unsigned i = 0; i < PAYLOAD; i++)
		p[i] = (uint8_t)(i * 7 + rec);
}

static void *server_thread(void *arg)
{
	struct server *s = arg;
	struct mig_stream st = { .fd = s->fd };
	struct err e = { { 0 } };
	uint8_t want[PAYLOAD];

	mig_set_timeout(s->fd, 5000);
	s->result = mig_tls_handshake(&st.tls, s->fd, s->creds, NULL, 5000, &e);
	for (unsigned i = 0; s->result == 0 && i < RECORDS; i++) {
		struct rec_header h;
		void *p = NULL;
		s->result = mig_recv(&st, &h, &p, PAYLOAD, &e);
		if (s->result == 0) {
			fill(want, i);
			if (h.type == 16 + i && h.len == PAYLOAD && !memcmp(p, want, PAYLOAD))
				s->intact++;
			else
				s->damaged = true;
		}
		free(p);
	}
	if (s->result == 0)
		s->result = mig_send(&st, 34, NULL, 0, &e); /* an answer back */
	mig_tls_free(st.tls);
	close(s->fd);
	return NULL;
}

/* One exchange through the relay: the client's result (0 when its
 * handshake, records and the answer all went through). */
static int exchange(const struct mig_tls_creds *cc, const struct mig_tls_creds *sc, struct relay *r,
		    struct server *srv)
{
	int c2r[2], r2s[2];
	pthread_t rt, stt;
	struct err e = { { 0 } };
	uint8_t data[PAYLOAD];
	int res;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, c2r), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, r2s), 0);
	r->a = c2r[1];
	r->b = r2s[0];
	r->carried[0] = r->carried[1] = 0;
	r->len[0] = r->len[1] = 0;
	*srv = (struct server){ .fd = r2s[1], .creds = sc };
	assert_int_equal(pthread_create(&rt, NULL, relay_thread, r), 0);
	assert_int_equal(pthread_create(&stt, NULL, server_thread, srv), 0);
	struct mig_stream st = { .fd = c2r[0] };
	mig_set_timeout(c2r[0], 5000);
	res = mig_tls_handshake(&st.tls, c2r[0], cc, "127.0.0.1", 5000, &e);
	for (unsigned i = 0; res == 0 && i < RECORDS; i++) {
		fill(data, i);
		res = mig_send(&st, 16 + i, data, PAYLOAD, &e);
	}
	if (res == 0)
		res = mig_expect(&st, 34, "the answer", &e);
	mig_tls_free(st.tls);
	shutdown(c2r[0], SHUT_RDWR);
	pthread_join(stt, NULL);
	close(c2r[0]);
	pthread_join(rt, NULL);
	close(c2r[1]);
	close(r2s[0]);
	return res;
}

/* The certificates, made once by tests/kvm/tlscerts.py next to this
 * binary's tree. */
static void make_certs(char *dir, size_t len)
{
	char exe[PATH_MAX], cmd[3 * PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	assert_true(n > 0);
	exe[n] = '\0';
	/* up from build[/asan]/tests/unit/ to the tree */
	char *root = exe;
	for (char *p; (p = strrchr(root, '/'));) {
		*p = '\0';
		snprintf(cmd, sizeof(cmd), "%s/tests/kvm/tlscerts.py", root);
		if (access(cmd, R_OK) == 0)
			break;
	}
	snprintf(dir, len, "/tmp/tern-tls-test-%d", (int)getpid());
	snprintf(cmd, sizeof(cmd), "python3 %s/tests/kvm/tlscerts.py %s", root, dir);
	assert_int_equal(system(cmd), 0);
}

static void test_records_through_tls_and_a_thousand_flips(void **state)
{
	char dir[128], path[256], cmd[300];
	struct mig_tls_creds *cc = NULL, *sc = NULL;
	struct err e = { { 0 } };
	static struct relay r = { .flip_dir = -1 }; /* large */
	struct server srv;
	unsigned seed = 4242, handshake_fails = 0, record_fails = 0, ignored = 0;

	(void)state;
	make_certs(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/src", dir);
	assert_int_equal(mig_tls_creds_load(&cc, path, false, &e), 0);
	snprintf(path, sizeof(path), "%s/dst", dir);
	assert_int_equal(mig_tls_creds_load(&sc, path, true, &e), 0);
	/* the client's credentials are not a server's */
	struct mig_tls_creds *bad = NULL;
	memset(&e, 0, sizeof(e));
	assert_int_equal(mig_tls_creds_load(&bad, path, false, &e), -ENOENT);
	assert_err_contains(&e, "client-cert.pem");

	assert_int_equal(exchange(cc, sc, &r, &srv), 0);
	assert_int_equal(srv.result, 0);
	assert_int_equal(srv.intact, RECORDS);
	uint64_t up = r.carried[0], down = r.carried[1];
	assert_true(up > RECORDS * PAYLOAD && down > 0);

	for (int i = 0; i < 1000; i++) {
		r.flip_dir = rand_r(&seed) % 4 == 0 ? 1 : 0; /* most bytes go up */
		r.flip_at = (uint64_t)rand_r(&seed) % (r.flip_dir ? down : up);
		int res = exchange(cc, sc, &r, &srv);
		if (res == 0 && srv.result == 0 && !srv.damaged && ignored_by_tls13(&r, r.flip_dir, r.flip_at)) {
			ignored++;
			continue;
		}
		if (res == 0 && srv.result == 0)
			fail_msg("flip %d (dir %d, byte %llu) went unnoticed", i, r.flip_dir,
				 (unsigned long long)r.flip_at);
		if (srv.damaged)
			fail_msg("flip %d (dir %d, byte %llu): a damaged record was delivered", i, r.flip_dir,
				 (unsigned long long)r.flip_at);
		srv.intact < RECORDS && srv.intact == 0 && srv.result != -EBADMSG ? handshake_fails++ : record_fails++;
	}
	print_message("1000 single-bit flips: %u failed around the handshake, %u a record, %u in a record header's "
		      "type or version (ignored by TLS 1.3: nothing delivered changed); %llu bytes up, %llu down\n",
		      handshake_fails, record_fails, ignored, (unsigned long long)up, (unsigned long long)down);
	assert_true(ignored < 50);
	mig_tls_creds_free(cc);
	mig_tls_creds_free(sc);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN); /* as tern does: a closed peer is an error, not a signal */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_records_through_tls_and_a_thousand_flips),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
