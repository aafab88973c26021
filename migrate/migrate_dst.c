/* SPDX-License-Identifier: MIT */
/*
 * migrate/migrate_dst.c - the destination of a live migration: one
 * connection, the configuration checked before any memory is accepted, RAM
 * and device state loaded into a VM that has not run, READY, and the guest
 * started only on the source's GO (migrate.h).
 */
#include "migrate/migrate.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <libfdt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/device.h"
#include "migrate/listener.h"
#include "migrate/snapshot.h"
#include "migrate/stream.h"
#include "migrate/stripes.h"
#include "migrate/tls.h"
#include "migrate/transport.h"
#include "migrate/machine.h"
#include "vmm/vm.h"


/* RAM and ZERO: the run must lie inside guest RAM. RAM pages are read
 * straight into guest memory; a bad CRC then fails the migration before
 * the guest ever runs, so nothing wrong is executed. */
static int recv_pages(struct mig_stream *s, struct vm *vm, const struct rec_header *h, uint32_t crc, struct err *e)
{
	uint64_t npages = vm->mem.size / PAGE;
	struct mig_pages p;
	int r;

	if (h->len < sizeof(p))
		return err_set(e, -EPROTO, "migration page record of %llu bytes is too short", (unsigned long long)h->len);
	if ((r = mig_recv_payload(s, &p, sizeof(p), &crc, e)) < 0)
		return r;
	if (p.rsvd || !p.count || p.count > MIG_RUN_MAX || p.first >= npages || p.count > npages - p.first)
		return err_set(e, -EPROTO, "migration page record for %u pages at page %llu does not fit %llu pages of RAM",
			       p.count, (unsigned long long)p.first, (unsigned long long)npages);
	uint64_t data = h->type == MIG_RAM ? (uint64_t)p.count * PAGE : 0;
	if (h->len != sizeof(p) + data)
		return err_set(e, -EPROTO, "migration page record of %llu bytes for %u pages",
			       (unsigned long long)h->len, p.count);
	if (data && (r = mig_recv_payload(s, vm->mem.hva + p.first * PAGE, data, &crc, e)) < 0)
		return r;
	if ((r = mig_recv_trailer(s, h, crc, e)) < 0)
		return r;
	if (h->type == MIG_ZERO)
		memset(vm->mem.hva + p.first * PAGE, 0, (size_t)p.count * PAGE);
	return 0;
}

/* DISK: a piece of a disk's image, read whole and checked by its CRC
 * before the device writes it (and checks where). */
static int recv_disk(struct mig_stream *s, struct vm *vm, const struct rec_header *h, uint32_t crc, uint8_t *buf,
		     struct err *e)
{
	struct mig_disk d;
	int r;

	if (h->len < sizeof(d))
		return err_set(e, -EPROTO, "migration disk record of %llu bytes is too short", (unsigned long long)h->len);
	if ((r = mig_recv_payload(s, &d, sizeof(d), &crc, e)) < 0)
		return r;
	bool zero = d.flags & MIG_DISK_ZERO;
	uint64_t data = h->len - sizeof(d);
	if ((d.flags & ~MIG_DISK_ZERO) || (zero ? data != 0 : data != d.len || data > DEV_COPY_MAX))
		return err_set(e, -EPROTO, "migration disk record of %llu bytes for %llu bytes (flags %#x)",
			       (unsigned long long)h->len, (unsigned long long)d.len, d.flags);
	if (data && (r = mig_recv_payload(s, buf, data, &crc, e)) < 0)
		return r;
	if ((r = mig_recv_trailer(s, h, crc, e)) < 0)
		return r;
	struct dev_copy_piece p = { .unit = d.disk, .zero = zero, .offset = d.offset, .len = d.len };
	return devices_copy_write(vm, &p, buf, e);
}

