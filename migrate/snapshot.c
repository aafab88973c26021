/* SPDX-License-Identifier: MIT */
/*
 * migrate/snapshot.c - tern's state format and snapshot directories.
 *
 * State file (all integers little-endian):
 *
 *   header   | magic "TERNSNAP" (8) | major u16 | minor u16 | CRC32C u32 |
 *   record*  | type u32 | reserved u32 = 0 | len u64 | payload (len) |
 *            | CRC32C u32 of type..payload | zero padding to 8 bytes |
 *   records: CONFIG (1) and STATE (2), each a flattened device tree checked
 *            with fdt_check_full(); PAGES (3) in a diff snapshot only;
 *            then END (0xffffffff, len 0), then EOF.
 *
 * Versioning (migrate/record.h, devices/state.h): the same major is
 * required; a newer minor is refused (we cannot know what it added); older
 * minors of the same major are read; each node of the STATE tree carries
 * its own version under the same rule.
 * Unknown record types, duplicate records, missing records, trailing bytes,
 * a bad CRC or a length past the file are refused before anything is
 * applied to a VM.
 *
 * Guest RAM is not in the state file: it is a sparse file "memory.<id>" of
 * exactly the guest's RAM size, laid out like tern's memfd (RAM below the
 * PCI hole, then RAM above 4 GiB), with zero pages left as holes. A diff
 * snapshot (1.1) names its parent in CONFIG ("parent", "parent-memory-file")
 * and its memory file holds only the pages set in PAGES, a bitmap of one
 * bit per page (u64 words, little-endian).
 */
#include "migrate/snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libfdt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "devices/device.h"
#include "devices/state.h"
#include "migrate/kvmstate.h"
#include "migrate/record.h"
#include "migrate/snapmem.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"


/* ---- building the trees ----------------------------------------------- */

int snapshot_build_config(struct vm *vm, const char *mem_name, const struct snap_lineage *parent, void *fdt,
			  size_t size, struct err *e)
{
	int r = fdt_create(fdt, (int)size);

	if (!r)
		r = fdt_finish_reservemap(fdt);
	if (!r)
		r = fdt_begin_node(fdt, "");
	if (!r)
		r = fdt_property_u32(fdt, "nr-cpus", vm->nr_vcpus);
	if (!r)
		r = fdt_property_u64(fdt, "mem-size", vm->mem.size);
	if (!r)
		r = fdt_property_u32(fdt, "test-device", vm->cfg.test_device);
	if (!r)
		r = fdt_property_u32(fdt, "nr-nets", vm->cfg.nr_nets);
	if (!r && vm->cfg.nr_disks) /* absent: none (and what older terns read) */
		r = fdt_property_u32(fdt, "nr-disks", vm->cfg.nr_disks);
	if (!r)
		r = fdt_property(fdt, "vm-id", vm->cfg.vm_id, sizeof(vm->cfg.vm_id));
	if (!r && mem_name)
		r = fdt_property_string(fdt, "memory-file", mem_name);
	if (!r && parent)
		r = fdt_property_string(fdt, "parent", parent->dir);
	if (!r && parent)
		r = fdt_property_string(fdt, "parent-memory-file", parent->mem_name);
	if (!r)
		r = fdt_end_node(fdt);
	if (!r)
		r = fdt_finish(fdt);
	return r < 0 ? state_fdt_err(e, "config", r) : 0;
}

/* Versions of the machine's own nodes (devices/state.h): "kvm" holds the
 * VM-wide KVM state, "vcpu@N" each vCPU's (migrate/kvmstate.c); a change
 * to what they hold needs a bump. */
static const struct state_version kvm_state_version = { .major = 1, .minor = 0, .floor = 0 };
static const struct state_version vcpu_state_version = { .major = 1, .minor = 0, .floor = 0 };

