/* SPDX-License-Identifier: MIT */
/*
 * Live migration inside one process (two VMs, reliability targets D7, A1):
 * a page-stamp guest migrates to a recorder that answers as a destination
 * would, so its whole stream is captured; the capture, replayed into a real
 * destination VM, resumes the guest, which then checks every page; and
 * 1000 copies of it with one random bit flipped are each refused by the
 * destination with a message, before its guest could run.
 *
 * usage: migrate_test GUEST.elf
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "devices/serial.h"
#include "migrate/migrate.h"
#include "migrate/stream.h"
#include "migrate/transport.h"
#include "tests/kvm/stamp_reports.h"
#include "tests/unit/unit.h"
#include "migrate/machine.h"
#include "vmm/vm.h"

static const char *guest_elf;

struct capture {
	uint8_t *buf;
	size_t len, cap;
};

static void keep(struct capture *c, const void *p, size_t n)
{
	if (c->len + n > c->cap) {
		c->cap = (c->len + n) * 2;
		c->buf = realloc(c->buf, c->cap);
		assert_non_null(c->buf);
	}
	memcpy(c->buf + c->len, p, n);
	c->len += n;
}

static void read_exact(int fd, void *p, size_t n, struct capture *c)
{
	uint8_t *b = p;

	while (n) {
		ssize_t r = read(fd, b, n);
		if (r <= 0)
			fail_msg("recorder: the source closed early");
		keep(c, b, (size_t)r);
		b += r;
		n -= (size_t)r;
	}
}

static void answer(int fd, uint32_t type)
{
	struct mig_stream s = { .fd = fd };
	struct err e = { { 0 } };

	if (mig_send(&s, type, NULL, 0, &e) < 0)
		fail_msg("recorder: %s", e.msg);
}

/* Plays the destination's side for one source: records everything it
 * sends and answers ACCEPT, READY and DONE where a destination would. */
static void record(int lfd, struct capture *c)
{
	int fd = accept(lfd, NULL, NULL);
	uint8_t hdr[16], *skip = malloc(1 << 20);

	assert_true(fd >= 0);
	read_exact(fd, hdr, 16, c);
	for (;;) {
		struct rec_header h;
		read_exact(fd, &h, sizeof(h), c);
		size_t rest = h.len + 4 + rec_pad(h.len);
		while (rest) {
			size_t n = rest < (1u << 20) ? rest : (1u << 20);
			read_exact(fd, skip, n, c);
			rest -= n;
		}
		if (h.type == MIG_CONFIG)
			answer(fd, MIG_ACCEPT);
		else if (h.type == MIG_END)
			answer(fd, MIG_READY);
		else if (h.type == MIG_GO) {
			answer(fd, MIG_DONE);
			break;
		}
	}
	free(skip);
	close(fd);
}

struct feed {
	const char *path;
	const uint8_t *buf;
	size_t len;
};

/* Connects to a destination (retrying until it listens) and sends a
 * recorded stream whole, reading and dropping whatever comes back. */
static void *feeder(void *arg)
{
	struct feed *f = arg;
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = -1;

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", f->path);
	for (int i = 0; i < 2000; i++) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
			break;
		close(fd);
		fd = -1;
		usleep(1000);
	}
	if (fd < 0)
		return NULL;
	for (size_t off = 0; off < f->len;) {
		struct pollfd p[2] = { { .fd = fd, .events = POLLOUT | POLLIN } };
		if (poll(p, 1, 5000) <= 0)
			break;
		if (p[0].revents & POLLIN) {
			uint8_t junk[256];
			if (read(fd, junk, sizeof(junk)) <= 0)
				break;
		}
		if (p[0].revents & (POLLERR | POLLHUP))
			break;
		if (p[0].revents & POLLOUT) {
			ssize_t n = send(fd, f->buf + off, f->len - off > 65536 ? 65536 : f->len - off, MSG_NOSIGNAL);
			if (n <= 0)
				break;
			off += (size_t)n;
		}
	}
	/* all sent: a destination waiting for more (a length made larger by
	 * a flip) sees the end at once; then its last answers */
	shutdown(fd, SHUT_WR);
	uint8_t junk[256];
	struct pollfd p = { .fd = fd, .events = POLLIN };
	while (poll(&p, 1, 2000) > 0 && read(fd, junk, sizeof(junk)) > 0)
		;
	close(fd);
	return NULL;
}

/* A page-stamp source in a new directory dir (its reports in dir/src),
 * running until it has done passes checked passes. */
