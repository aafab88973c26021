/* SPDX-License-Identifier: MIT */
/*
 * migrate/migrate_src.c - the source of a live migration: pre-copy passes
 * over KVM's dirty log until what is left fits the downtime target, then a
 * stop, the last pages, the device state and the hand-over (migrate.h).
 *
 * A vDPA net device writes guest memory behind KVM's dirty log: from the
 * start of tracking its data queues go through shadow virtqueues that
 * mark what it writes (svq=auto|on), or it stays frozen (svq=off). At the
 * stop it is frozen like the vCPUs; a failed or cancelled migration thaws
 * it and (svq=auto) switches it back to passthrough.
 */
#include "migrate/migrate.h"

#include <errno.h>
#include <libfdt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "devices/device.h"
#include "vmm/dirty.h"
#include "migrate/snapmem.h"
#include "migrate/snapshot.h"
#include "migrate/stream.h"
#include "migrate/stripes.h"
#include "migrate/tls.h"
#include "migrate/transport.h"
#include "vmm/vm.h"

#define RESULTS_GRACE_S 5

static const char *const state_names[MIG_S_COUNT] = {
	[MIG_S_NONE] = "none",	       [MIG_S_SETUP] = "setup",	    [MIG_S_ACTIVE] = "active",
	[MIG_S_STOPPED] = "stopped",   [MIG_S_HANDOVER] = "handover", [MIG_S_COMMITTED] = "committed",
	[MIG_S_COMPLETED] = "completed", [MIG_S_FAILED] = "failed",  [MIG_S_CANCELLED] = "cancelled",
};

const char *mig_state_name(enum mig_state s)
{
	return (unsigned)s < MIG_S_COUNT ? state_names[s] : "unknown";
}

bool mig_state_final(enum mig_state s)
{
	return s == MIG_S_NONE || s == MIG_S_COMPLETED || s == MIG_S_FAILED || s == MIG_S_CANCELLED;
}

/* One migration's working set, on its thread. */
struct outgoing {
	struct migration *m;
	struct vm *vm;
	struct mig_stream s;
	struct dirty_log own;    /* unless vm->lineage already keeps one */
	uint64_t npages, words;
	uint64_t *bm;            /* pages to send */
	uint64_t *scratch;       /* one sync's pages */
	unsigned nconn;          /* connections: s, then joins[0..nconn-2] */
	struct mig_stream joins[MIG_CONNECTIONS_MAX - 1];
	uint8_t session[MIG_SESSION_LEN]; /* names this migration's connections */
	struct mig_sender sender; /* RAM over all of them */
	uint8_t *disk_buf;       /* a disk piece being sent (DEV_COPY_MAX) */
	bool copying;            /* the disks' contents go too */
	uint64_t disk_sizes[VM_MAX_DISKS];
	unsigned ndisks;
	bool tracked;            /* the devices track dirty pages for us */
	bool devices_paused;     /* and were paused at the stop */
	bool paused;             /* we paused the VM (it ran when the stop came) */
	uint64_t t0, t_stop;
};

/* The test interface's migrate-stall=STATE (vmm/test_faults.h): the
 * migration waits on entering STATE until it is cancelled or STALL_MS
 * pass, so that tests can act in every state. */
#define STALL_MS 3000

static void stall(struct outgoing *job, enum mig_state st)
{
	struct timespec dl;

	if (job->m->stall != st)
		return;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += STALL_MS / 1000;
	pthread_mutex_lock(&job->m->lock);
	while (!atomic_load(&job->m->cancel))
		if (pthread_cond_timedwait(&job->m->cond, &job->m->lock, &dl))
			break;
	pthread_mutex_unlock(&job->m->lock);
}

static void set_state(struct outgoing *job, enum mig_state st)
{
	pthread_mutex_lock(&job->m->lock);
	job->m->prog.state = st;
	pthread_mutex_unlock(&job->m->lock);
	stall(job, st);
}

static int cancelled(struct outgoing *job, struct err *e)
{
	return atomic_load(&job->m->cancel) ? err_set(e, -ECANCELED, "migration cancelled") : 0;
}

/* A VM that is ending (its guest powered off or reset it, or tern was
 * told to stop) is not handed over: the destination would run what its
 * guest or operator ended. vm_pause() also returns early for it, with
 * vCPUs perhaps still in KVM_RUN, so its state cannot be trusted. */