int snapshot_build_state(struct vm *vm, void *fdt, size_t size, struct err *e)
{
	char name[32];
	int r = fdt_create(fdt, (int)size);

	if (!r)
		r = fdt_finish_reservemap(fdt);
	if (!r)
		r = fdt_begin_node(fdt, "");
	if (r < 0)
		return state_fdt_err(e, "root", r);
	if ((r = state_begin(fdt, "kvm", &kvm_state_version, e)) < 0 || (r = kvmstate_save_vm(vm, fdt, e)) < 0 ||
	    (r = state_end(fdt, "kvm", e)) < 0)
		return r;
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		snprintf(name, sizeof(name), "vcpu@%u", i);
		if ((r = state_begin(fdt, name, &vcpu_state_version, e)) < 0 ||
		    (r = kvmstate_save_vcpu(vm, &vm->vcpus[i], fdt, e)) < 0 || (r = state_end(fdt, name, e)) < 0)
			return r;
	}
	/* every device's nodes, through the device table */
	if ((r = devices_save(vm, fdt, e)) < 0)
		return r;
	r = fdt_end_node(fdt);
	if (!r)
		r = fdt_finish(fdt);
	return r < 0 ? state_fdt_err(e, "root", r) : 0;
}

/* The state tree in a buffer of its own size. fdt_create() clears the
 * whole buffer it is given, so a 16 MiB one would cost milliseconds of
 * page faults inside a migration's downtime: start small, grow on need. */
void *snapshot_state_tree(struct vm *vm, struct err *e)
{
	for (size_t size = 256u << 10; size <= SNAP_FDT_MAX; size *= 4) {
		struct err te = { { 0 } };
		void *fdt = malloc(size);
		if (!fdt)
			break;
		int r = snapshot_build_state(vm, fdt, size, &te);
		if (r == 0)
			return fdt;
		free(fdt);
		if (r != -ENOBUFS) {
			err_set(e, r, "%s", te.msg);
			return NULL;
		}
	}
	err_set(e, -ENOSPC, "the state tree does not fit %u MiB", SNAP_FDT_MAX >> 20);
	return NULL;
}

/* ---- reading -------------------------------------------------------------- */

int snapshot_check_tree(const void *p, size_t len, const char *what, struct err *e)
{
	int r;

	if (len < sizeof(struct fdt_header) || len > SNAP_FDT_MAX)
		return err_set(e, -EPROTO, "snapshot: %s tree has a bad size (%zu)", what, len);
	r = fdt_check_full(p, len);
	if (r < 0)
		return err_set(e, -EPROTO, "snapshot: %s tree is malformed: %s", what, fdt_strerror(r));
	if (fdt_totalsize(p) != len)
		return err_set(e, -EPROTO, "snapshot: %s tree size disagrees with its record", what);
	return 0;
}

int snapshot_parse_config(struct snapshot *s, bool memory_file, struct err *e)
{
	int root = 0, plen;
	const fdt32_t *cpus = fdt_getprop(s->config, root, "nr-cpus", &plen);
	if (!cpus || plen != 4)
		return err_set(e, -EPROTO, "snapshot configuration lacks nr-cpus");
	s->nr_cpus = fdt32_to_cpu(*cpus);
	const void *mem = fdt_getprop(s->config, root, "mem-size", &plen);
	if (!mem || plen != 8)
		return err_set(e, -EPROTO, "snapshot configuration lacks mem-size");
	fdt64_t mem_be; /* properties are only 4-byte aligned */
	memcpy(&mem_be, mem, 8);
	s->mem_size = fdt64_to_cpu(mem_be);
	const fdt32_t *td = fdt_getprop(s->config, root, "test-device", &plen);
	s->test_device = td && plen == 4 && fdt32_to_cpu(*td);
	const fdt32_t *nets = fdt_getprop(s->config, root, "nr-nets", &plen);
	s->nr_nets = nets && plen == 4 ? fdt32_to_cpu(*nets) : 0;
	if (s->nr_nets > VM_MAX_NETS)
		return err_set(e, -EPROTO, "snapshot configuration has %u network devices", s->nr_nets);
	const fdt32_t *disks = fdt_getprop(s->config, root, "nr-disks", &plen);
	s->nr_disks = disks && plen == 4 ? fdt32_to_cpu(*disks) : 0;
	if (s->nr_disks > VM_MAX_DISKS)
		return err_set(e, -EPROTO, "snapshot configuration has %u disks", s->nr_disks);
	const void *id = fdt_getprop(s->config, root, "vm-id", &plen);
	s->has_vm_id = id && plen == (int)sizeof(s->vm_id);
	if (id && !s->has_vm_id)
		return err_set(e, -EPROTO, "snapshot configuration has a vm-id of %d bytes", plen);
	if (s->has_vm_id)
		memcpy(s->vm_id, id, sizeof(s->vm_id));
	if (!s->nr_cpus || s->nr_cpus > VM_MAX_CPUS || s->mem_size < MEM_MIN_SIZE || s->mem_size % PAGE ||
	    s->mem_size > (1ull << 46))
		return err_set(e, -EPROTO, "snapshot configuration is out of range (%u CPUs, %llu bytes)", s->nr_cpus,
			       (unsigned long long)s->mem_size);
	if (!memory_file)
		return 0;
	const char *mf = fdt_getprop(s->config, root, "memory-file", &plen);
	if (!mf || plen < 2 || mf[plen - 1] || strchr(mf, '/') || strncmp(mf, "memory.", 7) ||
	    (size_t)plen > sizeof(s->mem_name))
		return err_set(e, -EPROTO, "snapshot configuration has a bad memory-file name");
	memcpy(s->mem_name, mf, (size_t)plen);
	snprintf(s->mem_path, sizeof(s->mem_path), "%s", mf); /* made absolute by snapshot_read() */
	return 0;
}

