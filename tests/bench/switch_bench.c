/* SPDX-License-Identifier: MIT */
/*
 * tests/bench/switch_bench.c - blackout of the passthrough <-> SVQ switch
 * (issue 8), run by tests/bench/switch. For each strategy and each size of
 * sparse guest RAM, tern's software vDPA device with the mlx5-calibrated
 * cost model (vdpa/sim_net.h; sources in docs/net.md) carries frames both
 * ways while the switch runs; the blackout is the longest pause between
 * two used buffers as the device sees it (sim_net's max_gap), from a
 * traffic thread that never stops. Also frames/s through passthrough and
 * through the SVQ relay, same device, same run.
 *
 * Usage: switch_bench [runs] [GiB,GiB,...] [strategies e.g. 1234]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/lib/netdrv.h"

struct pump {
	struct netdrv *d;
	volatile bool stop;
	uint64_t frames;
};

static void *pump_thread(void *arg)
{
	struct pump *p = arg;

	while (!p->stop)
		p->frames += netdrv_pump(p->d, 1000, 20);
	return NULL;
}

static double blackout_ms(struct netdrv *d, struct pump *p, bool to_svq, double *tern_ms)
{
	struct err e = { { 0 } };
	struct sim_net_stats st;
	uint64_t before = p->frames;

	/* traffic flows before the switch, and after it */
	while (p->frames < before + 200)
		usleep(1000);
	sim_net_clear_gap(d->dev);
	int r = to_svq ? shadow_to_svq(&d->sh, &e) : shadow_to_passthrough(&d->sh, &e);
	if (r < 0) {
		fprintf(stderr, "switch_bench: %s\n", e.msg);
		exit(1);
	}
	before = p->frames;
	while (p->frames < before + 200)
		usleep(1000);
	sim_net_get_stats(d->dev, &st);
	*tern_ms = (double)d->sh.stats.blackout_ns / 1e6;
	return (double)st.max_gap_ns / 1e6;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double rate(struct pump *p)
{
	uint64_t f0 = p->frames, t0 = now_ns();
	usleep(1000000);
	return (double)(p->frames - f0) * 1e9 / (double)(now_ns() - t0);
}

int main(int argc, char **argv)
{
	int runs = argc > 1 ? atoi(argv[1]) : 3;
	char sizes_arg[256] = "1,16,64,128";
	const char *strategies = argc > 3 ? argv[3] : "1234";
	struct sim_net_cost mlx5;

	if (argc > 2)
		snprintf(sizes_arg, sizeof(sizes_arg), "%s", argv[2]);
	if (runs < 1 || runs > 20)
		runs = 3;
	sim_net_cost_mlx5(&mlx5);
	printf("# blackout of the switch, as the device sees it (longest pause between used buffers), median of %d\n"
	       "# runs; tern's own figure (first stop to restart) in brackets. Cost model: pin %.2f s/GiB, unpin "
	       "%.2f s/GiB,\n# %.0f us per map call, reset %.1f ms, suspend %.1f ms, resume %.1f ms, %.1f ms per "
	       "queue at DRIVER_OK.\n", runs, mlx5.pin_ns_per_gib / 1e9, mlx5.unpin_ns_per_gib / 1e9,
	       mlx5.map_entry_ns / 1e3, mlx5.reset_ns / 1e6, mlx5.suspend_ns / 1e6, mlx5.resume_ns / 1e6,
	       mlx5.vq_setup_ns / 1e6);
	printf("%-9s %-8s %24s %24s\n", "strategy", "RAM", "to SVQ ms [tern]", "back ms [tern]");
	for (char *save = NULL, *tok = strtok_r(sizes_arg, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		uint64_t gib = strtoull(tok, NULL, 10);
		struct netdrv *d = calloc(1, sizeof(*d));
		struct err e = { { 0 } };
		/* RAM is mapped for free: the cost model applies to switches */
		if (!d || netdrv_init(d, gib * GiB, 0, false, &e) < 0) {
			fprintf(stderr, "switch_bench: %llu GiB: %s\n", (unsigned long long)gib, e.msg);
			return 1;
		}
		sim_net_set_cost(d->dev, &mlx5);
		struct pump p = { .d = d };
		pthread_t th;
		pthread_create(&th, NULL, pump_thread, &p);
		for (const char *s = strategies; *s; s++) {
			double to[20], back[20], tto[20], tback[20];
			if (shadow_force(&d->sh, (unsigned)(*s - '0'), &e) < 0) {
				fprintf(stderr, "switch_bench: %s\n", e.msg);
				return 1;
			}
			for (int i = 0; i < runs; i++) {
				to[i] = blackout_ms(d, &p, true, &tto[i]);
				back[i] = blackout_ms(d, &p, false, &tback[i]);
			}
			printf("%-9c %4llu GiB %14.2f [%7.2f] %14.2f [%7.2f]\n", *s, (unsigned long long)gib,
			       median(to, runs), median(tto, runs), median(back, runs), median(tback, runs));
			fflush(stdout);
		}
		if (gib == 1) {
			double pt = rate(&p);
			shadow_force(&d->sh, 1, &e);
			shadow_to_svq(&d->sh, &e);
			double svq = rate(&p);
			shadow_to_passthrough(&d->sh, &e);
			printf("# frames/s each way, 1 GiB: passthrough %.0f, SVQ %.0f (%.0f%%)\n", pt / 2, svq / 2,
			       100.0 * svq / pt);
		}
		p.stop = true;
		pthread_join(th, NULL);
		if (d->tx.bad || d->rx.bad) {
			fprintf(stderr, "switch_bench: damaged or duplicated frames (%llu, %llu)\n",
				(unsigned long long)d->tx.bad, (unsigned long long)d->rx.bad);
			return 1;
		}
		netdrv_exit(d);
		free(d);
	}
	return 0;
}