static int vm_leaving(struct outgoing *job, struct err *e)
{
	if (atomic_load(&job->vm->exit_requested) || atomic_load(&job->vm->stopping))
		return err_set(e, -ESHUTDOWN, "the VM is stopping (its guest ended it, or tern was told to stop): it "
					      "is not handed over");
	return 0;
}

/* Merges the pages dirtied since the last sync into bm (and, with
 * --track-dirty, into the lineage's pending pages, which a later diff
 * snapshot must still see if this migration fails). */
/* A device whose writes escaped the log since tracking began (its driver
 * restarted it) fails the migration: the destination's memory could lack
 * what it wrote. Checked at every sync, the last one after the stop. */
static int devices_logged(struct outgoing *job, struct err *e)
{
	return job->tracked ? devices_unlogged(job->vm, e) : 0;
}

static int64_t sync_dirty(struct outgoing *job, bool to_send, struct err *e)
{
	struct snap_lineage *l = job->vm->lineage;
	int64_t n = 0;

	if (devices_logged(job, e) < 0)
		return -EIO;
	memset(job->scratch, 0, job->words * 8);
	if (dirty_sync(l ? &l->log : &job->own, job->scratch, e) < 0)
		return -EIO;
	for (uint64_t w = 0; w < job->words; w++) {
		if (l)
			l->pending[w] |= job->scratch[w];
		if (to_send)
			job->bm[w] |= job->scratch[w];
		n += __builtin_popcountll(job->bm[w]);
	}
	return n;
}

/* Over all the connections, framing included. */
static uint64_t bytes_sent(const struct outgoing *job)
{
	return job->sender.n ? mig_sender_bytes(&job->sender) : job->s.sent;
}

static uint64_t disk_pending(struct outgoing *job)
{
	return job->copying ? devices_copy_pending(job->vm) : 0;
}

/* Sends every disk piece pending in this pass; *data counts its bytes. */
static int send_disk_pass(struct outgoing *job, uint64_t *data, struct err *e)
{
	struct dev_copy_piece p;
	int r;

	*data = 0;
	while (job->copying && (r = devices_copy_next(job->vm, &p, job->disk_buf, e)) != 0) {
		if (r < 0)
			return r;
		struct mig_disk h = { .disk = p.unit, .flags = p.zero ? MIG_DISK_ZERO : 0, .offset = p.offset,
				      .len = p.len };
		struct iovec v[2] = { { &h, sizeof(h) }, { job->disk_buf, p.zero ? 0 : p.len } };
		if ((r = mig_sendv(&job->s, MIG_DISK, v, p.zero ? 1 : 2, e)) < 0 || (r = cancelled(job, e)) < 0)
			return r;
		*data += p.zero ? 0 : p.len;
	}
	return 0;
}

/* One pass: send RAM (and the disks), mark its end, record its figures. */
static int pass(struct outgoing *job, unsigned no, bool first, uint64_t remaining, struct err *e)
{
	uint64_t t = now_ns(), b = mig_sender_bytes(&job->sender), pages, disk = 0;
	struct mig_pass rec = { .pass = no };
	int r = mig_sender_pass(&job->sender, first, &pages, e);

	if (r == 0)
		r = send_disk_pass(job, &disk, e);

	rec.pages = pages;
	rec.remaining = remaining;
	if (r == 0)
		r = mig_send(&job->s, MIG_PASS, &rec, sizeof(rec), e);
	if (r < 0)
		return r;
	uint64_t ms = (now_ns() - t) / 1000000u, bytes = mig_sender_bytes(&job->sender) - b;
	uint64_t disk_left = disk_pending(job);
	pthread_mutex_lock(&job->m->lock);
	struct mig_progress *p = &job->m->prog;
	if (p->npasses < MIG_PASS_LOG)
		p->passes[p->npasses] = (struct mig_pass_stat){ pages, bytes, ms };
	p->npasses++;
	p->pages_sent += pages;
	p->disk_sent += disk;
	p->bytes_sent = mig_sender_bytes(&job->sender);
	if (ms)
		p->bandwidth = (double)bytes * 1000.0 / (double)ms;
	p->remaining_pages = remaining > pages ? remaining - pages : 0;
	p->disk_remaining = disk_left;
	pthread_mutex_unlock(&job->m->lock);
	return 0;
}

/* What the next pass has to send: the dirty pages and the disks' pending
 * chunks (holes among them go free: an estimate from above). */
static double pending_bytes(uint64_t dirty, uint64_t disk)
{
	return (double)dirty * PAGE + (double)disk;
}

