/* SPDX-License-Identifier: MIT */
/* vmm/sandbox.c - seccomp filters per kind of thread (sandbox.h). */
#include "vmm/sandbox.h"

#include <errno.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <ucontext.h>
#include <linux/fs.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <linux/sockios.h>
#include "vmm/vhost_compat.h"
#include <linux/vduse.h>
#include <unistd.h>

/* The names of x86-64 system calls by number, for the violation message
 * (generated from <sys/syscall.h> at build time: no lookup that could
 * allocate inside a signal handler). */
static const char *const syscall_names[] = {
#include "syscall_names.h"
};

static const char *const kind_names[SANDBOX_KINDS] = {
	[SANDBOX_MAIN] = "main",	   [SANDBOX_VCPU] = "vcpu",	      [SANDBOX_DEVICE] = "device",
	[SANDBOX_CONSOLE] = "console", [SANDBOX_MIGRATION] = "migration", [SANDBOX_THROTTLE] = "throttle",
	[SANDBOX_API] = "api",	       [SANDBOX_VDUSE] = "vduse",
};

const char *sandbox_kind_name(enum sandbox_kind k)
{
	return (unsigned)k < SANDBOX_KINDS ? kind_names[k] : NULL;
}

int sandbox_mode_parse(const char *s, enum sandbox_mode *m)
{
	static const char *const names[] = { [SANDBOX_OFF] = "off", [SANDBOX_ON] = "on", [SANDBOX_LOG] = "log" };

	for (unsigned i = 0; i < 3; i++)
		if (!strcmp(s, names[i])) {
			*m = (enum sandbox_mode)i;
			return 0;
		}
	return -EINVAL;
}

int sandbox_kind_parse(const char *s, enum sandbox_kind *k)
{
	for (unsigned i = 0; i < SANDBOX_KINDS; i++)
		if (!strcmp(s, kind_names[i])) {
			*k = (enum sandbox_kind)i;
			return 0;
		}
	return -EINVAL;
}

/*
 * The lists below were taken from tracing every thread of tern through the
 * whole test suite (strace -f, --seccomp off, both the plain and the
 * AddressSanitizer build), then widened only by the sibling of a call that
 * glibc may pick instead (poll/ppoll, read/readv). docs/security.md says
 * how to redo that when a change needs a new call.
 */

/* What every thread does: exit, wait on a futex, take and return from
 * signals (the vCPU kick, SIGSYS itself), allocate (glibc's malloc maps,
 * trims and sometimes falls back to brk), log to stderr, sleep, read
 * clocks, close what it opened. glibc's thread start (rseq,
 * set_robust_list) runs under the parent's filters. */
static const int common_calls[] = {
	SCMP_SYS(exit),		   SCMP_SYS(exit_group),      SCMP_SYS(futex),	   SCMP_SYS(rt_sigreturn),
	SCMP_SYS(rt_sigprocmask),  SCMP_SYS(restart_syscall), SCMP_SYS(mmap),	   SCMP_SYS(munmap),
	SCMP_SYS(mprotect),	   SCMP_SYS(madvise),	      SCMP_SYS(brk),	   SCMP_SYS(write),
	SCMP_SYS(writev),	   SCMP_SYS(clock_gettime),   SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep),
	SCMP_SYS(getpid),	   SCMP_SYS(gettid),	      SCMP_SYS(sched_yield), SCMP_SYS(sigaltstack),
	SCMP_SYS(rseq),		   SCMP_SYS(set_robust_list), SCMP_SYS(close),
};

/* Device threads wait on eventfds and their wire (a socket or a TAP),
 * move frames, reconnect a socket peer, and submit disk I/O to io_uring
 * (whose work the kernel does outside any filter: docs/security.md). */
static const int device_calls[] = {
	SCMP_SYS(read),	    SCMP_SYS(readv),	SCMP_SYS(poll),	    SCMP_SYS(ppoll),	      SCMP_SYS(recvfrom),
	SCMP_SYS(sendto),   SCMP_SYS(recvmsg),	SCMP_SYS(sendmsg),  SCMP_SYS(connect),	      SCMP_SYS(io_uring_enter),
};