int snapshot_parse(const uint8_t *buf, size_t len, struct snapshot *s, struct err *e)
{
	struct rec_file_header h;
	size_t pos = sizeof(h), pages_len = 0;
	bool seen_end = false;
	uint32_t last = 0; /* records come in the documented order */

	memset(s, 0, sizeof(*s));
	if (len < sizeof(h))
		return err_set(e, -EPROTO, "snapshot state file is too short (%zu bytes)", len);
	memcpy(&h, buf, sizeof(h));
	int hr = rec_hello_check(&h, SNAP_MAGIC, "snapshot", e);
	if (hr < 0)
		return hr;
	while (!seen_end) {
		struct rec_header r;
		if (len - pos < sizeof(r) + 4)
			return err_set(e, -EPROTO, "snapshot is truncated at byte %zu", pos);
		memcpy(&r, buf + pos, sizeof(r));
		if (r.len > len - pos - sizeof(r) - 4)
			return err_set(e, -EPROTO, "snapshot record at byte %zu runs past the end of the file", pos);
		size_t tail = 4 + rec_pad(r.len);
		if (len - pos - sizeof(r) - r.len < tail)
			return err_set(e, -EPROTO, "snapshot is truncated in its padding");
		/* the padding is outside the CRC: it must be exactly zero */
		int tc = rec_trailer_check(buf + pos + sizeof(r) + r.len, r.len, crc32c(buf + pos, sizeof(r) + r.len, 0));
		if (tc == REC_BAD_CRC)
			return err_set(e, -EPROTO, "snapshot record at byte %zu is corrupt (CRC mismatch)", pos);
		if (tc == REC_BAD_PADDING)
			return err_set(e, -EPROTO, "snapshot record at byte %zu has non-zero padding", pos);
		if (r.rsvd)
			return err_set(e, -EPROTO, "snapshot record at byte %zu has reserved bits set", pos);
		const uint8_t *payload = buf + pos + sizeof(r);
		if (r.type <= last && r.type >= REC_CONFIG && r.type <= REC_PAGES)
			return err_set(e, -EPROTO, "snapshot record %u at byte %zu is out of order (the format has "
						   "CONFIG, STATE, then PAGES)", r.type, pos);
		if (r.type >= REC_CONFIG && r.type <= REC_PAGES)
			last = r.type;
		switch (r.type) {
		case REC_CONFIG:
		case REC_STATE: {
			void **slot = r.type == REC_CONFIG ? &s->config : &s->state;
			const char *what = r.type == REC_CONFIG ? "configuration" : "state";
			if (*slot)
				return err_set(e, -EPROTO, "snapshot has two %s records", what);
			int c = snapshot_check_tree(payload, r.len, what, e);
			if (c < 0)
				return c;
			*slot = malloc(r.len);
			if (!*slot)
				return err_set(e, -ENOMEM, "out of memory reading the snapshot");
			memcpy(*slot, payload, r.len);
			break;
		}
		case REC_PAGES:
			if (s->pages)
				return err_set(e, -EPROTO, "snapshot has two page bitmaps");
			if (r.len == 0 || r.len % 8 || r.len > SNAP_MAX_FILE)
				return err_set(e, -EPROTO, "snapshot page bitmap has a bad size (%llu)",
					       (unsigned long long)r.len);
			s->pages = malloc(r.len);
			if (!s->pages)
				return err_set(e, -ENOMEM, "out of memory reading the snapshot");
			memcpy(s->pages, payload, r.len);
			pages_len = r.len;
			break;
		case REC_END:
			if (r.len)
				return err_set(e, -EPROTO, "snapshot end record has a payload");
			seen_end = true;
			break;
		default:
			return err_set(e, -EPROTO, "snapshot has an unknown record type %u", r.type);
		}
		pos += sizeof(r) + r.len + tail;
	}
	if (pos != len)
		return err_set(e, -EPROTO, "snapshot has %zu bytes after its end record", len - pos);
	if (!s->config || !s->state)
		return err_set(e, -EPROTO, "snapshot lacks its %s record", s->config ? "state" : "configuration");

	int r = snapshot_parse_config(s, true, e);
	if (r < 0)
		return r;
	int root = 0, plen;
	/* a diff: its parent, and exactly one bit per page of RAM */
	const char *par = fdt_getprop(s->config, root, "parent", &plen);
	if (!par)
		return s->pages ? err_set(e, -EPROTO, "snapshot has a page bitmap but no parent") : 0;
	if (plen < 3 || par[plen - 1] || par[0] != '/' || (size_t)plen > sizeof(s->parent))
		return err_set(e, -EPROTO, "snapshot configuration has a bad parent");
	memcpy(s->parent, par, (size_t)plen);
	const char *pm = fdt_getprop(s->config, root, "parent-memory-file", &plen);
	if (!pm || plen < 2 || pm[plen - 1] || strchr(pm, '/') || strncmp(pm, "memory.", 7) ||
	    (size_t)plen > sizeof(s->parent_mem))
		return err_set(e, -EPROTO, "snapshot configuration has a bad parent-memory-file name");
	memcpy(s->parent_mem, pm, (size_t)plen);
	uint64_t npages = s->mem_size / PAGE, words = (npages + 63) / 64;
	if (!s->pages || pages_len != words * 8)
		return err_set(e, -EPROTO, "diff snapshot lacks a page bitmap of %llu bytes",
			       (unsigned long long)(words * 8));
	if (npages % 64 && s->pages[words - 1] >> (npages % 64))
		return err_set(e, -EPROTO, "snapshot page bitmap names pages past the end of RAM");
	return 0;
}

