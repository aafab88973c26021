/* SPDX-License-Identifier: MIT */
/*
 * tests/bench/replay_bench.c - how long the replay of a guest's control
 * state takes on a new device (issue 9), run by tests/bench/replay: 64
 * MAC addresses and 32 VLANs (plus PROMISC off), sent by the shadow control
 * queue (vdpa/cvq_shadow.c) to tern's software device, with up to 32
 * commands in flight, and one at a time. Median of N runs each.
 *
 * Usage: replay_bench [runs]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/lib/netdrv.h"

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	int runs = argc > 1 ? atoi(argv[1]) : 21;
	struct netdrv *d = calloc(1, sizeof(*d));
	struct net_ctrl_state want;
	struct err e = { { 0 } };
	double t[2][101];
	unsigned sent = 0;

	if (runs < 1 || runs > 101)
		runs = 21;
	if (!d || netdrv_init_ctrl(d, 64 * MiB, 0, false, true, &e) < 0) {
		fprintf(stderr, "replay_bench: %s\n", e.msg);
		return 1;
	}
	cvq_state_reset(&want, d->mac, d->cvq.features);
	want.promisc = false;
	want.uni_count = 64;
	for (unsigned i = 0; i < 64; i++)
		memcpy(want.uni[i], (uint8_t[6]){ 0x52, 0x54, 0, 2, 0, (uint8_t)i }, 6);
	for (unsigned v = 1; v <= 32; v++)
		want.vlans[v / 64] |= 1ull << (v % 64);
	for (int i = 0; i < runs; i++)
		for (int p = 0; p < 2; p++) {
			uint64_t t0 = now_ns();
			if (cvq_shadow_replay(&d->cvq, &want, p, &sent, &e) < 0) {
				fprintf(stderr, "replay_bench: %s\n", e.msg);
				return 1;
			}
			t[p][i] = (double)(now_ns() - t0) / 1e3;
		}
	qsort(t[0], (size_t)runs, sizeof(double), cmp);
	qsort(t[1], (size_t)runs, sizeof(double), cmp);
	printf("# control-state replay to tern's software device: 64 MAC addresses (one MAC_TABLE_SET),\n"
	       "# 32 VLANs, PROMISC off = %u commands; median of %d runs\n", sent, runs);
	printf("%-24s %12s\n", "mode", "replay (us)");
	printf("%-24s %12.0f\n", "one at a time", t[0][runs / 2]);
	printf("%-24s %12.0f\n", "pipelined (32 in flight)", t[1][runs / 2]);
	printf("# pipelined takes %.0f%% of one at a time\n", 100.0 * t[1][runs / 2] / t[0][runs / 2]);
	netdrv_exit(d);
	free(d);
	return 0;
}