/* A vCPU runs the guest; its exits reach the devices, and a driver that
 * sets DRIVER_OK makes the vCPU bring the device up: rings (memfd), eventfds,
 * io_uring, and the device's threads, whose filters it loads. */
static const int vcpu_calls[] = {
	    SCMP_SYS(eventfd2),	      SCMP_SYS(memfd_create), SCMP_SYS(ftruncate),
	SCMP_SYS(lseek),    SCMP_SYS(newfstatat),     SCMP_SYS(clone3),	      SCMP_SYS(clone),
	SCMP_SYS(io_uring_setup), SCMP_SYS(sched_getaffinity),  SCMP_SYS(seccomp),
	SCMP_SYS(tgkill),
};

static const int console_calls[] = { SCMP_SYS(read) };

/* A migration connects and handshakes (GnuTLS asks for randomness),
 * streams RAM and device state, pauses and throttles vCPUs (tgkill),
 * switches queues into shadow mode (rings, eventfds, relay threads); the
 * destination's side admits a VM (reads /proc/meminfo), makes its RAM
 * and receives into it. */
static const int migration_calls[] = {
	SCMP_SYS(socket),     SCMP_SYS(connect),	   SCMP_SYS(getsockopt),  SCMP_SYS(setsockopt),
	SCMP_SYS(shutdown),   SCMP_SYS(fcntl),		   SCMP_SYS(getrandom),	  
	SCMP_SYS(openat),     SCMP_SYS(newfstatat),	   SCMP_SYS(lseek),	  SCMP_SYS(pread64),
	SCMP_SYS(ftruncate),  SCMP_SYS(memfd_create),	   SCMP_SYS(eventfd2),	  SCMP_SYS(clone3),
	SCMP_SYS(clone),      SCMP_SYS(sched_getaffinity), SCMP_SYS(tgkill),	  
	SCMP_SYS(seccomp),
};

static const int throttle_calls[] = { SCMP_SYS(tgkill) };

/* The VDUSE daemon waits on its device, signals and interrupt eventfds,
 * answers messages (read/write on the device), maps the memory the kernel
 * hands it (fstat tells the files apart; mmap: common), starts the
 * device's thread on DRIVER_OK, issues its VDUSE ioctl requests (below)
 * and, at exit, removes its socket wire's file (unlink, after a stat that
 * checks it is still the one it made). */
static const int vduse_calls[] = { SCMP_SYS(read),   SCMP_SYS(poll),	   SCMP_SYS(ppoll), SCMP_SYS(fstat),
				   SCMP_SYS(newfstatat), SCMP_SYS(clone3), SCMP_SYS(clone), SCMP_SYS(tgkill),
				   SCMP_SYS(unlink) };

struct call_list {
	const int *calls;
	unsigned n;
};

#define LIST(a) { a, sizeof(a) / sizeof(a[0]) }

static const struct call_list kind_calls[SANDBOX_KINDS] = {
	[SANDBOX_VCPU] = LIST(vcpu_calls),	     [SANDBOX_DEVICE] = LIST(device_calls),
	[SANDBOX_CONSOLE] = LIST(console_calls),   [SANDBOX_MIGRATION] = LIST(migration_calls),
	[SANDBOX_THROTTLE] = LIST(throttle_calls), [SANDBOX_VDUSE] = LIST(vduse_calls),
};

#define KIND(k) (1u << (k))

/* A thread's filters stack on those of the thread that started it, so a
 * kind that starts threads of another kind must allow that kind's calls
 * too: vCPUs start device threads (DRIVER_OK), a migration starts relay
 * threads (the switch into shadow queues) and the throttle. */
static const unsigned kind_includes[SANDBOX_KINDS] = {
	[SANDBOX_VCPU] = KIND(SANDBOX_DEVICE),
	[SANDBOX_MIGRATION] = KIND(SANDBOX_DEVICE) | KIND(SANDBOX_THROTTLE),
	[SANDBOX_VDUSE] = KIND(SANDBOX_DEVICE),
};

/* The main thread's own needs, beyond the union of the others': set-up
 * (files, disks, TAPs, sockets, memory), the event loop, the API, snapshots
 * and restores, and the start of every other thread. */