static void progress_sync(struct outgoing *job, unsigned no, uint64_t dirty, uint64_t since_ns)
{
	uint64_t disk = disk_pending(job);

	pthread_mutex_lock(&job->m->lock);
	struct mig_progress *p = &job->m->prog;
	p->pass = no;
	p->remaining_pages = dirty;
	p->disk_remaining = disk;
	if (since_ns)
		p->dirty_rate = (double)dirty * 1e9 / (double)since_ns;
	p->eta_ms = p->bandwidth > 0 ? (uint64_t)(pending_bytes(dirty, disk) * 1000.0 / p->bandwidth) : 0;
	p->elapsed_ms = (now_ns() - job->t0) / 1000000u;
	p->bytes_sent = bytes_sent(job);
	pthread_mutex_unlock(&job->m->lock);
}

/* A migration that copies the disks tells the destination so in its
 * configuration, with each image's size, so that it creates (or checks)
 * and locks its images before the first piece arrives. */
static int add_copy_config(struct outgoing *job, void *cfg, struct err *e)
{
	fdt64_t sizes[VM_MAX_DISKS];
	int r = fdt_open_into(cfg, cfg, SNAP_CONFIG_MAX);

	for (unsigned i = 0; i < job->ndisks; i++)
		sizes[i] = cpu_to_fdt64(job->disk_sizes[i]);
	if (!r)
		r = fdt_setprop_u32(cfg, 0, "copy-disks", 1);
	if (!r)
		r = fdt_setprop(cfg, 0, "disk-sizes", sizes, (int)(job->ndisks * sizeof(sizes[0])));
	if (!r)
		r = fdt_pack(cfg);
	return r < 0 ? err_set(e, -ENOBUFS, "migration configuration: %s", fdt_strerror(r)) : 0;
}

/* A migration over several connections names them in its configuration:
 * how many, and the random session each of the others joins. */
static int add_connections_config(struct outgoing *job, void *cfg, struct err *e)
{
	int r = fdt_open_into(cfg, cfg, SNAP_CONFIG_MAX);

	if (getrandom(job->session, sizeof(job->session), 0) != (ssize_t)sizeof(job->session))
		return err_errno(e, -errno, "getrandom");
	if (!r)
		r = fdt_setprop_u32(cfg, 0, "connections", job->nconn);
	if (!r)
		r = fdt_setprop(cfg, 0, "session", job->session, sizeof(job->session));
	if (!r)
		r = fdt_pack(cfg);
	return r < 0 ? err_set(e, -ENOBUFS, "migration configuration: %s", fdt_strerror(r)) : 0;
}

/* Connects s to the destination (with TLS if asked) and registers its
 * descriptor for a cancel to shut down. */
static int open_connection(struct outgoing *job, struct mig_stream *s, struct err *e)
{
	struct migration *m = job->m;
	uint64_t limit = m->params.bandwidth ? (m->params.bandwidth + job->nconn - 1) / job->nconn : 0;
	int fd = mig_connect(m->params.to, m->params.timeout_ms, e);

	if (fd < 0)
		return fd;
	mig_set_timeout(fd, m->params.timeout_ms);
	pthread_mutex_lock(&m->lock);
	m->fds[m->nfds++] = fd;
	pthread_mutex_unlock(&m->lock);
	*s = (struct mig_stream){ .fd = fd, .limit = limit };
	if (!m->tls)
		return 0;
	char host[256], what[64];
	mig_addr_host(m->params.to, host, sizeof(host));
	int r = mig_tls_handshake(&s->tls, fd, m->tls, host, m->params.timeout_ms, e);
	if (r == 0 && s == &job->s)
		pr_info("migration: the destination %s is authenticated (%s)", host,
			mig_tls_describe(s->tls, what, sizeof(what)));
	return r;
}

/* The connections after the first, each joining this migration's session
 * (after the configuration, so that the destination knows it). */
static int open_joins(struct outgoing *job, struct err *e)
{
	for (unsigned i = 1; i < job->nconn; i++) {
		struct mig_stream *s = &job->joins[i - 1];
		struct mig_join j = { .index = i, .count = job->nconn };
		int r;
		memcpy(j.session, job->session, sizeof(j.session));
		s->fd = -1;
		if ((r = open_connection(job, s, e)) < 0 || (r = mig_send_hello(s, e)) < 0 ||
		    (r = mig_send(s, MIG_JOIN, &j, sizeof(j), e)) < 0)
			return r;
	}
	return 0;
}