/* A record read whole into *out (at most max bytes). */
static int recv_whole(struct mig_stream *s, const struct rec_header *h, uint32_t crc, size_t max, void **out,
		      struct err *e)
{
	void *p;
	int r;

	if (h->len > max)
		return err_set(e, -EPROTO, "migration record (type %u) of %llu bytes exceeds %zu", h->type,
			       (unsigned long long)h->len, max);
	p = malloc(h->len + 1);
	if (!p)
		return err_set(e, -ENOMEM, "out of memory for a migration record");
	((char *)p)[h->len] = '\0';
	r = h->len ? mig_recv_payload(s, p, h->len, &crc, e) : 0;
	if (r == 0)
		r = mig_recv_trailer(s, h, crc, e);
	if (r < 0) {
		free(p);
		return r;
	}
	*out = p;
	return 0;
}

/* Everything after ACCEPT, up to END; buf takes a disk piece. A further
 * connection (snap NULL) carries only pages (migrate/stripes.h). */
static int recv_records(struct mig_stream *s, struct vm *vm, struct snapshot *snap, uint8_t *buf, struct err *e)
{
	for (;;) {
		struct rec_header h;
		void *p = NULL;
		int r = mig_recv_header(s, &h, e);
		if (r < 0)
			return r;
		uint32_t crc = crc32c(&h, sizeof(h), 0);
		if (!snap && h.type != MIG_RAM && h.type != MIG_ZERO && h.type != MIG_END && h.type != MIG_ERROR)
			return err_set(e, -EPROTO, "migration record type %u on a connection that carries only pages",
				       h.type);
		switch (h.type) {
		case MIG_RAM:
		case MIG_ZERO:
			r = recv_pages(s, vm, &h, crc, e);
			break;
		case MIG_DISK:
			r = recv_disk(s, vm, &h, crc, buf, e);
			break;
		case MIG_PASS:
			if (h.len != sizeof(struct mig_pass))
				return err_set(e, -EPROTO, "migration pass record of %llu bytes", (unsigned long long)h.len);
			r = recv_whole(s, &h, crc, sizeof(struct mig_pass), &p, e);
			if (r == 0)
				pr_debug("migration: pass %u received", ((struct mig_pass *)p)->pass);
			free(p);
			break;
		case MIG_STATE:
			if (snap->state)
				return err_set(e, -EPROTO, "migration stream has two device states");
			r = recv_whole(s, &h, crc, SNAP_FDT_MAX, &snap->state, e);
			if (r == 0)
				r = snapshot_check_tree(snap->state, h.len, "device state", e);
			break;
		case MIG_END:
			if (h.len)
				return err_set(e, -EPROTO, "migration end record has a payload");
			r = mig_recv_trailer(s, &h, crc, e);
			if (r == 0 && snap && !snap->state)
				r = err_set(e, -EPROTO, "migration stream ended without the device state");
			return r;
		case MIG_ERROR:
			r = recv_whole(s, &h, crc, MIG_MSG_MAX, &p, e);
			if (r == 0) {
				for (char *c = p; *c; c++)
					*c = (*c < 0x20 || *c == 0x7f) ? '?' : *c;
				r = err_set(e, -ECONNABORTED, "the source gave up the migration: %s", (char *)p);
			}
			free(p);
			return r;
		default:
			return err_set(e, -EPROTO, "unexpected migration record type %u", h.type);
		}
		if (r < 0)
			return r;
	}
}

int migrate_recv_stream(struct mig_stream *s, struct vm *vm, struct snapshot *snap, struct err *e)
{
	uint8_t *buf = malloc(DEV_COPY_MAX);
	int r = buf ? recv_records(s, vm, snap, buf, e) : err_set(e, -ENOMEM, "out of memory for the migration");

	free(buf);
	return r;
}

_Static_assert(MIG_JOINS_MAX == MIG_CONNECTIONS_MAX - 1, "the listener keeps every further connection");