/* Reads one state file; s->dir and s->mem_path become absolute. */
static int read_one(const char *dir, struct snapshot *s, struct err *e)
{
	char path[4096], real[PATH_MAX];
	uint8_t *buf = NULL;
	size_t len;
	int r;

	snprintf(path, sizeof(path), "%s/%s", dir, SNAP_STATE_FILE);
	r = read_file(path, "snapshot state", SNAP_MAX_FILE, &buf, &len, e);
	if (r < 0)
		return r;
	r = snapshot_parse(buf, len, s, e);
	free(buf);
	if (r < 0)
		return r;
	if (!realpath(dir, real))
		return err_errno(e, -errno, "snapshot directory '%s'", dir);
	if (strlen(real) + 1 + strlen(s->mem_name) >= sizeof(s->mem_path) || strlen(real) >= sizeof(s->dir))
		return err_set(e, -ENAMETOOLONG, "snapshot path too long");
	strcpy(s->dir, real);
	snprintf(s->mem_path, sizeof(s->mem_path), "%s/%s", real, s->mem_name);
	return 0;
}

/* Walks a diff's parents to the full snapshot under them: each must still
 * be the snapshot its child was taken against (same memory file name) and
 * describe the same machine. */
/* Whether the directory dir lies under root (both absolute, resolved). */
static bool under_root(const char *dir, const char *root)
{
	size_t n = strlen(root);

	return !strcmp(root, "/") || (!strncmp(dir, root, n) && dir[n] == '/');
}

