/* SPDX-License-Identifier: MIT */
/*
 * migrate/migrate_dst.c - the destination of a live migration: one
 * connection, the configuration checked before any memory is accepted, RAM
 * and device state loaded into a VM that has not run, READY, and the guest
 * started only on the source's GO (migrate.h).
 */
#include "migrate/migrate.h"

#include <errno.h>
#include <libfdt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/device.h"
#include "migrate/snapshot.h"
#include "migrate/stream.h"
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

/* Everything after ACCEPT, up to END; buf takes a disk piece. */
static int recv_records(struct mig_stream *s, struct vm *vm, struct snapshot *snap, uint8_t *buf, struct err *e)
{
	for (;;) {
		struct rec_header h;
		void *p = NULL;
		int r = mig_recv_header(s, &h, e);
		if (r < 0)
			return r;
		uint32_t crc = crc32c(&h, sizeof(h), 0);
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
			if (r == 0 && !snap->state)
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

/* A source that copies its disks says so, with each image's size. */
static int recv_copy_config(const struct snapshot *snap, struct vm_config *cfg, struct err *e)
{
	int plen;
	const fdt32_t *copy = fdt_getprop(snap->config, 0, "copy-disks", &plen);

	cfg->incoming_copy_disks = copy && plen == 4 && fdt32_to_cpu(*copy);
	if (!cfg->incoming_copy_disks)
		return 0;
	const uint8_t *sizes = fdt_getprop(snap->config, 0, "disk-sizes", &plen);
	if (!sizes || plen != (int)(snap->nr_disks * 8))
		return err_set(e, -EPROTO, "migration configuration copies %u disks without their sizes", snap->nr_disks);
	for (unsigned i = 0; i < snap->nr_disks; i++) {
		fdt64_t be; /* properties are only 4-byte aligned */
		memcpy(&be, sizes + 8 * i, 8);
		cfg->incoming_disk_size[i] = fdt64_to_cpu(be);
	}
	return 0;
}

/* The configuration: a checked tree, the same network devices as were
 * given here; cfg takes the machine's shape from it. */
static int recv_config(struct mig_stream *s, struct vm_config *cfg, struct snapshot *snap, struct err *e)
{
	struct rec_header h;
	int r = mig_recv(s, &h, &snap->config, SNAP_CONFIG_MAX, e);

	if (r < 0)
		return r;
	if (h.type != MIG_CONFIG)
		return err_set(e, -EPROTO, "migration stream starts with record type %u, not the configuration", h.type);
	if ((r = snapshot_check_tree(snap->config, h.len, "configuration", e)) < 0 ||
	    (r = snapshot_parse_config(snap, false, e)) < 0)
		return r;
	if (snap->nr_nets != cfg->nr_nets)
		return err_set(e, -EINVAL, "the source VM has %u network devices; this destination was given %u --net",
			       snap->nr_nets, cfg->nr_nets);
	if (snap->nr_disks != cfg->nr_disks)
		return err_set(e, -EINVAL, "the source VM has %u disks; this destination was given %u --disk (the same "
					   "images on storage both hosts share, or where to copy them)", snap->nr_disks,
			       cfg->nr_disks);
	if ((r = recv_copy_config(snap, cfg, e)) < 0)
		return r;
	cfg->nr_cpus = snap->nr_cpus;
	cfg->mem_size = snap->mem_size;
	cfg->test_device = cfg->test_device || snap->test_device;
	cfg->incoming = true;
	return 0;
}

int migrate_incoming(const char *addr, struct vm_config *cfg, struct vm *vm, unsigned timeout_ms,
		     const struct mig_cancel *cancel, struct err *e)
{
	struct mig_stream s = { .fd = -1, .cancel = cancel };
	struct snapshot snap;
	bool made = false, accepted = false;
	int lfd, r;

	memset(&snap, 0, sizeof(snap));
	lfd = mig_listen(addr, e);
	if (lfd < 0)
		return lfd;
	s.fd = mig_accept(lfd, addr, 0, cancel, e);
	close(lfd);
	mig_unlink(addr);
	if (s.fd < 0)
		return s.fd;
	mig_set_timeout(s.fd, timeout_ms);
	if ((r = mig_recv_hello(&s, e)) < 0 || (r = recv_config(&s, cfg, &snap, e)) < 0)
		goto fail;
	if ((r = machine_create(vm, cfg, e)) < 0)
		goto fail;
	made = true;
	if ((r = mig_send(&s, MIG_ACCEPT, NULL, 0, e)) < 0)
		goto fail;
	accepted = true;
	/* devices staged, not started: a destination refused or stopped
	 * before GO has sent no frame and announced nothing */
	/* a copied disk is durable before READY: the source lets go of its
	 * own on GO */
	if ((r = migrate_recv_stream(&s, vm, &snap, e)) < 0 || (r = devices_copy_done(vm, e)) < 0 ||
	    (r = snapshot_stage(vm, &snap, e)) < 0)
		goto fail;
	snapshot_free(&snap);
	if ((r = mig_send(&s, MIG_READY, NULL, 0, e)) < 0)
		goto fail_quiet;
	if ((r = mig_expect(&s, MIG_GO, "the source's GO", e)) < 0) {
		/* stopped (or the source failed) while waiting for GO: the guest
		 * never runs here. A source that has sent GO by now reads that
		 * instead of DONE and resumes rather than wait for a person. */
		mig_send(&s, MIG_NOT_RUN, NULL, 0, &(struct err){ { 0 } });
		goto fail_quiet;
	}
	if ((r = snapshot_start_devices(vm, e)) < 0) {
		/* the guest never runs here: the source resumes it, told why */
		mig_send_msg(&s, MIG_NOT_RUN, e->msg);
		goto fail_quiet;
	}
	return s.fd;

fail:
	/* the source learns why (its log, its API status) */
	if (r != -EPIPE && r != -ECONNRESET && r != -ECONNABORTED && r != -ETIMEDOUT)
		mig_send_msg(&s, accepted ? MIG_ERROR : MIG_REFUSE, e->msg);
fail_quiet:
	close(s.fd);
	snapshot_free(&snap);
	if (made) {
		devices_copy_abandon(vm); /* the guest never ran here */
		machine_destroy(vm);
	}
	return r;
}

/* The destination's last word after GO, then the connection closes. */
static void last_answer(int fd, uint32_t type, const char *what)
{
	struct mig_stream s = { .fd = fd };
	struct err e = { { 0 } };

	if (mig_send(&s, type, NULL, 0, &e) < 0)
		pr_warn("migration: the source was not told %s: %s", what, e.msg);
	close(fd);
}

void migrate_incoming_never_ran(int fd)
{
	last_answer(fd, MIG_NOT_RUN, "the guest never ran here");
}

void migrate_incoming_done(int fd)
{
	last_answer(fd, MIG_DONE, "the guest runs here (DONE)");
}