static int handshake(struct outgoing *job, struct err *e)
{
	void *cfg = malloc(SNAP_CONFIG_MAX);
	int r;

	if (!cfg)
		return err_set(e, -ENOMEM, "out of memory");
	r = snapshot_build_config(job->vm, NULL, NULL, cfg, SNAP_CONFIG_MAX, e);
	if (r == 0 && job->copying)
		r = add_copy_config(job, cfg, e);
	if (r == 0 && job->nconn > 1)
		r = add_connections_config(job, cfg, e);
	if (r == 0)
		r = mig_send_hello(&job->s, e);
	if (r == 0)
		r = mig_send(&job->s, MIG_CONFIG, cfg, fdt_totalsize(cfg), e);
	free(cfg);
	/* (the destination answers the first connection once all are here) */
	if (r == 0)
		r = open_joins(job, e);
	if (r == 0 && !job->s.tls) {
		/* a TLS destination answers a plain source with an alert record */
		uint8_t b;
		if (recv(job->s.fd, &b, 1, MSG_PEEK) == 1 && (b == 0x15 || b == 0x16))
			return err_set(e, -EPROTO, "the destination takes only TLS (tern run --tls-dir): migrate with "
						   "--tls-dir");
	}
	if (r == 0)
		r = mig_expect(&job->s, MIG_ACCEPT, "the destination's answer to the configuration", e);
	for (unsigned i = 1; r == 0 && i < job->nconn; i++)
		r = mig_expect(&job->joins[i - 1], MIG_ACCEPT, "the destination's answer to a connection's JOIN", e);
	if (r == 0) {
		struct mig_stream *streams[MIG_CONNECTIONS_MAX] = { &job->s };
		for (unsigned i = 1; i < job->nconn; i++)
			streams[i] = &job->joins[i - 1];
		r = mig_sender_init(&job->sender, streams, job->nconn, job->vm->mem.hva, job->npages, job->bm,
				    &job->m->cancel, &job->vm->cfg.sandbox, e);
	}
	return r;
}

/* After MIG_STUCK_PASSES passes in a row that left at least nine tenths of
 * what the one before left, slows the vCPUs one more step (unless told not
 * to, --converge force|cancel). */
static int converge(struct outgoing *job, uint64_t dirty, uint64_t *last, unsigned *stuck, struct err *e)
{
	if (job->m->params.converge != MIG_CONVERGE_THROTTLE)
		return 0;
	*stuck = *last != UINT64_MAX && dirty * 10 >= *last * 9 ? *stuck + 1 : 0;
	*last = dirty;
	if (*stuck < MIG_STUCK_PASSES)
		return 0;
	unsigned now = atomic_load(&job->vm->throttle.pct);
	unsigned pct = now ? now + MIG_THROTTLE_STEP : MIG_THROTTLE_FIRST;
	if (pct > THROTTLE_MAX)
		pct = THROTTLE_MAX;
	if (pct == now)
		return 0;
	int r = vm_throttle_set(job->vm, pct, e);
	if (r < 0)
		return r;
	pr_info("migration: the guest dirties memory faster than it is sent: its vCPUs are slowed by %u%%", pct);
	pthread_mutex_lock(&job->m->lock);
	job->m->prog.throttle_pct = pct;
	pthread_mutex_unlock(&job->m->lock);
	return 0;
}

/* The vCPUs at full speed again. */
static void unthrottle(struct outgoing *job)
{
	vm_throttle_set(job->vm, 0, &(struct err){ { 0 } });
	pthread_mutex_lock(&job->m->lock);
	job->m->prog.throttle_pct = 0;
	pthread_mutex_unlock(&job->m->lock);
}

