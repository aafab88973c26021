/* SPDX-License-Identifier: MIT */
/*
 * The sandbox's parsers, its filters' effect (each in a forked child, so
 * that a filter never lands on the test runner) and the --user parser.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <linux/vduse.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/unit/unit.h"
#include "vmm/privdrop.h"
#include "vmm/sandbox.h"

static void test_mode_and_kind_names(void **state)
{
	enum sandbox_mode m;
	enum sandbox_kind k;

	(void)state;
	assert_int_equal(sandbox_mode_parse("on", &m), 0);
	assert_int_equal(m, SANDBOX_ON);
	assert_int_equal(sandbox_mode_parse("log", &m), 0);
	assert_int_equal(m, SANDBOX_LOG);
	assert_int_equal(sandbox_mode_parse("off", &m), 0);
	assert_int_equal(m, SANDBOX_OFF);
	assert_int_equal(sandbox_mode_parse("ON", &m), -EINVAL);
	assert_int_equal(sandbox_mode_parse("", &m), -EINVAL);
	for (unsigned i = 0; i < SANDBOX_KINDS; i++) {
		const char *name = sandbox_kind_name((enum sandbox_kind)i);
		assert_non_null(name);
		assert_int_equal(sandbox_kind_parse(name, &k), 0);
		assert_int_equal(k, i);
	}
	assert_int_equal(sandbox_kind_parse("vcpus", &k), -EINVAL);
	assert_null(sandbox_kind_name(SANDBOX_KINDS));
}

/* What the child did: its exit status, or 128 + the signal that ended it. */
static int child_outcome(pid_t pid)
{
	int st;

	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* In a child: the main filter, then (unless kind is main) kind's; then
 * one call that kind may make (exit 0 must follow) or may not (the
 * SIGSYS handler ends the process with 1). */
static int confined(enum sandbox_kind kind, int (*probe)(void))
{
	struct sandbox sb = { .mode = SANDBOX_ON };
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		struct err e = { { 0 } };
		/* (stderr closed: the violation message is for users) */
		int devnull = open("/dev/null", O_WRONLY);
		dup2(devnull, 2);
		/* (the VDUSE daemon's is a process's first filter, like main's) */
		if (kind != SANDBOX_VDUSE && sandbox_enter(&sb, SANDBOX_MAIN, "t-main", &e) < 0)
			_exit(3);
		if (kind != SANDBOX_MAIN && sandbox_enter(&sb, kind, "t-kind", &e) < 0)
			_exit(4);
		_exit(probe() == 0 ? 0 : 5);
	}
	return child_outcome(pid);
}

static int probe_getpid(void)
{
	return syscall(SYS_getpid) > 0 ? 0 : -1;
}

static int probe_kvm_create_vm(void)
{
	/* on a bad descriptor: the filter decides before the kernel looks */
	return ioctl(-1, KVM_CREATE_VM, 0) < 0 && errno == EBADF ? 0 : -1;
}

static int probe_kvm_run(void)
{
	return ioctl(-1, KVM_RUN, 0) < 0 && errno == EBADF ? 0 : -1;
}

static int probe_vduse_vq_info(void)
{
	struct vduse_vq_info info = { 0 };

	return ioctl(-1, VDUSE_VQ_GET_INFO, &info) < 0 && errno == EBADF ? 0 : -1;
}

static int probe_vduse_create(void)
{
	return ioctl(-1, VDUSE_CREATE_DEV, NULL) < 0 && errno == EBADF ? 0 : -1;
}

static int probe_socket(void)
{
	return syscall(SYS_socket, -1, 0, 0) < 0 ? 0 : -1;
}

static int probe_getsid(void)
{
	return syscall(SYS_getsid, 0) >= 0 ? 0 : -1;
}

static int probe_prctl_dumpable(void)
{
	return prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) == 0 ? 0 : -1;
}

