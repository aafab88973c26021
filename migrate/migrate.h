/* SPDX-License-Identifier: MIT */
/*
 * migrate/migrate.h - live migration over a stream socket
 * (docs/migration.md): the source's pre-copy engine and state machine, and
 * the destination's receiver.
 *
 * Hand-over, so that two copies never run: the destination loads
 * everything, answers READY and waits; the source, on READY, commits (from
 * then on it never resumes the VM) and sends GO; the destination starts the
 * guest on GO and answers DONE. A source failure before the commit resumes
 * the source VM as it was; a destination failure before GO never starts
 * the guest there. A connection lost between GO and DONE leaves the source
 * paused - it cannot know whether the destination runs - and says so.
 */
#ifndef TERN_MIGRATE_MIGRATE_H
#define TERN_MIGRATE_MIGRATE_H

#include <pthread.h>
#include <stdatomic.h>

#include "vmm/util.h"

struct vm;
struct vm_config;
struct mig_tls_creds;

/* The source's states, in order. Cancel is possible up to HANDOVER. */
enum mig_state {
	MIG_S_NONE,      /* no migration was started */
	MIG_S_SETUP,     /* connecting; the destination checks the configuration */
	MIG_S_ACTIVE,    /* pre-copy passes while the VM runs */
	MIG_S_STOPPED,   /* the VM is paused: the last pages and the device state */
	MIG_S_HANDOVER,  /* everything sent; waiting for the destination's READY */
	MIG_S_COMMITTED, /* GO sent: this VM will never run here again */
	MIG_S_COMPLETED, /* the destination runs the guest */
	MIG_S_FAILED,    /* the VM runs on here as before (or stays paused, see error) */
	MIG_S_CANCELLED, /* cancelled by request; the VM runs on here */
	MIG_S_COUNT
};
_Static_assert(MIG_S_COUNT == 9, "a new migration state needs a name, a cancel rule and a test");

const char *mig_state_name(enum mig_state s);
/* Whether s is over (COMPLETED, FAILED, CANCELLED) or never began. */
bool mig_state_final(enum mig_state s);

#define MIG_DEFAULT_DOWNTIME_MS 50
#define MIG_DEFAULT_TIMEOUT_MS 10000
#define MIG_DEFAULT_MAX_PASSES 30
#define MIG_PASS_LOG 32 /* passes whose figures are kept */
#define MIG_TLS_DIR_MAX 4096 /* --tls-dir paths */
#define MIG_CONNECTIONS_MAX 16 /* --connections: RAM striped over 1..16 (migrate/stripes.h) */
/* Convergence: after this many passes in a row that do not shrink what is
 * left by a tenth, the vCPUs are slowed (vmm/throttle.h), first by
 * THROTTLE_FIRST percent, then THROTTLE_STEP more after each such pass. */
#define MIG_STUCK_PASSES 2
#define MIG_THROTTLE_FIRST 20
#define MIG_THROTTLE_STEP 20

/* What happens when the rest still does not fit the downtime target. */
enum mig_converge {
	MIG_CONVERGE_THROTTLE, /* slow the vCPUs, then stop after max_passes whatever remains */
	MIG_CONVERGE_FORCE,    /* do not slow them: stop after max_passes whatever remains */
	MIG_CONVERGE_CANCEL,   /* do not slow them: after max_passes give up, the VM runs on here */
};

struct mig_params {
	char to[256];            /* tcp:HOST:PORT or unix:PATH */
	unsigned downtime_ms;    /* target pause: stop once the rest fits */
	uint64_t bandwidth;      /* bytes/s; 0: as fast as the link goes */
	unsigned timeout_ms;     /* a silent peer fails the migration */
	unsigned max_passes;     /* then the VM stops whatever remains */
	bool copy_disks;         /* send the disks' contents too (no shared storage) */
	char tls_dir[MIG_TLS_DIR_MAX]; /* mutual TLS with the credentials there; "": plain */
	enum mig_converge converge;
	unsigned connections;    /* 1..MIG_CONNECTIONS_MAX; 0: 1 */
};

struct mig_pass_stat {
	uint64_t pages, bytes, ms;
};

struct mig_progress {
	enum mig_state state;
	char to[256];
	unsigned pass;             /* the pass being sent (1 = all of RAM) */
	uint64_t ram_pages;
	uint64_t bytes_sent, pages_sent;
	uint64_t remaining_pages;  /* dirty at the last sync */
	double bandwidth;          /* bytes/s over the last pass */
	double dirty_rate;         /* pages/s dirtied during the last pass */
	uint64_t eta_ms;           /* to the end of the next pass, at that bandwidth */
	uint64_t elapsed_ms;
	uint64_t downtime_ms;      /* COMPLETED: stop to the destination running */
	uint64_t total_ms;         /* COMPLETED or failed: start to end */
	unsigned npasses;
	struct mig_pass_stat passes[MIG_PASS_LOG];
	unsigned throttle_pct;     /* the vCPUs are slowed by this much (0: not) */
	unsigned connections;      /* the migration's (--connections) */
	bool copy_disks;           /* the disks' contents go too: */
	uint64_t disk_bytes;       /* the images' sizes */
	uint64_t disk_sent;        /* bytes of image data sent (holes and zeros go free) */
	uint64_t disk_remaining;   /* bytes of the images still to send, at the last sync */
	char error[320];
};