/* Everything up to and including READY; the VM is paused at the end. */
static int precopy(struct outgoing *job, struct err *e)
{
	const struct mig_params *p = &job->m->params;
	uint64_t last_sync = now_ns(), last_dirty = UINT64_MAX;
	int64_t dirty;
	unsigned no = 1, stuck = 0;
	int r;

	/* pass 1: all of RAM that was ever written (memfd holes read as zero,
	 * and reading them would allocate them). The log is re-armed first: a
	 * page written after that is logged for pass 2, one written before is
	 * data by the time the extents are read. */
	if ((dirty = sync_dirty(job, false, e)) < 0)
		return (int)dirty;
	for (uint64_t off = 0, data, hole; mem_next_data(&job->vm->mem, off, &data, &hole); off = hole)
		for (uint64_t pg = data / PAGE; pg < (hole + PAGE - 1) / PAGE && pg < job->npages; pg++)
			job->bm[pg / 64] |= 1ull << (pg % 64);
	dirty = 0;
	for (uint64_t w = 0; w < job->words; w++)
		dirty += __builtin_popcountll(job->bm[w]);
	set_state(job, MIG_S_ACTIVE);
	progress_sync(job, no, (uint64_t)dirty, 0);
	if ((r = pass(job, no, true, (uint64_t)dirty, e)) < 0)
		return r;
	for (;;) {
		uint64_t now = now_ns();
		if ((dirty = sync_dirty(job, true, e)) < 0)
			return (int)dirty;
		progress_sync(job, no + 1, (uint64_t)dirty, now - last_sync);
		last_sync = now;
		pthread_mutex_lock(&job->m->lock);
		double bw = job->m->prog.bandwidth;
		pthread_mutex_unlock(&job->m->lock);
		/* stop when the rest fits the target (an unmeasurably quick pass
		 * counts as fitting), or when passes stop helping */
		double need_ms = bw > 0 ? pending_bytes((uint64_t)dirty, disk_pending(job)) * 1000.0 / bw : 0;
		if (need_ms <= p->downtime_ms)
			break;
		if (no >= p->max_passes) {
			if (p->converge == MIG_CONVERGE_CANCEL)
				return err_set(e, -ETIMEDOUT, "the migration did not converge in %u passes (%.0f ms of data "
							      "left at %.1f MiB/s, target %u ms; --converge cancel): the VM "
							      "runs on here", no, need_ms, bw / (1 << 20), p->downtime_ms);
			break;
		}
		if ((r = converge(job, (uint64_t)dirty, &last_dirty, &stuck, e)) < 0)
			return r;
		if ((r = cancelled(job, e)) < 0 || (r = pass(job, ++no, false, (uint64_t)dirty, e)) < 0)
			return r;
	}

	set_state(job, MIG_S_STOPPED);
	job->t_stop = now_ns();
	/* a VM paused before (by its operator, or by a hand-over whose last
	 * message was lost) is not ours to resume if this migration fails */
	job->paused = !vm_is_paused(job->vm);
	vm_pause(job->vm);
	if ((r = vm_leaving(job, e)) < 0)
		return r;
	/* the devices stop writing too; what their shadow queues return to
	 * the guest now is marked before the last sync */
	if ((r = devices_pause(job->vm, e)) < 0)
		return r;
	job->devices_paused = true;
	if ((dirty = sync_dirty(job, true, e)) < 0)
		return (int)dirty;
	progress_sync(job, ++no, (uint64_t)dirty, 0);
	if ((r = pass(job, no, false, (uint64_t)dirty, e)) < 0)
		return r;

	void *st = snapshot_state_tree(job->vm, e);
	if (!st)
		return -ENOSPC;
	/* each other connection has carried its last page */
	for (unsigned i = 1; i < job->nconn && r == 0; i++)
		r = mig_send(&job->joins[i - 1], MIG_END, NULL, 0, e);
	if (r == 0)
		r = mig_send(&job->s, MIG_STATE, st, fdt_totalsize(st), e);
	free(st);
	if (r == 0)
		r = mig_send(&job->s, MIG_END, NULL, 0, e);
	if (r < 0)
		return r;
	set_state(job, MIG_S_HANDOVER);
	return mig_expect(&job->s, MIG_READY, "the destination's READY", e);
}

static void finish(struct outgoing *job, enum mig_state st, const struct err *e)
{
	pthread_mutex_lock(&job->m->lock);
	struct mig_progress *p = &job->m->prog;
	p->state = st;
	p->bytes_sent = bytes_sent(job);
	p->total_ms = p->elapsed_ms = (now_ns() - job->t0) / 1000000u;
	if (e && e->msg[0])
		snprintf(p->error, sizeof(p->error), "%s", e->msg);
	for (unsigned i = 0; i < job->m->nfds; i++)
		close(job->m->fds[i]);
	job->m->nfds = 0;
	pthread_cond_broadcast(&job->m->cond);
	pthread_mutex_unlock(&job->m->lock);
}

/* Before the commit: the VM goes back to how it was. */
/* The devices back to how they were before the migration: thawed if
 * paused, no longer tracking for it. */
static void roll_back(struct outgoing *job)
{
	unthrottle(job);
	if (job->devices_paused)
		devices_thaw(job->vm);
	if (job->tracked)
		devices_track_end(job->vm);
	job->devices_paused = job->tracked = false;
	if (job->paused)
		vm_resume(job->vm);
	job->paused = false;
}

/* The log the devices' shadow queues mark (the one sync_dirty() reads). */
static struct dirty_log *the_log(struct outgoing *job)
{
	return job->vm->lineage ? &job->vm->lineage->log : &job->own;
}