/* root: where every parent must lie (resolved), or NULL for anywhere. */
static int read_chain(struct snapshot *s, const char *root, struct err *e)
{
	struct snapshot p = { 0 };
	struct snapshot_layer *l;
	char dir[4096], want[64];
	struct stat seen[SNAP_MAX_CHAIN + 1];
	unsigned n = 0;
	int r = 0;

	if (!s->parent[0])
		return 0;
	if (stat(s->dir, &seen[0]) < 0)
		return err_errno(e, -errno, "snapshot directory '%s'", s->dir);
	s->layers = calloc(SNAP_MAX_CHAIN, sizeof(*s->layers));
	if (!s->layers)
		return err_set(e, -ENOMEM, "out of memory reading the snapshot chain");
	/* this diff is the last layer; its pages move into the layer */
	l = &s->layers[SNAP_MAX_CHAIN - 1];
	snprintf(l->mem_path, sizeof(l->mem_path), "%s", s->mem_path);
	l->pages = s->pages;
	s->pages = NULL;
	n = 1;
	snprintf(dir, sizeof(dir), "%s", s->parent);
	snprintf(want, sizeof(want), "%s", s->parent_mem);
	for (;;) {
		struct err pe = { { 0 } };
		/* a parent met before is a loop: refused at once, before its
		 * bitmap is read again and again */
		struct stat st;
		bool loop = false;
		if (stat(dir, &st) == 0) {
			for (unsigned i = 0; i < n; i++)
				loop = loop || (seen[i].st_dev == st.st_dev && seen[i].st_ino == st.st_ino);
			seen[n] = st; /* n <= SNAP_MAX_CHAIN: checked below */
		}
		if (loop) {
			r = err_set(e, -ELOOP, "diff snapshot %s: its chain of parents loops back to %s", s->dir, dir);
			break;
		}
		/* (a parent that does not resolve is reported by read_one()) */
		char real[PATH_MAX];
		if (root && realpath(dir, real) && !under_root(real, root)) {
			r = err_set(e, -EPERM, "diff snapshot %s: its parent %s is not under %s: if you trust this "
					       "snapshot, restore it with --restore-parents naming a directory that holds "
					       "its whole chain", s->dir, dir, root);
			break;
		}
		r = read_one(dir, &p, &pe);
		if (r < 0) {
			r = err_set(e, r, "diff snapshot %s: its parent %s cannot be used: %s", s->dir, dir, pe.msg);
			break;
		}
		if (strcmp(p.mem_name, want)) {
			r = err_set(e, -ESTALE, "diff snapshot %s: its parent %s was replaced after the diff was "
						"taken (memory file %s, expected %s)", s->dir, dir, p.mem_name, want);
			break;
		}
		if (p.mem_size != s->mem_size || p.nr_cpus != s->nr_cpus) {
			r = err_set(e, -EPROTO, "diff snapshot %s: its parent %s is of another machine", s->dir, dir);
			break;
		}
		if (!p.parent[0]) {
			snprintf(s->mem_path, sizeof(s->mem_path), "%s", p.mem_path);
			break;
		}
		if (n == SNAP_MAX_CHAIN) {
			r = err_set(e, -ELOOP, "more than %d diff snapshots over one full snapshot", SNAP_MAX_CHAIN);
			break;
		}
		l = &s->layers[SNAP_MAX_CHAIN - 1 - n++];
		snprintf(l->mem_path, sizeof(l->mem_path), "%s", p.mem_path);
		l->pages = p.pages;
		p.pages = NULL;
		snprintf(dir, sizeof(dir), "%s", p.parent);
		snprintf(want, sizeof(want), "%s", p.parent_mem);
		snapshot_free(&p);
	}
	snapshot_free(&p);
	/* oldest first, from index 0 */
	memmove(s->layers, s->layers + SNAP_MAX_CHAIN - n, n * sizeof(*s->layers));
	memset(s->layers + n, 0, (SNAP_MAX_CHAIN - n) * sizeof(*s->layers));
	s->nr_layers = n;
	return r;
}

/* *s is an output: whatever it held is overwritten, so a caller's
 * uninitialised struct is never freed on the failure path. */
/* root: where the chain may lie; NULL with confined: under the directory
 * that holds dir's; NULL otherwise: anywhere. */