static const int main_calls[] = {
	SCMP_SYS(openat),     SCMP_SYS(open),	     SCMP_SYS(read),	    SCMP_SYS(pread64),	 SCMP_SYS(pwrite64),
	SCMP_SYS(lseek),      SCMP_SYS(fstat),	     SCMP_SYS(newfstatat),  SCMP_SYS(statx),	 SCMP_SYS(readlink),
	SCMP_SYS(access),     SCMP_SYS(faccessat),   SCMP_SYS(faccessat2),
	SCMP_SYS(fcntl),      SCMP_SYS(flock),	     SCMP_SYS(ftruncate),   SCMP_SYS(fallocate), SCMP_SYS(fsync),
	SCMP_SYS(fdatasync),  SCMP_SYS(mkdir),	     SCMP_SYS(mkdirat),	    SCMP_SYS(renameat),	 SCMP_SYS(renameat2),
	SCMP_SYS(rename),     SCMP_SYS(unlink),	     SCMP_SYS(unlinkat),    SCMP_SYS(rmdir),    SCMP_SYS(getdents64), SCMP_SYS(eventfd2),
	SCMP_SYS(signalfd4),  SCMP_SYS(memfd_create), SCMP_SYS(socket),	    SCMP_SYS(bind),	 SCMP_SYS(listen),
	SCMP_SYS(accept4),    SCMP_SYS(accept),	     SCMP_SYS(connect),	    SCMP_SYS(getsockopt), SCMP_SYS(setsockopt),
	SCMP_SYS(getsockname), SCMP_SYS(getpeername), SCMP_SYS(shutdown),   SCMP_SYS(sendmsg),	 SCMP_SYS(recvmsg),
	SCMP_SYS(sendto),     SCMP_SYS(recvfrom),    SCMP_SYS(poll),	    SCMP_SYS(ppoll),	 SCMP_SYS(io_uring_setup),
	SCMP_SYS(io_uring_enter), SCMP_SYS(io_uring_register), SCMP_SYS(mremap), SCMP_SYS(clone3), SCMP_SYS(clone),
	SCMP_SYS(tgkill),     SCMP_SYS(rt_sigaction), SCMP_SYS(sched_getaffinity), SCMP_SYS(getrandom),
	SCMP_SYS(seccomp),    SCMP_SYS(capget),      SCMP_SYS(capset),    SCMP_SYS(prlimit64),
	SCMP_SYS(landlock_create_ruleset), SCMP_SYS(landlock_add_rule), SCMP_SYS(landlock_restrict_self),
	SCMP_SYS(setrlimit),  SCMP_SYS(getuid),      SCMP_SYS(getgid),      SCMP_SYS(geteuid),   SCMP_SYS(getegid),
	SCMP_SYS(getresuid),  SCMP_SYS(getresgid),     
};

/* The AddressSanitizer build's leak check stops the world at exit with a
 * ptrace-attached helper thread (it inherits the main thread's filter),
 * which lists /proc/self/task. Only that build allows these. */
#if defined(__SANITIZE_ADDRESS__)
static const int sanitizer_calls[] = {
	SCMP_SYS(ptrace), SCMP_SYS(wait4),       SCMP_SYS(getdents64), SCMP_SYS(getdents),
	SCMP_SYS(open),   SCMP_SYS(openat),      SCMP_SYS(prctl),      SCMP_SYS(clone),
	SCMP_SYS(getppid), SCMP_SYS(sched_yield), SCMP_SYS(readlink),
};
#endif

/*
 * ioctl(2) is allowed by request, not by file: a vCPU may run, inject and
 * bring a vhost device up, a migration may read state and dirty logs and
 * reconfigure the vhost device, a device thread may not issue any. The main
 * thread may issue every request tern makes. The kernel compares the low
 * 32 bits of the request (it takes an unsigned int).
 */
#define V KIND(SANDBOX_VCPU)
#define G KIND(SANDBOX_MIGRATION)
#define D KIND(SANDBOX_VDUSE)
struct ioctl_rule {
	unsigned long request;
	unsigned kinds; /* besides the main thread */
};