static void *migration_thread(void *arg)
{
	struct migration *m = arg;
	struct outgoing job = { .m = m, .vm = m->vm, .s.fd = -1 };
	struct err e = { { 0 } };
	bool own_log = false;
	int r;

	sandbox_enter_thread(&m->vm->cfg.sandbox, SANDBOX_MIGRATION, "migration");
	job.t0 = now_ns();
	job.npages = job.vm->mem.size / PAGE;
	job.words = (job.npages + 63) / 64;
	job.bm = calloc(job.words, 8);
	job.scratch = calloc(job.words, 8);
	job.nconn = m->params.connections ? m->params.connections : 1;
	job.copying = m->params.copy_disks && job.vm->cfg.nr_disks;
	job.disk_buf = job.copying ? malloc(DEV_COPY_MAX) : NULL;
	if (!job.bm || !job.scratch || (job.copying && !job.disk_buf)) {
		r = err_set(&e, -ENOMEM, "out of memory for the migration");
		goto fail;
	}
	if ((r = open_connection(&job, &job.s, &e)) < 0)
		goto fail;
	/* from here every write to a disk is remembered, to be sent again */
	if (job.copying) {
		if ((r = devices_copy_begin(job.vm, job.disk_sizes, &job.ndisks, &e)) < 0) {
			job.copying = false;
			goto fail;
		}
		pthread_mutex_lock(&m->lock);
		for (unsigned i = 0; i < job.ndisks; i++)
			m->prog.disk_bytes += job.disk_sizes[i];
		pthread_mutex_unlock(&m->lock);
	}
	stall(&job, MIG_S_SETUP);
	if ((r = cancelled(&job, &e)) < 0 || (r = handshake(&job, &e)) < 0)
		goto fail;
	if (!job.vm->lineage) {
		if ((r = dirty_start(&job.own, job.vm, &e)) < 0)
			goto fail;
		own_log = true;
	}
	/* devices write guest memory behind KVM's dirty log: shadow them */
	if ((r = devices_track_begin(job.vm, the_log(&job), &e)) < 0)
		goto fail;
	job.tracked = true;
	if ((r = precopy(&job, &e)) < 0)
		goto fail;

	/* the point of no return: from here this VM never runs again */
	pthread_mutex_lock(&m->lock);
	if (atomic_load(&m->cancel)) {
		pthread_mutex_unlock(&m->lock);
		r = err_set(&e, -ECANCELED, "migration cancelled");
		goto fail;
	}
	if ((r = vm_leaving(&job, &e)) < 0) {
		pthread_mutex_unlock(&m->lock);
		goto fail;
	}
	m->prog.state = MIG_S_COMMITTED;
	pthread_mutex_unlock(&m->lock);
	stall(&job, MIG_S_COMMITTED);
	/* the destination's disks take their images' locks when it starts:
	 * ours go now (a failed hand-over's thaw takes them back) */
	devices_let_go(job.vm);
	r = mig_send(&job.s, MIG_GO, NULL, 0, &e);
	if (r == 0)
		r = mig_expect(&job.s, MIG_DONE, "the destination's DONE", &e);
	if (r == -ESRCH) {
		/* the destination never started the guest and never will: this
		 * copy is the only one, and resumes as before the commit */
		roll_back(&job);
		finish(&job, MIG_S_FAILED, &e);
		goto out;
	}
	if (r < 0) {
		struct err e2 = { { 0 } };
		err_set(&e2, r, "the destination may or may not run the guest (%s): this VM stays paused, so that "
				"two copies never run; check the destination, then resume or shut down this one",
			e.msg);
		/* its devices stay frozen with it, until migrate_thaw() */
		pthread_mutex_lock(&m->lock);
		m->left_paused = job.devices_paused;
		m->left_tracked = job.tracked;
		m->unresolved = true;
		pthread_mutex_unlock(&m->lock);
		finish(&job, MIG_S_FAILED, &e2);
		goto out;
	}
	pthread_mutex_lock(&m->lock);
	m->prog.downtime_ms = (now_ns() - job.t_stop) / 1000000u;
	pthread_mutex_unlock(&m->lock);
	finish(&job, MIG_S_COMPLETED, NULL);
	/* let the caller read the results, then this tern exits */
	pthread_mutex_lock(&m->lock);
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += RESULTS_GRACE_S;
	while (!m->results_read && !atomic_load(&m->cancel))
		if (pthread_cond_timedwait(&m->cond, &m->lock, &dl))
			break;
	bool read = m->results_read;
	pthread_mutex_unlock(&m->lock);
	/* a reader's API call ends the process once its reply is out */
	if (!read)
		vm_request_exit(job.vm, VM_EXIT_OK, "migrated to %s", m->params.to);
	goto out;

fail:
	/* a cancel shuts the connection down: what broke is the cancel */
	if (atomic_load(&m->cancel) && r != -ECANCELED) {
		memset(&e, 0, sizeof(e));
		r = err_set(&e, -ECANCELED, "migration cancelled");
	}
	/* (not into a TLS connection whose handshake failed: its alert said it) */
	if (job.s.fd >= 0 && (!m->tls || job.s.tls) && r != -EPIPE && r != -ECONNRESET && r != -ECONNREFUSED &&
	    r != -ECONNABORTED)
		mig_send_msg(&job.s, MIG_ERROR, e.msg[0] ? e.msg : strerror(-r));
	roll_back(&job);
	finish(&job, r == -ECANCELED ? MIG_S_CANCELLED : MIG_S_FAILED, &e);
out:
	/* after a hand-over the devices are frozen; either way nothing may
	 * mark the log once it is gone */
	if (own_log)
		devices_forget_log(job.vm);
	if (own_log)
		dirty_stop(&job.own);
	if (job.copying)
		devices_copy_end(job.vm);
	/* a paused or handed-over VM: its throttle thread goes (the figure
	 * stays in the results) */
	vm_throttle_set(job.vm, 0, &(struct err){ { 0 } });
	mig_sender_destroy(&job.sender);
	mig_tls_free(job.s.tls);
	for (unsigned i = 0; i + 1 < job.nconn; i++)
		mig_tls_free(job.joins[i].tls);
	free(job.disk_buf);
	free(job.bm);
	free(job.scratch);
	return NULL;
}