static int read_snapshot(const char *dir, const char *root, bool confined, struct snapshot *s, struct err *e)
{
	char holder[PATH_MAX];
	int r;

	memset(s, 0, sizeof(*s));
	r = read_one(dir, s, e);
	if (r == 0 && confined && !root) {
		snprintf(holder, sizeof(holder), "%s", s->dir); /* absolute, resolved */
		char *slash = strrchr(holder, '/');
		if (slash == holder)
			slash[1] = '\0';
		else if (slash)
			*slash = '\0';
		root = holder;
	}
	if (r == 0)
		r = read_chain(s, root, e);
	if (r < 0)
		snapshot_free(s);
	return r;
}

int snapshot_read(const char *dir, struct snapshot *s, struct err *e)
{
	return read_snapshot(dir, NULL, false, s, e);
}

int snapshot_read_within(const char *dir, const char *root, struct snapshot *s, struct err *e)
{
	char given[PATH_MAX];

	memset(s, 0, sizeof(*s));
	if (root && !realpath(root, given))
		return err_errno(e, -errno, "--restore-parents '%s'", root);
	return read_snapshot(dir, root ? given : NULL, true, s, e);
}

void snapshot_free(struct snapshot *s)
{
	free(s->config);
	free(s->state);
	free(s->pages);
	for (unsigned i = 0; s->layers && i < SNAP_MAX_CHAIN; i++)
		free(s->layers[i].pages);
	free(s->layers);
	s->config = s->state = NULL;
	s->pages = NULL;
	s->layers = NULL;
	s->nr_layers = 0;
}

int snapshot_start_devices(struct vm *vm, struct err *e)
{
	return devices_start(vm, e);
}

int snapshot_load(struct vm *vm, const struct snapshot *s, struct err *e)
{
	int r = snapshot_stage(vm, s, e);

	return r < 0 ? r : snapshot_start_devices(vm, e);
}

int snapshot_stage(struct vm *vm, const struct snapshot *s, struct err *e)
{
	const void *fdt = s->state;
	char name[32];
	int node, r;

	if (vm->nr_vcpus != s->nr_cpus || vm->mem.size != s->mem_size)
		return err_set(e, -EINVAL, "snapshot is for %u vCPUs and %llu MiB, this VM has %u and %llu MiB",
			       s->nr_cpus, (unsigned long long)(s->mem_size >> 20), vm->nr_vcpus,
			       (unsigned long long)(vm->mem.size >> 20));
	if (vm->cfg.nr_nets != s->nr_nets)
		return err_set(e, -EINVAL, "snapshot has %u network devices: give as many --net options (got %u)",
			       s->nr_nets, vm->cfg.nr_nets);
	if (vm->cfg.nr_disks != s->nr_disks)
		return err_set(e, -EINVAL, "snapshot has %u disks: give as many --disk options, in the same order "
					   "(got %u)", s->nr_disks, vm->cfg.nr_disks);
	/* every node's presence and version first: a state tree from
	 * another tern is refused before the VM is touched */
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		snprintf(name, sizeof(name), "vcpu@%u", i);
		if ((node = state_find(fdt, name, &vcpu_state_version, NULL, e)) < 0)
			return node;
	}
	node = state_find(fdt, "kvm", &kvm_state_version, NULL, e);
	if (node < 0)
		return node;
	r = kvmstate_load_vm(vm, fdt, node, e);
	for (unsigned i = 0; r == 0 && i < vm->nr_vcpus; i++) {
		snprintf(name, sizeof(name), "vcpu@%u", i);
		r = kvmstate_load_vcpu(vm, &vm->vcpus[i], fdt, fdt_subnode_offset(fdt, 0, name), e);
	}
	/* then every device's, through the device table (each checks its
	 * nodes' versions and values) */
	if (r == 0)
		r = devices_load(vm, fdt, e);
	for (unsigned i = 0; r == 0 && i < s->nr_layers; i++)
		r = snapmem_apply(&vm->mem, s->layers[i].mem_path, s->layers[i].pages, e);
	/* the VM's RAM is now this snapshot's: diffs are taken against it */
	if (r == 0 && s->dir[0])
		snapmem_set_base(vm, s->dir, s->mem_name);
	return r;
}