/* One further connection's pages, on a thread of its own. */
struct join_rx {
	struct mig_stream *s, *first_conn;
	struct vm *vm;
	atomic_int *failed;      /* who failed first: 0 none, -1 the first connection, i + 1 join i */
	unsigned index;
	pthread_t thread;
	int r;
	struct err e;
};

static void *join_thread(void *arg)
{
	struct join_rx *j = arg;
	int none = 0;

	sandbox_enter_thread(&j->vm->cfg.sandbox, SANDBOX_MIGRATION, "mig-recv");
	j->r = recv_records(j->s, j->vm, NULL, NULL, &j->e);
	/* the first connection waits for records that will not come now */
	if (j->r < 0 && atomic_compare_exchange_strong(j->failed, &none, (int)j->index + 1))
		shutdown(j->first_conn->fd, SHUT_RD);
	return NULL;
}

/* The stream over the first connection and, at once, the pages over the
 * others; everything has arrived when this returns 0. */
static int recv_all(struct mig_stream *s, struct mig_stream *joins, unsigned njoins, struct vm *vm,
		    struct snapshot *snap, struct err *e)
{
	struct join_rx rx[MIG_JOINS_MAX];
	atomic_int failed = 0;
	unsigned started = 0;
	int none = 0, r = 0;

	for (; started < njoins; started++) {
		rx[started] = (struct join_rx){ .s = &joins[started], .first_conn = s, .vm = vm, .failed = &failed,
						.index = started };
		if ((r = -pthread_create(&rx[started].thread, NULL, join_thread, &rx[started])) < 0) {
			err_errno(e, r, "cannot start a migration connection's thread");
			break;
		}
	}
	if (r == 0)
		r = migrate_recv_stream(s, vm, snap, e);
	if (r < 0 && atomic_compare_exchange_strong(&failed, &none, -1))
		for (unsigned i = 0; i < started; i++)
			shutdown(joins[i].fd, SHUT_RDWR);
	for (unsigned i = 0; i < started; i++)
		pthread_join(rx[i].thread, NULL);
	int who = atomic_load(&failed);
	if (who > 0) {
		*e = rx[who - 1].e;
		return rx[who - 1].r;
	}
	return r;
}

/* A source that copies its disks says so, with each image's size. */
static int read_copy_config(const struct snapshot *snap, bool *copy_disks, uint64_t *sizes, struct err *e)
{
	int plen;
	const fdt32_t *copy = fdt_getprop(snap->config, 0, "copy-disks", &plen);

	*copy_disks = copy && plen == 4 && fdt32_to_cpu(*copy);
	if (!*copy_disks)
		return 0;
	const uint8_t *p = fdt_getprop(snap->config, 0, "disk-sizes", &plen);
	if (!p || plen != (int)(snap->nr_disks * 8))
		return err_set(e, -EPROTO, "migration configuration copies %u disks without their sizes", snap->nr_disks);
	for (unsigned i = 0; i < snap->nr_disks; i++) {
		fdt64_t be; /* properties are only 4-byte aligned */
		memcpy(&be, p + 8 * i, 8);
		sizes[i] = fdt64_to_cpu(be);
	}
	return 0;
}

/* The host's available memory (MemAvailable), in bytes; 0 if unknown. */
static uint64_t host_available_memory(void)
{
	char line[128];
	unsigned long long kb = 0;
	FILE *f = fopen("/proc/meminfo", "re");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return (uint64_t)kb << 10;
}

/* What admit() checks a source's configuration against. */
struct admission {
	const struct mig_incoming *in;
	const struct vm_config *cfg;   /* read only: several sources may be checked at once */
};

/* A configuration this destination can take: the VM it expects, a
 * machine it can host, the devices it was given. Nothing is allocated
 * for the VM before this passes. */