static const struct ioctl_rule ioctl_rules[] = {
	/* the vCPU's loop first: the filter checks rules in order */
	{ KVM_RUN, V },
	{ KVM_IRQ_LINE, V | G },
	{ KVM_KVMCLOCK_CTRL, V | G },
	{ KVM_IOEVENTFD, V | G },
	{ KVM_IRQFD, V | G },
	{ KVM_RESET_DIRTY_RINGS, V | G },
	{ KVM_SET_GSI_ROUTING, V | G },
	/* state and dirty tracking */
	{ KVM_GET_REGS, G },
	{ KVM_GET_SREGS, G },
	{ KVM_GET_MSRS, G },
	{ KVM_GET_LAPIC, G },
	{ KVM_GET_XSAVE, G },
	{ KVM_GET_XSAVE2, G },
	{ KVM_GET_XCRS, G },
	{ KVM_GET_DEBUGREGS, G },
	{ KVM_GET_VCPU_EVENTS, G },
	{ KVM_GET_MP_STATE, G },
	{ KVM_GET_CLOCK, G },
	{ KVM_GET_IRQCHIP, G },
	{ KVM_GET_PIT2, G },
	{ KVM_GET_TSC_KHZ, G },
	{ KVM_GET_MSR_INDEX_LIST, G },
	{ KVM_CHECK_EXTENSION, G },
	{ KVM_ENABLE_CAP, G },
	{ KVM_GET_DIRTY_LOG, G },
	{ KVM_CLEAR_DIRTY_LOG, G },
	{ KVM_SET_USER_MEMORY_REGION, G },
	/* set-up and restore: the main thread only */
	{ KVM_GET_API_VERSION, 0 },
	{ KVM_CREATE_VM, 0 },
	{ KVM_GET_VCPU_MMAP_SIZE, 0 },
	{ KVM_GET_SUPPORTED_CPUID, 0 },
	{ KVM_CREATE_VCPU, 0 },
	{ KVM_CREATE_IRQCHIP, 0 },
	{ KVM_CREATE_PIT2, 0 },
	{ KVM_SET_TSS_ADDR, 0 },
	{ KVM_SET_IDENTITY_MAP_ADDR, 0 },
	{ KVM_SET_CPUID2, 0 },
	{ KVM_SET_REGS, 0 },
	{ KVM_SET_SREGS, 0 },
	{ KVM_SET_MSRS, 0 },
	{ KVM_SET_LAPIC, 0 },
	{ KVM_SET_XSAVE, 0 },
	{ KVM_SET_XCRS, 0 },
	{ KVM_SET_DEBUGREGS, 0 },
	{ KVM_SET_VCPU_EVENTS, 0 },
	{ KVM_SET_MP_STATE, 0 },
	{ KVM_SET_CLOCK, 0 },
	{ KVM_SET_IRQCHIP, 0 },
	{ KVM_SET_PIT2, 0 },
	{ KVM_SET_TSC_KHZ, 0 },
	/* the kernel vhost-vdpa device: brought up by a vCPU, switched by a migration */
	{ VHOST_GET_FEATURES, V | G },
	{ VHOST_SET_FEATURES, V | G },
	{ VHOST_GET_BACKEND_FEATURES, V | G },
	{ VHOST_SET_BACKEND_FEATURES, V | G },
	{ VHOST_SET_OWNER, V | G },
	{ VHOST_SET_VRING_NUM, V | G },
	{ VHOST_SET_VRING_ADDR, V | G },
	{ VHOST_SET_VRING_BASE, V | G },
	{ VHOST_GET_VRING_BASE, V | G },
	{ VHOST_SET_VRING_KICK, V | G },
	{ VHOST_SET_VRING_CALL, V | G },
	{ VHOST_VDPA_GET_DEVICE_ID, V | G },
	{ VHOST_VDPA_GET_STATUS, V | G },
	{ VHOST_VDPA_SET_STATUS, V | G },
	{ VHOST_VDPA_GET_CONFIG, V | G },
	{ VHOST_VDPA_SET_CONFIG, V | G },
	{ VHOST_VDPA_SET_VRING_ENABLE, V | G },
	{ VHOST_VDPA_GET_VRING_NUM, V | G },
	{ VHOST_VDPA_SET_CONFIG_CALL, V | G },
	{ VHOST_VDPA_GET_IOVA_RANGE, V | G },
	{ VHOST_VDPA_GET_CONFIG_SIZE, V | G },
	{ VHOST_VDPA_GET_VQS_COUNT, V | G },
	{ VHOST_VDPA_GET_GROUP_NUM, V | G },
	{ VHOST_VDPA_GET_AS_NUM, V | G },
	{ VHOST_VDPA_GET_VRING_GROUP, V | G },
	{ VHOST_VDPA_GET_VRING_DESC_GROUP, V | G },
	{ VHOST_VDPA_GET_VRING_SIZE, V | G },
	{ VHOST_VDPA_SET_GROUP_ASID, V | G },
	{ VHOST_VDPA_SUSPEND, V | G },
	{ VHOST_VDPA_RESUME, V | G },
	/* tern vduse-net, once its device exists */
	{ VDUSE_IOTLB_GET_FD, D },
	{ VDUSE_VQ_GET_INFO, D },
	{ VDUSE_VQ_SETUP_KICKFD, D },
	{ VDUSE_VQ_INJECT_IRQ, D },
	{ VDUSE_DEV_INJECT_CONFIG_IRQ, D },
	{ VDUSE_DEV_GET_FEATURES, D },
	{ VDUSE_DESTROY_DEV, D },
	/* ... and before: its set-up (main only) */
	{ VDUSE_GET_API_VERSION, 0 },
	{ VDUSE_SET_API_VERSION, 0 },
	{ VDUSE_CREATE_DEV, 0 },
	{ VDUSE_VQ_SETUP, 0 },
	/* TAPs, disks, the terminal */
	{ TUNSETIFF, 0 },
	{ SIOCGIFFLAGS, 0 },
	{ SIOCSIFFLAGS, 0 },
	{ BLKGETSIZE64, 0 },
	{ TCGETS, 0 },
	{ TCSETS, 0 },
	{ TCSETSW, 0 },
	{ TCSETSF, 0 },
	{ TIOCGWINSZ, 0 },
};
#undef V
#undef G
#undef D

