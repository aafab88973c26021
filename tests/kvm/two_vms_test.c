/* SPDX-License-Identifier: MIT */
/*
 * Two VMs in one process (what in-process migration tests will need): both
 * boot the test guest at the same time from one tern library, each with its
 * own memory, vCPUs, devices and exit status. Any shared mutable state
 * between them shows up as a wrong report or status here.
 *
 * usage: two_vms_test GUEST.elf
 */
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include "tests/unit/unit.h"
#include "migrate/machine.h"
#include "vmm/vm.h"

static const char *guest_elf;

static void test_two_vms_at_once(void **state)
{
	struct vm a, b;
	struct err e = { { 0 } };
	char *ta = NULL, *tb = NULL;
	size_t la = 0, lb = 0;
	FILE *oa = open_memstream(&ta, &la), *ob = open_memstream(&tb, &lb);
	struct vm_config ca = {
		.nr_cpus = 2, .mem_size = 128 * MiB, .kernel = guest_elf,
		.cmdline = "test=boot-info exit=17 who=a", .test_device = true, .testdev_out = oa,
		.console_out_fd = -1,
	};
	struct vm_config cb = ca;

	(void)state;
	cb.nr_cpus = 3;
	cb.mem_size = 256 * MiB;
	cb.cmdline = "test=boot-info exit=23 who=b";
	cb.testdev_out = ob;
	if (machine_create(&a, &ca, &e) < 0 || machine_create(&b, &cb, &e) < 0)
		fail_msg("vm_create: %s", e.msg);
	assert_int_equal(vm_start(&a, &e), 0);
	assert_int_equal(vm_start(&b, &e), 0);
	struct pollfd p[2] = { { .fd = a.exit_fd, .events = POLLIN }, { .fd = b.exit_fd, .events = POLLIN } };
	for (int waited = 0; waited < 200 && !(p[0].revents && p[1].revents); waited++) {
		struct pollfd q[2] = { p[0], p[1] };
		poll(q, 2, 100);
		p[0].revents |= q[0].revents;
		p[1].revents |= q[1].revents;
		p[0].events = p[0].revents ? 0 : POLLIN;
		p[1].events = p[1].revents ? 0 : POLLIN;
	}
	vm_stop(&a);
	vm_stop(&b);
	assert_true(a.exit_requested && b.exit_requested);
	assert_int_equal(a.exit_status, 17);
	assert_int_equal(b.exit_status, 23);
	fflush(oa);
	fflush(ob);
	assert_non_null(strstr(ta, "testdev: cmdline=test=boot-info exit=17 who=a\n"));
	assert_non_null(strstr(ta, "testdev: cpus=2\n"));
	assert_non_null(strstr(tb, "testdev: cmdline=test=boot-info exit=23 who=b\n"));
	assert_non_null(strstr(tb, "testdev: cpus=3\n"));
	assert_null(strstr(ta, "who=b"));
	machine_destroy(&a);
	machine_destroy(&b);
	fclose(oa);
	fclose(ob);
	free(ta);
	free(tb);
}

static void test_create_destroy_leaks_nothing(void **state)
{
	struct vm_config c = { .nr_cpus = 2, .mem_size = 64 * MiB, .kernel = guest_elf, .console_out_fd = -1 };
	struct err e = { { 0 } };
	struct vm v;
	int before = 0, after = 0;

	(void)state;
	for (int fd = 0; fd < 1024; fd++)
		before += fcntl(fd, F_GETFD) >= 0;
	for (int i = 0; i < 20; i++) {
		assert_int_equal(machine_create(&v, &c, &e), 0);
		machine_destroy(&v);
	}
	/* a failing create must undo everything too */
	c.kernel = "/etc/passwd";
	for (int i = 0; i < 5; i++)
		assert_true(machine_create(&v, &c, &e) < 0);
	for (int fd = 0; fd < 1024; fd++)
		after += fcntl(fd, F_GETFD) >= 0;
	assert_int_equal(before, after);
}

/* While paused, no vCPU runs: a guest that would finish in milliseconds
 * does not finish; after resume it does. */
static void test_pause_resume(void **state)
{
	struct vm_config c = { .nr_cpus = 4, .mem_size = 64 * MiB, .kernel = guest_elf, .console_out_fd = -1,
			       .cmdline = "test=boot-info exit=9", .test_device = true };
	struct err e = { { 0 } };
	struct vm v;
	bool checked = false;

	(void)state;
	c.testdev_out = fopen("/dev/null", "w");
	for (int attempt = 0; attempt < 5 && !checked; attempt++) {
		assert_int_equal(machine_create(&v, &c, &e), 0);
		assert_int_equal(vm_start(&v, &e), 0);
		vm_pause(&v);
		assert_true(vm_is_paused(&v));
		pthread_mutex_lock(&v.lock);
		bool done_early = v.exit_requested;
		pthread_mutex_unlock(&v.lock);
		if (!done_early) {
			usleep(300000);
			pthread_mutex_lock(&v.lock);
			assert_false(v.exit_requested); /* nothing ran while paused */
			pthread_mutex_unlock(&v.lock);
			vm_resume(&v);
			struct pollfd p = { .fd = v.exit_fd, .events = POLLIN };
			assert_int_equal(poll(&p, 1, 20000), 1);
			assert_int_equal(v.exit_status, 9);
			checked = true;
		}
		vm_stop(&v);
		machine_destroy(&v);
	}
	fclose(c.testdev_out);
	assert_true(checked);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_two_vms_at_once),
		cmocka_unit_test(test_create_destroy_leaks_nothing),
		cmocka_unit_test(test_pause_resume),
	};

	if (argc != 2) {
		fprintf(stderr, "usage: %s GUEST.elf\n", argv[0]);
		return 2;
	}
	guest_elf = argv[1];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