static void stamp_source(struct vm *vm, struct vm_config *c, char *dir, char *rep, size_t replen, unsigned passes)
{
	struct err e = { { 0 } };

	*c = (struct vm_config){ .nr_cpus = 1, .mem_size = 32 * MiB, .kernel = guest_elf, .console_out_fd = -1,
				 .cmdline = "test=stamp mb=4 hot=1", .test_device = true };
	assert_non_null(mkdtemp(dir));
	snprintf(rep, replen, "%s/src", dir);
	c->testdev_out = fopen(rep, "w");
	assert_int_equal(machine_create(vm, c, &e), 0);
	assert_int_equal(vm_start(vm, &e), 0);
	stamp_wait(rep, passes);
}

/* Runs one destination against a stream; returns migrate_incoming()'s
 * result (0: admitted, loaded and started; or -errno with e set). */
static int replay(const char *dir, const uint8_t *buf, size_t len, struct vm *v, struct vm_config *c, struct err *e)
{
	char path[4200], addr[4300];
	struct feed f = { path, buf, len };
	pthread_t t;

	snprintf(path, sizeof(path), "%s/dst.sock", dir);
	snprintf(addr, sizeof(addr), "unix:%s", path);
	assert_int_equal(pthread_create(&t, NULL, feeder, &f), 0);
	/* a stream refused before it is admitted (a flip in its header or
	 * configuration) leaves the destination listening: 300 ms more */
	struct mig_incoming in = { .addr = addr, .timeout_ms = 5000, .wait_ms = 300 };
	struct mig_stream *conn = NULL;
	int r = migrate_incoming(&in, c, v, NULL, &conn, e);
	if (r >= 0) {
		struct err se = { { 0 } };
		if (vm_start(v, &se) < 0)
			fail_msg("start: %s", se.msg);
		migrate_incoming_done(conn);
	}
	pthread_join(t, NULL);
	return r;
}