/* The message of a call outside a thread's filter, written with write(2)
 * only (async-signal-safe), then the process ends. */
static void put(const char *s)
{
	if (write(STDERR_FILENO, s, strlen(s)) < 0)
		return;
}

/* n in base 10 or 16 into the end of buf; returns where it starts. */
static const char *format_unsigned(char *buf, size_t size, unsigned long n, unsigned base)
{
	char *p = buf + size - 1;

	*p = '\0';
	do
		*--p = "0123456789abcdef"[n % base];
	while ((n /= base) && p > buf);
	return p;
}

static void on_sigsys(int sig, siginfo_t *si, void *ucontext)
{
	const ucontext_t *uc = ucontext;
	char name[17] = "?", num[24];
	unsigned nr = (unsigned)si->si_syscall;

	(void)sig;
	prctl(PR_GET_NAME, name, 0, 0, 0);
	put("tern: error: seccomp: thread '");
	put(name);
	put("' made system call ");
	put(nr < sizeof(syscall_names) / sizeof(syscall_names[0]) && syscall_names[nr] ? syscall_names[nr] : "?");
	put(" (");
	put(format_unsigned(num, sizeof(num), nr, 10));
	if (nr == SYS_ioctl || nr == SYS_prctl) {
		/* which request or option: the second or first argument */
		put(nr == SYS_ioctl ? ", request 0x" : ", option ");
		put(nr == SYS_ioctl ? format_unsigned(num, sizeof(num),
						      (unsigned long)uc->uc_mcontext.gregs[REG_RSI] & 0xffffffffu, 16)
				    : format_unsigned(num, sizeof(num), (unsigned long)uc->uc_mcontext.gregs[REG_RDI], 10));
	}
	put("), which its filter does not allow; this is a bug in tern: rerun with --seccomp log to find every "
	    "missing call (docs/security.md)\n");
	syscall(SYS_exit_group, 1);
}