static int check_config(const struct admission *a, const struct snapshot *snap, struct err *e)
{
	char want[UUID_STR_LEN], got[UUID_STR_LEN];
	uint64_t avail = a->in->max_memory ? a->in->max_memory : host_available_memory();

	if (a->in->expect_vm && (!snap->has_vm_id || memcmp(snap->vm_id, a->in->vm_id, sizeof(snap->vm_id))))
		return err_set(e, -EPERM, "the source is VM %s; this destination expects VM %s (--expect-vm)",
			       snap->has_vm_id ? uuid_format(snap->vm_id, got) : "without an id",
			       uuid_format(a->in->vm_id, want));
	if (avail && snap->mem_size > avail)
		return err_set(e, -ENOMEM, "the source VM has %llu MiB of RAM; this destination takes at most %llu MiB "
					   "(%s)", (unsigned long long)(snap->mem_size >> 20),
			       (unsigned long long)(avail >> 20),
			       a->in->max_memory ? "--max-memory" : "the host's available memory");
	if (a->in->max_cpus && snap->nr_cpus > a->in->max_cpus)
		return err_set(e, -EINVAL, "the source VM has %u vCPUs; this destination takes at most %u (--max-cpus)",
			       snap->nr_cpus, a->in->max_cpus);
	if (snap->nr_nets != a->cfg->nr_nets)
		return err_set(e, -EINVAL, "the source VM has %u network devices; this destination was given %u --net",
			       snap->nr_nets, a->cfg->nr_nets);
	if (snap->nr_disks != a->cfg->nr_disks)
		return err_set(e, -EINVAL, "the source VM has %u disks; this destination was given %u --disk (the same "
					   "images on storage both hosts share, or where to copy them)", snap->nr_disks,
			       a->cfg->nr_disks);
	return 0;
}

/* The configuration's "connections" (1 without it) and, for more than
 * one, its "session"; 0 (e set) when they are malformed. */
static unsigned connections_of(const struct snapshot *snap, const uint8_t **session, struct err *e)
{
	int len;
	const fdt32_t *n = fdt_getprop(snap->config, 0, "connections", &len);

	*session = NULL;
	if (!n)
		return 1;
	unsigned count = len == 4 ? fdt32_to_cpu(*n) : 0;
	if (!count || count > MIG_CONNECTIONS_MAX) {
		err_set(e, -EPROTO, "migration configuration asks for %u connections (1 to %u)", count,
			MIG_CONNECTIONS_MAX);
		return 0;
	}
	*session = fdt_getprop(snap->config, 0, "session", &len);
	if (count > 1 && (!*session || len != MIG_SESSION_LEN)) {
		err_set(e, -EPROTO, "migration configuration for %u connections without their session", count);
		return 0;
	}
	return count;
}

/* On a connection's own thread (migrate/listener.h): the stream header
 * and the configuration, read and checked into a struct snapshot; or a
 * JOIN, for a source's further connection. */
static int admit_source(void *ctx, struct mig_stream *s, void **result, struct err *e)
{
	const struct admission *a = ctx;
	struct snapshot *snap = calloc(1, sizeof(*snap));
	struct rec_header h;
	const uint8_t *session;
	void *first = NULL;
	int r;

	if (!snap)
		return err_set(e, -ENOMEM, "out of memory");
	r = mig_recv_hello(s, e);
	if (r == 0)
		r = mig_recv(s, &h, &first, SNAP_CONFIG_MAX, e);
	if (r == 0 && h.type == MIG_JOIN) {
		free(snap);
		if (h.len != sizeof(struct mig_join)) {
			free(first);
			return err_set(e, -EPROTO, "migration join record of %llu bytes", (unsigned long long)h.len);
		}
		*result = first;
		return MIG_ADMIT_JOIN;
	}
	snap->config = first;
	if (r == 0 && h.type != MIG_CONFIG)
		r = err_set(e, -EPROTO, "migration stream starts with record type %u, not the configuration", h.type);
	if (r == 0)
		r = snapshot_check_tree(snap->config, h.len, "configuration", e);
	if (r == 0)
		r = snapshot_parse_config(snap, false, e);
	if (r == 0 && !connections_of(snap, &session, e))
		r = -EPROTO;
	if (r == 0)
		r = check_config(a, snap, e);
	if (r < 0) {
		snapshot_free(snap);
		free(snap);
		return r;
	}
	*result = snap;
	return 0;
}