struct migration {
	struct vm *vm;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool thread_live;
	atomic_bool cancel;
	int fds[MIG_CONNECTIONS_MAX]; /* the connections, for cancel; under lock */
	unsigned nfds;
	bool results_read;         /* COMPLETED results fetched (under lock) */
	uint64_t t0;               /* now_ns() at the start */
	enum mig_state stall;      /* the test interface's migrate-stall (vmm/test_faults.h) */
	struct mig_params params;
	struct mig_progress prog;  /* under lock */
	/* A hand-over whose end is unknown leaves the devices as they were
	 * at the stop (frozen, shadowed) until the operator resumes the VM
	 * here: migrate_thaw() then undoes what the migration did. */
	bool left_paused, left_tracked; /* devices a failed hand-over left so; under lock */
	/* the last hand-over ended unclear: the destination may run the
	 * guest, so nothing may run it here until the operator settles it
	 * (a resume, or a shutdown); under lock */
	bool unresolved;
	struct mig_tls_creds *tls; /* the source's credentials (params.tls_dir), loaded by migrate_start() */
};

/* Starts migrating vm to p->to on a thread of its own; -EBUSY while one
 * runs. On COMPLETED, whoever reads the results (migrate_progress with
 * results: the API) ends the VM's tern; unread, it ends after 5 s. */
int migrate_start(struct vm *vm, const struct mig_params *p, struct err *e);
/* Cancels a migration that has not committed; -ENOENT when none runs,
 * -EBUSY once the hand-over began. Returns once the VM runs again. */
int migrate_cancel(struct vm *vm, struct err *e);
/* A copy of the progress; results true marks COMPLETED results as read. */
void migrate_progress(struct vm *vm, struct mig_progress *out, bool results);
/* Whether a migration is between SETUP and COMMITTED (pause, resume and
 * snapshots are refused then). */
bool migrate_busy(struct vm *vm);
/* Whether the VM was handed over (COMMITTED or COMPLETED): it must never
 * run here again, so resume, pause, snapshots and new migrations are
 * refused. (A hand-over whose DONE was lost ends FAILED and stays paused:
 * the operator may resume it then.) */
bool migrate_handed_over(struct vm *vm);
/* The last migration's hand-over is unresolved (see struct migration):
 * the VM stays paused, its devices frozen, until migrate_thaw(). */
bool migrate_unresolved(struct vm *vm);
/* After a hand-over that ended FAILED (GO or DONE lost), the source's
 * devices stay frozen while it stays paused, so that two copies never
 * move frames; the operator's resume (or snapshot, or next migration)
 * calls this first: the devices run again and the shadowing ends. Nothing
 * otherwise. From the API thread. */
void migrate_thaw(struct vm *vm);
/* Cancels and joins a running migration, frees its state (vm_destroy). */
void migrate_exit(struct vm *vm);

/* The destination's wait (tern run --incoming; docs/migration.md). */
struct mig_incoming {
	const char *addr;
	const char *tls_dir;     /* --tls-dir: mutual TLS only; NULL: plain */
	unsigned timeout_ms;     /* a silent source, once admitted */
	unsigned wait_ms;        /* --incoming-timeout: for a source to be admitted; 0: forever */
	bool expect_vm;          /* --expect-vm: only the VM whose id is vm_id */
	uint8_t vm_id[16];
	uint64_t max_memory;     /* --max-memory; 0: the host's available memory */
	unsigned max_cpus;       /* --max-cpus; 0: tern's limit */
};

/* The destination. Waits on in->addr for a source that it admits (TLS,
 * the VM it expects, a configuration it can host and the devices it was
 * given: migrate/listener.h; others are refused and the wait goes on),
 * completes cfg from it, creates vm, loads everything and waits for GO.
 * Returns 0 with *conn the connection (then: vm_start(),
 * migrate_incoming_done()) or -errno; on failure the guest never ran and
 * vm is destroyed. A readable descriptor of cancel (may be NULL) stops it
 * with -ECANCELED, whether it is still waiting for the source or
 * receiving (the source is told and resumes). */
struct mig_cancel;
struct mig_stream;
int migrate_incoming(const struct mig_incoming *in, struct vm_config *cfg, struct vm *vm,
		     const struct mig_cancel *cancel, struct mig_stream **conn, struct err *e);
/* The records after ACCEPT up to END (RAM, ZERO, DISK, PASS, STATE,
 * ERROR), into vm's RAM and disks and snap->state (tree-checked). Exposed
 * for the fuzzer. */
struct snapshot;
int migrate_recv_stream(struct mig_stream *s, struct vm *vm, struct snapshot *snap, struct err *e);
/* Tells the source the guest runs, and closes the connection (frees it). */
void migrate_incoming_done(struct mig_stream *conn);
/* Tells the source that this destination stops after GO without having
 * started the guest (no vCPU entered KVM_RUN) and never will, so that the
 * source resumes it; closes the connection. Only before vm_start(). */
void migrate_incoming_never_ran(struct mig_stream *conn);
/* Closes the connection without a word (the source then cannot know). */
void migrate_incoming_close(struct mig_stream *conn);

#endif
