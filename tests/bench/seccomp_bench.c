/* SPDX-License-Identifier: MIT */
/*
 * What tern's seccomp filters cost (tests/bench/seccomp): the time to
 * build and load each kind's filter, and the time a system call takes
 * under the filters a thread of that kind carries (the main thread's and
 * its own) against no filter, in the same run. The calls are the hot ones:
 * a vCPU's KVM_RUN (a migration's KVM_GET_DIRTY_LOG) and a device thread's
 * sendto, each on a bad descriptor, so the kernel returns at once and the
 * filter's part shows.
 * Each measurement runs in a forked child, which keeps its filters.
 *
 * usage: seccomp_bench [CALLS]   (default 1000000 per figure)
 */
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vmm/sandbox.h"

static double now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

/* ns per call of nr with a bad descriptor, over n calls */
static double per_call_ns(long nr, unsigned long arg1, long n)
{
	double t0 = now_us();

	for (long i = 0; i < n; i++)
		syscall(nr, -1, arg1, 0, 0, 0, 0);
	return (now_us() - t0) * 1e3 / (double)n;
}

/* The hot ioctl request of a kind: a vCPU's KVM_RUN (the main thread
 * and the API may issue it too), a migration's dirty-log read; 0 for a
 * device thread, which may issue none. */
static unsigned long hot_request(enum sandbox_kind kind)
{
	return kind == SANDBOX_DEVICE ? 0 : kind == SANDBOX_MIGRATION ? KVM_GET_DIRTY_LOG : KVM_RUN;
}

/* In a child: the filters of kind (none if off), then the figures, sent
 * back through a pipe: build time (us), ioctl ns, sendto ns. */
static int measure(enum sandbox_kind kind, bool off, long n, double out[3])
{
	int p[2];
	pid_t pid;

	if (pipe(p) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		struct sandbox sb = { .mode = SANDBOX_ON };
		struct err e = { { 0 } };
		double r[3] = { 0, 0, 0 }, t0 = now_us();
		if (!off && ((kind != SANDBOX_VDUSE && sandbox_enter(&sb, SANDBOX_MAIN, "b-main", &e) < 0) ||
			     (kind != SANDBOX_MAIN && sandbox_enter(&sb, kind, "b-kind", &e) < 0)))
			_exit(2);
		r[0] = now_us() - t0;
		r[1] = hot_request(kind) ? per_call_ns(SYS_ioctl, hot_request(kind), n) : 0;
		r[2] = per_call_ns(SYS_sendto, 0, n);
		_exit(write(p[1], r, sizeof(r)) == (ssize_t)sizeof(r) ? 0 : 3);
	}
	close(p[1]);
	ssize_t got = read(p[0], out, 3 * sizeof(double));
	close(p[0]);
	int st = 0;
	waitpid(pid, &st, 0);
	return got == (ssize_t)(3 * sizeof(double)) && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	static const enum sandbox_kind kinds[] = { SANDBOX_MAIN, SANDBOX_VCPU, SANDBOX_DEVICE, SANDBOX_MIGRATION,
						   SANDBOX_API };
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	double base[3], worst = 0;

	if (n <= 0 || measure(SANDBOX_MAIN, true, n, base) < 0) {
		fprintf(stderr, "seccomp_bench: cannot measure\n");
		return 1;
	}
	printf("seccomp filters: build+load time and system call cost, %ld calls each, same run\n", n);
	printf("%-12s%16s%18s%16s\n", "thread kind", "build+load us", "hot ioctl ns", "sendto ns");
	printf("%-12s%16s%18.0f%16.0f\n", "no filter", "-", base[1], base[2]);
	for (unsigned i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		double r[3];
		if (measure(kinds[i], false, n, r) < 0) {
			fprintf(stderr, "seccomp_bench: the %s filter failed\n", sandbox_kind_name(kinds[i]));
			return 1;
		}
		bool has_ioctl = hot_request(kinds[i]) != 0;
		printf("%-12s%16.0f", sandbox_kind_name(kinds[i]), r[0]);
		if (has_ioctl)
			printf("%+17.0f ", r[1] - base[1]);
		else
			printf("%18s", "(none)");
		printf("%+15.0f\n", r[2] - base[2]);
		if (has_ioctl && r[1] - base[1] > worst)
			worst = r[1] - base[1];
		if (r[2] - base[2] > worst)
			worst = r[2] - base[2];
	}
	printf("seccomp filters: worst added cost per system call %.0f ns\n", worst);
	return 0;
}