static int allow(scmp_filter_ctx ctx, const int *calls, unsigned n, struct err *e)
{
	for (unsigned i = 0; i < n; i++) {
		int r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, calls[i], 0);
		if (r < 0 && r != -EEXIST)
			return err_errno(e, r, "seccomp: allowing system call %d", calls[i]);
	}
	return 0;
}

/* Every thread may name itself (the threads it starts do, under its
 * filter), read its name (the SIGSYS handler does) and set no_new_privs
 * (libseccomp does before it loads a filter); the main thread may do
 * anything with prctl. */
static int allow_prctl_naming(scmp_filter_ctx ctx, struct err *e)
{
	static const int options[] = { PR_SET_NAME, PR_GET_NAME, PR_SET_NO_NEW_PRIVS };

	for (unsigned i = 0; i < sizeof(options) / sizeof(options[0]); i++) {
		int r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
					 (struct scmp_arg_cmp){ .arg = 0, .op = SCMP_CMP_EQ,
								.datum_a = (scmp_datum_t)options[i] });
		if (r < 0)
			return err_errno(e, r, "seccomp: allowing prctl %d", options[i]);
	}
	return 0;
}

/* The ioctl requests open to the kinds in mask (all of them for main). */
static int allow_ioctls(scmp_filter_ctx ctx, unsigned mask, struct err *e)
{
	for (unsigned i = 0; i < sizeof(ioctl_rules) / sizeof(ioctl_rules[0]); i++) {
		const struct ioctl_rule *rule = &ioctl_rules[i];
		int r;

		if (!(mask & KIND(SANDBOX_MAIN)) && !(rule->kinds & mask))
			continue;
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
				     (struct scmp_arg_cmp){ .arg = 1, .op = SCMP_CMP_MASKED_EQ, .datum_a = 0xffffffffu,
							    .datum_b = rule->request & 0xffffffffu });
		if (r < 0 && r != -EEXIST)
			return err_errno(e, r, "seccomp: allowing ioctl %#lx", rule->request);
	}
	return 0;
}

/* The kinds whose calls a filter of kind k allows: itself and those it
 * includes; main, every kind; the API, every kind but main (whose ioctl
 * requests, creating and setting up the VM, it may not make). */
static unsigned kinds_allowed(enum sandbox_kind k)
{
	unsigned all = (1u << SANDBOX_KINDS) - 1;

	if (k == SANDBOX_MAIN)
		return all;
	return k == SANDBOX_API ? all & ~KIND(SANDBOX_MAIN) : KIND(k) | kind_includes[k];
}

/* The main thread's own calls: its, and the API's, whose handlers write
 * snapshots, start migrations and (a shutdown's reply sent) end the
 * process, as the main thread does. */
static bool main_calls_allowed(enum sandbox_kind k)
{
	return k == SANDBOX_MAIN || k == SANDBOX_API;
}

/* The privilege drop (vmm/privdrop.h) runs on every thread alive then:
 * setresuid and setresgid to exactly the ids it takes (from which no
 * thread can go back), setgroups to none (the supplementary groups go). */
static int allow_id_drop(scmp_filter_ctx ctx, const struct sandbox *sb, struct err *e)
{
	const int calls[] = { SCMP_SYS(setresuid), SCMP_SYS(setresgid) };
	const uint32_t ids[] = { sb->uid, sb->gid };
	int r = 0;

	for (unsigned i = 0; i < 2 && r == 0; i++) {
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, calls[i], 3,
				     (struct scmp_arg_cmp){ .arg = 0, .op = SCMP_CMP_EQ, .datum_a = ids[i] },
				     (struct scmp_arg_cmp){ .arg = 1, .op = SCMP_CMP_EQ, .datum_a = ids[i] },
				     (struct scmp_arg_cmp){ .arg = 2, .op = SCMP_CMP_EQ, .datum_a = ids[i] });
	}
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(setgroups), 1,
				     (struct scmp_arg_cmp){ .arg = 0, .op = SCMP_CMP_EQ, .datum_a = 0 });
	return r < 0 ? err_errno(e, r, "seccomp: allowing the drop to uid %u", sb->uid) : 0;
}