static void test_filters_allow_and_refuse(void **state)
{
	(void)state;
	/* every kind may do the basics */
	for (unsigned k = 0; k < SANDBOX_KINDS; k++)
		assert_int_equal(confined((enum sandbox_kind)k, probe_getpid), 0);
	/* a call in no filter */
	assert_int_equal(confined(SANDBOX_MAIN, probe_getsid), 1);
	assert_int_equal(confined(SANDBOX_VCPU, probe_getsid), 1);
	/* ioctls by request: a vCPU runs, but cannot make a VM; main can */
	assert_int_equal(confined(SANDBOX_VCPU, probe_kvm_run), 0);
	assert_int_equal(confined(SANDBOX_VCPU, probe_kvm_create_vm), 1);
	assert_int_equal(confined(SANDBOX_MAIN, probe_kvm_create_vm), 0);
	/* a device thread issues no ioctl at all */
	assert_int_equal(confined(SANDBOX_DEVICE, probe_kvm_run), 1);
	/* sockets: a migration makes them, a console writer does not */
	assert_int_equal(confined(SANDBOX_MIGRATION, probe_socket), 0);
	assert_int_equal(confined(SANDBOX_CONSOLE, probe_socket), 1);
	/* the API's thread: a vCPU's and a migration's requests, not set-up */
	assert_int_equal(confined(SANDBOX_API, probe_kvm_run), 0);
	assert_int_equal(confined(SANDBOX_API, probe_kvm_create_vm), 1);
#if !defined(__SANITIZE_ADDRESS__) /* (whose leak check needs prctl on the threads that may exit) */
	assert_int_equal(confined(SANDBOX_API, probe_prctl_dumpable), 1);
#endif
	/* the VDUSE daemon: its device's requests, not creating one, no KVM */
	assert_int_equal(confined(SANDBOX_VDUSE, probe_vduse_vq_info), 0);
	assert_int_equal(confined(SANDBOX_VDUSE, probe_vduse_create), 1);
	assert_int_equal(confined(SANDBOX_VDUSE, probe_kvm_run), 1);
	assert_int_equal(confined(SANDBOX_VDUSE, probe_socket), 1);
	/* prctl beyond naming is the main thread's */
	assert_int_equal(confined(SANDBOX_MAIN, probe_prctl_dumpable), 0);
	assert_int_equal(confined(SANDBOX_DEVICE, probe_prctl_dumpable), 1);
}

static void test_log_mode_lets_calls_through(void **state)
{
	struct sandbox sb = { .mode = SANDBOX_LOG };
	pid_t pid;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct err e = { { 0 } };
		if (sandbox_enter(&sb, SANDBOX_MAIN, "t-main", &e) < 0 || sandbox_enter(&sb, SANDBOX_CONSOLE, "t", &e) < 0)
			_exit(3);
		_exit(probe_getsid() == 0 && probe_socket() == 0 ? 0 : 5);
	}
	assert_int_equal(child_outcome(pid), 0);
}

static void test_user_parse(void **state)
{
	struct privdrop p;
	struct err e = { { 0 } };

	(void)state;
	assert_int_equal(privdrop_parse("nobody", &p, &e), 0);
	assert_true(p.enabled);
	assert_int_not_equal(p.uid, 0);
	assert_int_not_equal(p.gid, 0);
	assert_int_equal(privdrop_parse("65534:65534", &p, &e), 0);
	assert_int_equal(p.uid, 65534);
	assert_int_equal(p.gid, 65534);
	assert_int_equal(privdrop_parse("1234:4321", &p, &e), 0); /* numbers need no entry with a group */
	assert_int_equal(p.uid, 1234);
	assert_int_equal(p.gid, 4321);
	memset(&e, 0, sizeof(e));
	assert_int_equal(privdrop_parse("root", &p, &e), -EINVAL);
	assert_err_contains(&e, "is root");
	assert_false(p.enabled);
	memset(&e, 0, sizeof(e));
	assert_int_equal(privdrop_parse("nobody:0", &p, &e), -EINVAL);
	assert_err_contains(&e, "is root");
	memset(&e, 0, sizeof(e));
	assert_int_equal(privdrop_parse("no-such-user-tern", &p, &e), -ENOENT);
	assert_err_contains(&e, "no user 'no-such-user-tern'");
	memset(&e, 0, sizeof(e));
	assert_int_equal(privdrop_parse("nobody:no-such-group-tern", &p, &e), -ENOENT);
	assert_err_contains(&e, "no group");
	memset(&e, 0, sizeof(e));
	assert_int_equal(privdrop_parse(":users", &p, &e), -EINVAL);
	memset(&e, 0, sizeof(e));
	/* a bare uid with no entry to take a group from */
	assert_int_equal(privdrop_parse("4000000000", &p, &e), -EINVAL);
	assert_err_contains(&e, "give one");
	/* not enabled: nothing to do */
	memset(&p, 0, sizeof(p));
	assert_int_equal(privdrop_apply(&p, &e), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mode_and_kind_names),
		cmocka_unit_test(test_filters_allow_and_refuse),
		cmocka_unit_test(test_log_mode_lets_calls_through),
		cmocka_unit_test(test_user_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
