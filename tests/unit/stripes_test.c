/* SPDX-License-Identifier: MIT */
/*
 * A pass's pages over several connections (migrate/stripes.c) without
 * KVM: every page goes over the connection of its stripe, with its own
 * contents; zero pages go free on the first pass and as ZERO later; the
 * bitmap is cleared; a connection that breaks fails the pass with its own
 * error, not the other lanes' "another connection failed".
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migrate/stripes.h"
#include "migrate/transport.h"
#include "tests/unit/unit.h"

#define NCONN 3
#define NPAGES (4 * MIG_STRIPE_PAGES + 5) /* the last stripe is short */

struct rig {
	uint8_t *ram;
	uint64_t bm[(NPAGES + 63) / 64];
	struct mig_stream tx[NCONN], rx[NCONN];
	struct mig_stream *streams[NCONN];
	atomic_bool cancel;
	struct mig_sender set;
};

static void rig_open(struct rig *g)
{
	struct err e = { { 0 } };

	memset(g, 0, sizeof(*g));
	g->ram = calloc(NPAGES, PAGE);
	assert_non_null(g->ram);
	for (unsigned i = 0; i < NCONN; i++) {
		int fd[2];
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fd), 0);
		g->tx[i] = (struct mig_stream){ .fd = fd[0] };
		g->rx[i] = (struct mig_stream){ .fd = fd[1] };
		mig_set_timeout(fd[1], 300);
		g->streams[i] = &g->tx[i];
	}
	assert_int_equal(mig_sender_init(&g->set, g->streams, NCONN, g->ram, NPAGES, g->bm, &g->cancel, NULL, &e), 0);
}

static void rig_close(struct rig *g)
{
	mig_sender_destroy(&g->set);
	for (unsigned i = 0; i < NCONN; i++) {
		if (g->tx[i].fd >= 0)
			close(g->tx[i].fd);
		if (g->rx[i].fd >= 0)
			close(g->rx[i].fd);
	}
	free(g->ram);
}

static void mark(struct rig *g, uint64_t page)
{
	g->bm[page / 64] |= 1ull << (page % 64);
}

/* Reads connection c's records until it has none waiting; checks that
 * each page is on its stripe's connection and carries the RAM's contents;
 * counts data and zero pages. */
static void drain(struct rig *g, unsigned c, unsigned *data, unsigned *zero)
{
	for (;;) {
		struct err e = { { 0 } };
		struct rec_header h;
		void *p = NULL;
		uint8_t b;
		if (recv(g->rx[c].fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) != 1)
			return;
		assert_int_equal(mig_recv(&g->rx[c], &h, &p, sizeof(struct mig_pages) + MIG_RUN_MAX * PAGE, &e), 0);
		assert_true(h.type == MIG_RAM || h.type == MIG_ZERO);
		struct mig_pages mp;
		memcpy(&mp, p, sizeof(mp));
		for (uint32_t i = 0; i < mp.count; i++) {
			uint64_t pg = mp.first + i;
			assert_int_equal(mig_stripe_of(pg, NCONN), c);
			if (h.type == MIG_RAM)
				assert_memory_equal((uint8_t *)p + sizeof(mp) + (size_t)i * PAGE, g->ram + pg * PAGE, PAGE);
			else
				assert_true(page_is_zero(g->ram + pg * PAGE));
		}
		*(h.type == MIG_RAM ? data : zero) += mp.count;
		free(p);
	}
}

static void test_pages_go_over_their_stripes(void **state)
{
	static const uint64_t pages[] = { 0, 1, 2, 600, 1100, 1101, 1600, 2047, 2048, 4 * MIG_STRIPE_PAGES + 4 };
	struct rig g;
	struct err e = { { 0 } };
	uint64_t sent;
	unsigned data = 0, zero = 0;

	(void)state;
	rig_open(&g);
	for (unsigned i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
		mark(&g, pages[i]);
		if (pages[i] != 2) /* page 2 stays zero */
			memset(g.ram + pages[i] * PAGE, (int)(i + 1), PAGE);
	}
	assert_int_equal(mig_sender_pass(&g.set, true, &sent, &e), 0);
	assert_int_equal(sent, 9); /* the zero page goes free on the first pass */
	for (unsigned w = 0; w < sizeof(g.bm) / 8; w++)
		assert_int_equal(g.bm[w], 0);
	for (unsigned c = 0; c < NCONN; c++)
		drain(&g, c, &data, &zero);
	assert_int_equal(data, 9);
	assert_int_equal(zero, 0);
	/* later passes send zero pages as ZERO */
	mark(&g, 2);
	mark(&g, 1600);
	data = 0;
	assert_int_equal(mig_sender_pass(&g.set, false, &sent, &e), 0);
	assert_int_equal(sent, 2);
	for (unsigned c = 0; c < NCONN; c++)
		drain(&g, c, &data, &zero);
	assert_int_equal(data, 1);
	assert_int_equal(zero, 1);
	assert_true(mig_sender_bytes(&g.set) > 10 * PAGE);
	rig_close(&g);
}

static void test_a_broken_connection_fails_the_pass_with_its_error(void **state)
{
	struct rig g;
	struct err e = { { 0 } };
	uint64_t sent;

	(void)state;
	rig_open(&g);
	for (uint64_t p = 0; p < NPAGES; p += 61) {
		memset(g.ram + p * PAGE, 0x5a, PAGE);
		mark(&g, p);
	}
	close(g.rx[1].fd);
	g.rx[1].fd = -1;
	assert_true(mig_sender_pass(&g.set, true, &sent, &e) < 0);
	assert_null(strstr(e.msg, "another connection"));
	assert_true(e.msg[0] != '\0');
	/* a cancel is a cancel, whatever broke */
	atomic_store(&g.cancel, true);
	mark(&g, 1);
	memset(&e, 0, sizeof(e));
	assert_int_equal(mig_sender_pass(&g.set, false, &sent, &e), -ECANCELED);
	rig_close(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pages_go_over_their_stripes),
		cmocka_unit_test(test_a_broken_connection_fails_the_pass_with_its_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