int migrate_start(struct vm *vm, const struct mig_params *p, struct err *e)
{
	struct migration *m = vm->migration;
	int r;

	if (mig_addr_check(p->to, e) < 0)
		return -EINVAL;
	if (!m) {
		m = calloc(1, sizeof(*m));
		if (!m)
			return err_set(e, -ENOMEM, "out of memory");
		m->vm = vm;
		pthread_mutex_init(&m->lock, NULL);
		pthread_cond_init(&m->cond, NULL);
		vm->migration = m;
	}
	pthread_mutex_lock(&m->lock);
	if (m->prog.state == MIG_S_COMPLETED) {
		pthread_mutex_unlock(&m->lock);
		return err_set(e, -EBUSY, "this VM was migrated to %s: it runs there now", m->prog.to);
	}
	if (!mig_state_final(m->prog.state)) {
		pthread_mutex_unlock(&m->lock);
		return err_set(e, -EBUSY, "a migration is in progress (%s)", mig_state_name(m->prog.state));
	}
	if (m->unresolved) {
		pthread_mutex_unlock(&m->lock);
		return err_set(e, -EBUSY, "the last migration's hand-over is unresolved: its destination may run this "
					  "guest; check it, then resume this VM (it is the one that runs) or shut it down");
	}
	pthread_mutex_unlock(&m->lock);
	migrate_thaw(vm); /* joins a finished one */
	mig_tls_creds_free(m->tls);
	m->tls = NULL;
	if (p->tls_dir[0]) {
		if (strncmp(p->to, "tcp:", 4))
			return err_set(e, -EINVAL, "TLS is for tcp: migrations (a unix: socket is local, guarded by its "
						   "file's permissions)");
		if ((r = mig_tls_creds_load(&m->tls, p->tls_dir, false, e)) < 0)
			return r;
	}
	m->params = *p;
	m->t0 = now_ns();
	m->stall = MIG_S_NONE;
	for (int i = 0; vm->cfg.faults.migrate_stall[0] && i < MIG_S_COUNT; i++)
		if (!strcmp(vm->cfg.faults.migrate_stall, mig_state_name((enum mig_state)i)))
			m->stall = (enum mig_state)i;
	m->results_read = false;
	atomic_store(&m->cancel, false);
	memset(&m->prog, 0, sizeof(m->prog));
	m->prog.state = MIG_S_SETUP;
	m->prog.ram_pages = vm->mem.size / PAGE;
	m->prog.copy_disks = p->copy_disks && vm->cfg.nr_disks;
	m->prog.connections = p->connections ? p->connections : 1;
	snprintf(m->prog.to, sizeof(m->prog.to), "%s", p->to);
	r = -pthread_create(&m->thread, NULL, migration_thread, m);
	if (r < 0) {
		m->prog.state = MIG_S_FAILED;
		return err_errno(e, r, "cannot start the migration thread");
	}
	m->thread_live = true;
	return 0;
}