static void drop_source(void *ctx, void *result, bool join)
{
	(void)ctx;
	if (!join)
		snapshot_free(result);
	free(result);
}

static unsigned source_joins(void *ctx, void *source)
{
	const uint8_t *session;

	(void)ctx;
	return connections_of(source, &session, &(struct err){ { 0 } }) - 1;
}

/* A further connection belongs to the source that named its session. */
static int match_join(void *ctx, void *source, void *join, struct err *e)
{
	const struct mig_join *j = join;
	const uint8_t *session;
	unsigned n = connections_of(source, &session, e);

	(void)ctx;
	if (n < 2 || memcmp(j->session, session, MIG_SESSION_LEN))
		return err_set(e, -EPERM, "the connection joins another migration than the one arriving here");
	if (j->count != n || !j->index || j->index >= n)
		return err_set(e, -EPROTO, "the connection says it is %u of %u; the source opens %u", j->index, j->count,
			       n);
	return (int)j->index;
}

/* cfg takes the machine's shape, and its identity, from the admitted
 * source's configuration. */
static int apply_config(const struct snapshot *snap, struct vm_config *cfg, struct err *e)
{
	int r = read_copy_config(snap, &cfg->incoming_copy_disks, cfg->incoming_disk_size, e);

	if (r < 0)
		return r;
	cfg->nr_cpus = snap->nr_cpus;
	cfg->mem_size = snap->mem_size;
	cfg->test_device = cfg->test_device || snap->test_device;
	if (snap->has_vm_id)
		memcpy(cfg->vm_id, snap->vm_id, sizeof(cfg->vm_id));
	cfg->incoming = true;
	return 0;
}

static int wait_for_source(const struct mig_incoming *in, const struct vm_config *cfg,
			   const struct mig_cancel *cancel, struct mig_stream *s, struct mig_stream *joins,
			   struct snapshot **snap, struct err *e)
{
	struct mig_tls_creds *creds = NULL;
	struct admission a = { .in = in, .cfg = cfg };
	struct mig_wait w = { .addr = in->addr, .wait_ms = in->wait_ms, .cancel = cancel, .admit = admit_source,
			      .drop = drop_source, .joins = source_joins, .match = match_join, .ctx = &a,
			      .sandbox = &cfg->sandbox };
	void *result = NULL;
	int r;

	if (in->tls_dir && (r = mig_tls_creds_load(&creds, in->tls_dir, true, e)) < 0)
		return r;
	w.tls = creds;
	r = mig_wait_for_source(&w, s, &result, joins, e);
	/* the session keeps what it needs of the credentials: none of them
	 * may go while it lives, so they go with it (mig_stream_close) */
	if (r < 0) {
		mig_tls_creds_free(creds);
		return r;
	}
	s->creds = creds;
	*snap = result;
	return 0;
}