static int add_rules(scmp_filter_ctx ctx, const struct sandbox *sb, enum sandbox_kind kind, struct err *e)
{
	unsigned mask = kinds_allowed(kind);
	int r = allow(ctx, common_calls, sizeof(common_calls) / sizeof(common_calls[0]), e);

	for (unsigned k = 0; r == 0 && k < SANDBOX_KINDS; k++)
		if (mask & KIND(k))
			r = allow(ctx, kind_calls[k].calls, kind_calls[k].n, e);
	if (r == 0)
		r = allow_ioctls(ctx, mask, e);
	if (r == 0 && main_calls_allowed(kind))
		r = allow(ctx, main_calls, sizeof(main_calls) / sizeof(main_calls[0]), e);
#if defined(__SANITIZE_ADDRESS__)
	if (r == 0 && (main_calls_allowed(kind) || kind == SANDBOX_VDUSE))
		r = allow(ctx, sanitizer_calls, sizeof(sanitizer_calls) / sizeof(sanitizer_calls[0]), e);
#endif
	if (r == 0 && kind == SANDBOX_MAIN)
		r = allow(ctx, (const int[]){ SCMP_SYS(prctl) }, 1, e);
	else if (r == 0)
		r = allow_prctl_naming(ctx, e);
	if (r == 0 && sb->drop_ids)
		r = allow_id_drop(ctx, sb, e);
	return r;
}

/* A process's first filter, put on all its threads: the VMM's main
 * thread's, and the VDUSE daemon's. */
static bool process_kind(enum sandbox_kind k)
{
	return k == SANDBOX_MAIN || k == SANDBOX_VDUSE;
}

static int build_and_load(const struct sandbox *sb, enum sandbox_kind kind, struct err *e)
{
	scmp_filter_ctx ctx = seccomp_init(sb->mode == SANDBOX_LOG ? SCMP_ACT_LOG : SCMP_ACT_TRAP);
	int r;

	if (!ctx)
		return err_set(e, -ENOMEM, "seccomp: cannot build a filter");
	/* a binary tree over the system call numbers: a call costs a few
	 * comparisons, not a walk of the whole list */
	if (seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2) < 0)
		pr_debug("seccomp: no binary-tree filters in this libseccomp");
	r = add_rules(ctx, sb, kind, e);
	if (r == 0 && process_kind(kind) && (r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1)) < 0)
		err_errno(e, r, "seccomp: TSYNC");
	if (r == 0 && (r = seccomp_load(ctx)) < 0)
		err_errno(e, r, "seccomp: loading the %s filter", kind_names[kind]);
	seccomp_release(ctx);
	return r;
}

int sandbox_enter(const struct sandbox *sb, enum sandbox_kind kind, const char *name, struct err *e)
{
	int r;

	prctl(PR_SET_NAME, name, 0, 0, 0);
	if (!sb || sb->mode == SANDBOX_OFF)
		return 0;
	if (process_kind(kind)) {
		struct sigaction sa = { .sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO };
		sigemptyset(&sa.sa_mask);
		if (sigaction(SIGSYS, &sa, NULL) < 0)
			return err_errno(e, -errno, "seccomp: SIGSYS handler");
		/* glibc reads the time zone on first use, even for gmtime_r
		 * (the CMOS clock, on a vCPU): read it while files may be opened */
		tzset();
	}
	if ((r = build_and_load(sb, kind, e)) < 0)
		return r;
	if (sb->violate == (unsigned)kind + 1)
		syscall(SYS_getsid, 0); /* harmless, and in no filter */
	return 0;
}

void sandbox_enter_thread(const struct sandbox *sb, enum sandbox_kind kind, const char *name)
{
	struct err e = { { 0 } };

	if (sandbox_enter(sb, kind, name, &e) < 0) {
		/* fail closed: a thread that cannot be confined does not run */
		pr_err("seccomp: the %s thread '%s' cannot be confined: %s", kind_names[kind], name, e.msg);
		syscall(SYS_exit_group, 1);
	}
}
