/* SPDX-License-Identifier: MIT */
/*
 * vmm/sandbox.h - seccomp-bpf filters, one per kind of thread
 * (docs/security.md), built with libseccomp.
 *
 * Filters stack and are inherited: the main thread's filter, installed
 * (on every thread at once) before the guest's first instruction and
 * before tern reads a byte of hostile input, allows what any of tern's
 * threads needs; each thread that tern starts then adds the filter of its
 * kind on entry, which allows only that kind's calls. Neither is ever
 * loosened: a filter cannot be removed, only narrowed.
 *
 * A call outside a thread's filter: with --seccomp on (tern's default)
 * the process ends at once with a message that names the thread and the
 * call; with --seccomp log the call goes through and the kernel logs it
 * (an audit record of type 1326 in its log: dmesg); --seccomp off installs
 * nothing. Threads are named either way ("vcpu0", "net-relay", ...), so
 * that `top -H`, the kernel's log and tern's message say which one.
 */
#ifndef TERN_VMM_SANDBOX_H
#define TERN_VMM_SANDBOX_H

#include "vmm/util.h"

enum sandbox_mode {
	SANDBOX_OFF, /* the zero value: a library user or a test gets no filter unless it asks */
	SANDBOX_ON,
	SANDBOX_LOG,
};

enum sandbox_kind {
	SANDBOX_MAIN,      /* the main thread: set-up, event loop */
	SANDBOX_VCPU,      /* a vCPU thread */
	SANDBOX_DEVICE,    /* device and relay threads: the software vDPA device, shadow queues, disks */
	SANDBOX_CONSOLE,   /* the serial console's writer */
	SANDBOX_MIGRATION, /* migration sender, its connections, the receiver's connections and listener */
	SANDBOX_THROTTLE,  /* the vCPU throttle's timer */
	SANDBOX_API,       /* the control API's server thread (libmicrohttpd's), from its first connection */
	SANDBOX_VDUSE,     /* tern vduse-net: the daemon answering the kernel's VDUSE messages */
	SANDBOX_KINDS
};

struct sandbox {
	enum sandbox_mode mode;
	/* the test interface's seccomp-violate=KIND (vmm/test_faults.h): a
	 * thread of that kind makes a call outside its filter right after
	 * entering it; 1 + the kind, 0: none */
	unsigned violate;
	/* --user: every filter lets a thread take exactly these ids (glibc
	 * has each thread of the process make the set*id calls itself) */
	bool drop_ids;
	uint32_t uid, gid;
};

/* "on", "log" or "off"; -EINVAL for anything else. */
int sandbox_mode_parse(const char *s, enum sandbox_mode *m);
/* "main", "vcpu", ...; NULL for none. */
const char *sandbox_kind_name(enum sandbox_kind k);
/* The kind named s; -EINVAL if none is. */
int sandbox_kind_parse(const char *s, enum sandbox_kind *k);

/* Names the calling thread (at most 15 characters are kept) and, unless
 * sb is NULL or off, confines it to the calls of its kind. SANDBOX_MAIN
 * puts its filter on every thread of the process (TSYNC) and sets
 * no_new_privs. -errno if a filter cannot be built or loaded. */
int sandbox_enter(const struct sandbox *sb, enum sandbox_kind kind, const char *name, struct err *e);

/* sandbox_enter() for a thread that tern starts: one that cannot be
 * confined ends the process (with a message), rather than run unconfined. */
void sandbox_enter_thread(const struct sandbox *sb, enum sandbox_kind kind, const char *name);

#endif