int migrate_incoming(const struct mig_incoming *in, struct vm_config *cfg, struct vm *vm,
		     const struct mig_cancel *cancel, struct mig_stream **conn, struct err *e)
{
	struct mig_stream *s = calloc(1, sizeof(*s));
	struct mig_stream joins[MIG_JOINS_MAX];
	struct snapshot *snap = NULL;
	bool made = false, accepted = false;
	unsigned njoins;
	int r;

	if (!s)
		return err_set(e, -ENOMEM, "out of memory");
	s->fd = -1;
	if ((r = wait_for_source(in, cfg, cancel, s, joins, &snap, e)) < 0) {
		free(s);
		return r;
	}
	njoins = source_joins(NULL, snap);
	s->cancel = cancel;
	mig_set_timeout(s->fd, in->timeout_ms);
	for (unsigned i = 0; i < njoins; i++) {
		joins[i].cancel = cancel;
		mig_set_timeout(joins[i].fd, in->timeout_ms);
	}
	if (s->tls) {
		char what[64];
		pr_info("migration: the source is authenticated (%s)", mig_tls_describe(s->tls, what, sizeof(what)));
	}
	if ((r = apply_config(snap, cfg, e)) < 0)
		goto fail;
	if ((r = machine_create(vm, cfg, e)) < 0)
		goto fail;
	made = true;
	if ((r = mig_send(s, MIG_ACCEPT, NULL, 0, e)) < 0)
		goto fail;
	accepted = true;
	for (unsigned i = 0; i < njoins; i++)
		if ((r = mig_send(&joins[i], MIG_ACCEPT, NULL, 0, e)) < 0)
			goto fail;
	/* devices staged, not started: a destination refused or stopped
	 * before GO has sent no frame and announced nothing. A copied disk
	 * is durable before READY: the source lets go of its own on GO */
	if ((r = recv_all(s, joins, njoins, vm, snap, e)) < 0 || (r = devices_copy_done(vm, e)) < 0 ||
	    (r = snapshot_stage(vm, snap, e)) < 0)
		goto fail;
	for (unsigned i = 0; i < njoins; i++)
		mig_stream_close(&joins[i]);
	snapshot_free(snap);
	free(snap);
	snap = NULL;
	if ((r = mig_send(s, MIG_READY, NULL, 0, e)) < 0)
		goto fail_quiet;
	if ((r = mig_expect(s, MIG_GO, "the source's GO", e)) < 0) {
		/* stopped (or the source failed) while waiting for GO: the guest
		 * never runs here. A source that has sent GO by now reads that
		 * instead of DONE and resumes rather than wait for a person. */
		mig_send(s, MIG_NOT_RUN, NULL, 0, &(struct err){ { 0 } });
		goto fail_quiet;
	}
	if ((r = snapshot_start_devices(vm, e)) < 0) {
		/* the guest never runs here: the source resumes it, told why */
		mig_send_msg(s, MIG_NOT_RUN, e->msg);
		goto fail_quiet;
	}
	*conn = s;
	return 0;

fail:
	/* the source learns why (its log, its API status) */
	if (r != -EPIPE && r != -ECONNRESET && r != -ECONNABORTED && r != -ETIMEDOUT)
		mig_send_msg(s, accepted ? MIG_ERROR : MIG_REFUSE, e->msg);
fail_quiet:
	for (unsigned i = 0; i < njoins; i++)
		mig_stream_close(&joins[i]);
	migrate_incoming_close(s);
	if (snap) {
		snapshot_free(snap);
		free(snap);
	}
	if (made) {
		devices_copy_abandon(vm); /* the guest never ran here */
		machine_destroy(vm);
	}
	return r;
}

void migrate_incoming_close(struct mig_stream *s)
{
	if (!s)
		return;
	struct mig_tls_creds *creds = s->creds;
	mig_stream_close(s);
	mig_tls_creds_free(creds);
	free(s);
}

/* The destination's last word after GO, then the connection closes. */
static void last_answer(struct mig_stream *s, uint32_t type, const char *what)
{
	struct err e = { { 0 } };

	s->cancel = NULL;
	if (mig_send(s, type, NULL, 0, &e) < 0)
		pr_warn("migration: the source was not told %s: %s", what, e.msg);
	migrate_incoming_close(s);
}

void migrate_incoming_never_ran(struct mig_stream *s)
{
	last_answer(s, MIG_NOT_RUN, "the guest never ran here");
}

void migrate_incoming_done(struct mig_stream *s)
{
	last_answer(s, MIG_DONE, "the guest runs here (DONE)");
}