/* Under m->lock. */
static void shut_connections(struct migration *m)
{
	for (unsigned i = 0; i < m->nfds; i++)
		shutdown(m->fds[i], SHUT_RDWR);
}

int migrate_cancel(struct vm *vm, struct err *e)
{
	struct migration *m = vm->migration;

	if (!m)
		return err_set(e, -ENOENT, "no migration is in progress");
	pthread_mutex_lock(&m->lock);
	enum mig_state st = m->prog.state;
	if (mig_state_final(st)) {
		pthread_mutex_unlock(&m->lock);
		return err_set(e, -ENOENT, "no migration is in progress (the last one %s)", mig_state_name(st));
	}
	if (st == MIG_S_COMMITTED) {
		pthread_mutex_unlock(&m->lock);
		return err_set(e, -EBUSY, "too late to cancel: the hand-over to the destination has begun");
	}
	atomic_store(&m->cancel, true);
	/* wakes a send or receive that waits on the peer, and a stall */
	shut_connections(m);
	pthread_cond_broadcast(&m->cond);
	while (!mig_state_final(m->prog.state) && m->prog.state != MIG_S_COMMITTED)
		pthread_cond_wait(&m->cond, &m->lock);
	st = m->prog.state;
	pthread_mutex_unlock(&m->lock);
	if (st == MIG_S_COMPLETED || st == MIG_S_COMMITTED)
		return err_set(e, -EBUSY, "too late to cancel: the hand-over to the destination has begun");
	return 0;
}

void migrate_progress(struct vm *vm, struct mig_progress *out, bool results)
{
	struct migration *m = vm->migration;

	if (!m) {
		memset(out, 0, sizeof(*out));
		return;
	}
	pthread_mutex_lock(&m->lock);
	*out = m->prog;
	if (!mig_state_final(out->state))
		out->elapsed_ms = (now_ns() - m->t0) / 1000000u;
	if (results && out->state == MIG_S_COMPLETED) {
		m->results_read = true;
		pthread_cond_broadcast(&m->cond);
	}
	pthread_mutex_unlock(&m->lock);
}

bool migrate_busy(struct vm *vm)
{
	struct migration *m = vm->migration;
	bool busy;

	if (!m)
		return false;
	pthread_mutex_lock(&m->lock);
	busy = !mig_state_final(m->prog.state);
	pthread_mutex_unlock(&m->lock);
	return busy;
}

void migrate_thaw(struct vm *vm)
{
	struct migration *m = vm->migration;

	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	bool final = mig_state_final(m->prog.state);
	pthread_mutex_unlock(&m->lock);
	if (!final)
		return;
	/* the thread may still be letting go of its dirty log */
	if (m->thread_live)
		pthread_join(m->thread, NULL);
	m->thread_live = false;
	pthread_mutex_lock(&m->lock);
	bool paused = m->left_paused, tracked = m->left_tracked;
	m->left_paused = m->left_tracked = false;
	m->unresolved = false;
	pthread_mutex_unlock(&m->lock);
	if (paused || tracked)
		pr_info("migration: the devices the failed hand-over left frozen run again");
	if (paused)
		devices_thaw(vm);
	if (tracked)
		devices_track_end(vm);
}

bool migrate_unresolved(struct vm *vm)
{
	struct migration *m = vm->migration;
	bool u;

	if (!m)
		return false;
	pthread_mutex_lock(&m->lock);
	u = m->unresolved;
	pthread_mutex_unlock(&m->lock);
	return u;
}

bool migrate_handed_over(struct vm *vm)
{
	struct migration *m = vm->migration;
	bool gone;

	if (!m)
		return false;
	pthread_mutex_lock(&m->lock);
	gone = m->prog.state == MIG_S_COMMITTED || m->prog.state == MIG_S_COMPLETED;
	pthread_mutex_unlock(&m->lock);
	return gone;
}

void migrate_exit(struct vm *vm)
{
	struct migration *m = vm->migration;

	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	atomic_store(&m->cancel, true);
	shut_connections(m);
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	if (m->thread_live)
		pthread_join(m->thread, NULL);
	pthread_mutex_destroy(&m->lock);
	pthread_cond_destroy(&m->cond);
	mig_tls_creds_free(m->tls);
	free(m);
	vm->migration = NULL;
}