static void test_capture_replay_and_bit_flips(void **state)
{
	char dir[] = "/tmp/tern-migtest-XXXXXX", rep[4200], path[128], addr[200];
	struct err e = { { 0 } };
	struct vm src, dst;
	struct vm_config c;
	struct capture cap = { 0 };
	struct mig_params p = { .downtime_ms = 50, .timeout_ms = 5000, .max_passes = 5 };
	struct mig_progress prog;

	(void)state;
	stamp_source(&src, &c, dir, rep, sizeof(rep), 2);

	/* capture: the source migrates to the recorder */
	snprintf(path, sizeof(path), "%s/rec.sock", dir);
	snprintf(addr, sizeof(addr), "unix:%s", path);
	int lfd = mig_listen(addr, &e);
	assert_true(lfd >= 0);
	snprintf(p.to, sizeof(p.to), "%s", addr);
	assert_int_equal(migrate_start(&src, &p, &e), 0);
	record(lfd, &cap);
	close(lfd);
	for (int i = 0; i < 500; i++) {
		migrate_progress(&src, &prog, true);
		if (mig_state_final(prog.state))
			break;
		usleep(10000);
	}
	assert_int_equal(prog.state, MIG_S_COMPLETED);
	machine_destroy(&src);
	fclose(c.testdev_out);

	/* the capture, replayed, resumes the guest on a second VM */
	struct vm_config dc = { .console_out_fd = -1, .test_device = true };
	snprintf(rep, sizeof(rep), "%s/dst", dir);
	dc.testdev_out = fopen(rep, "w");
	if (replay(dir, cap.buf, cap.len, &dst, &dc, &e) < 0)
		fail_msg("replay: %s", e.msg);
	assert_int_equal(dc.nr_cpus, 1);
	assert_int_equal(dc.mem_size, 32 * MiB);
	stamp_wait(rep, 2);
	serial_receive(dst.serial, (const uint8_t *)"q", 1);
	struct pollfd pf = { .fd = dst.exit_fd, .events = POLLIN };
	assert_int_equal(poll(&pf, 1, 30000), 1);
	assert_int_equal(dst.exit_status, 0);
	machine_destroy(&dst);
	fclose(dc.testdev_out);

	/* every single-bit flip is refused, with a reason */
	uint8_t *copy = malloc(cap.len);
	unsigned seed = 12345, refused = 0;
	FILE *null = fopen("/dev/null", "w");
	for (int i = 0; i < 1000; i++) {
		size_t off = (size_t)rand_r(&seed) % cap.len;
		int bit = rand_r(&seed) % 8;
		struct vm v;
		struct vm_config fc = { .console_out_fd = -1, .test_device = true, .testdev_out = null };
		struct err fe = { { 0 } };
		memcpy(copy, cap.buf, cap.len);
		copy[off] ^= (uint8_t)(1u << bit);
		int r = replay(dir, copy, cap.len, &v, &fc, &fe);
		if (r >= 0) {
			machine_destroy(&v);
			fail_msg("bit %d of byte %zu of %zu flipped: accepted", bit, off, cap.len);
		}
		if (!fe.msg[0])
			fail_msg("bit %d of byte %zu: refused without a message", bit, off);
		refused++;
	}
	fclose(null);
	print_message("stream of %zu bytes: replayed and resumed; %u of 1000 single-bit flips refused\n", cap.len,
		      refused);
	free(copy);
	free(cap.buf);
	char cmd[4200];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

struct go_recorder {
	int lfd;
	bool saw_go;
};

static bool read_all(int fd, void *p, size_t n)
{
	uint8_t *b = p;

	while (n) {
		ssize_t r = read(fd, b, n);
		if (r <= 0)
			return false;
		b += r;
		n -= (size_t)r;
	}
	return true;
}

/* A destination's side that answers as record() does, until the source
 * closes; notes whether GO came. */
static void *record_go(void *arg)
{
	struct go_recorder *g = arg;
	int fd = accept(g->lfd, NULL, NULL);
	uint8_t hdr[16], *skip = malloc(1 << 20);
	struct rec_header h;

	if (fd >= 0 && read_all(fd, hdr, 16))
		while (read_all(fd, &h, sizeof(h))) {
			size_t rest = h.len + 4 + rec_pad(h.len), n;
			for (; rest; rest -= n) {
				n = rest < (1u << 20) ? rest : (1u << 20);
				if (!read_all(fd, skip, n))
					goto out;
			}
			struct mig_stream s = { .fd = fd };
			struct err e = { { 0 } };
			if (h.type == MIG_CONFIG)
				mig_send(&s, MIG_ACCEPT, NULL, 0, &e);
			else if (h.type == MIG_END)
				mig_send(&s, MIG_READY, NULL, 0, &e);
			else if (h.type == MIG_GO) {
				g->saw_go = true;
				mig_send(&s, MIG_DONE, NULL, 0, &e);
			}
		}
out:
	if (fd >= 0)
		close(fd);
	free(skip);
	return NULL;
}

static enum mig_state wait_state(struct vm *v, bool (*done)(enum mig_state, enum mig_state), enum mig_state want,
				 struct mig_progress *prog)
{
	for (int i = 0; i < 1000; i++) {
		migrate_progress(v, prog, true);
		if (done(prog->state, want))
			break;
		usleep(10000);
	}
	return prog->state;
}

static bool is_state(enum mig_state st, enum mig_state want)
{
	return st == want || mig_state_final(st);
}

static bool is_final(enum mig_state st, enum mig_state want)
{
	(void)want;
	return mig_state_final(st);
}

/* The guest powers off (or tern is told to stop) while the migration is
 * at its stop: vm_pause() returns at once for a stopping VM, vCPUs maybe
 * still in KVM_RUN. Such a VM must not be handed over: it used to be, and
 * the destination ran a guest that had powered itself off. */
static void test_stopping_vm_not_handed_over(void **state)
{
	char dir[] = "/tmp/tern-migtest-XXXXXX", rep[200], addr[200];
	struct err e = { { 0 } };
	struct vm src;
	struct vm_config c;
	struct mig_params p = { .downtime_ms = 50, .timeout_ms = 5000, .max_passes = 5 };
	struct mig_progress prog;
	struct go_recorder g = { 0 };
	pthread_t t;

	(void)state;
	stamp_source(&src, &c, dir, rep, sizeof(rep), 1);
	snprintf(addr, sizeof(addr), "unix:%s/rec.sock", dir);
	g.lfd = mig_listen(addr, &e);
	assert_true(g.lfd >= 0);
	assert_int_equal(pthread_create(&t, NULL, record_go, &g), 0);
	snprintf(p.to, sizeof(p.to), "%s", addr);
	snprintf(src.cfg.faults.migrate_stall, sizeof(src.cfg.faults.migrate_stall), "stopped"); /* waits at its stop */
	assert_int_equal(migrate_start(&src, &p, &e), 0);
	src.cfg.faults.migrate_stall[0] = '\0';
	assert_int_equal(wait_state(&src, is_state, MIG_S_STOPPED, &prog), MIG_S_STOPPED);
	/* what tern's main loop does when the guest powers off */
	vm_request_exit(&src, 0, "the guest powered off");
	vm_stop(&src);
	assert_int_equal(wait_state(&src, is_final, MIG_S_NONE, &prog), MIG_S_FAILED);
	if (!strstr(prog.error, "stopping"))
		fail_msg("the failure says: %s", prog.error);
	machine_destroy(&src);
	pthread_join(t, NULL);
	close(g.lfd);
	assert_false(g.saw_go);
	fclose(c.testdev_out);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_capture_replay_and_bit_flips),
		cmocka_unit_test(test_stopping_vm_not_handed_over),
	};

	if (argc != 2) {
		fprintf(stderr, "usage: %s GUEST.elf\n", argv[0]);
		return 2;
	}
	guest_elf = argv[1];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
