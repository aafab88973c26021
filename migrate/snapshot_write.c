/* SPDX-License-Identifier: MIT */
/*
 * migrate/snapshot_write.c - writing a snapshot directory (snapshot.h; the
 * format is in snapshot.c and docs/state-format.md, with the guarantees
 * this order gives).
 *
 * One writer per directory: the directory is locked (flock) for the whole
 * write, and a second writer is refused. Files are created under unique
 * temporary names with O_EXCL | O_NOFOLLOW (never through a link someone
 * left there), then renamed into place: the memory file first, the
 * directory synced, then the state file that names it, the directory
 * synced again. Only then is the memory file the old state named removed,
 * and only then does a VM with dirty tracking take this snapshot as its
 * next diff's base. A diff is refused unless its base's chain reads back
 * whole, is still the snapshot this VM saved or restored, and stays
 * within SNAP_MAX_CHAIN; and never written into a directory of that chain
 * (compared by device and inode).
 */
#include "migrate/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <libfdt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices/device.h"
#include "migrate/record.h"
#include "migrate/snapmem.h"
#include "vmm/vm.h"

/* ---- the diff guard ---------------------------------------------------- */

/* Whether path's directory (or path itself, with whole) is the directory
 * st describes. */
static bool same_dir(const char *path, bool whole, const struct stat *st)
{
	char d[4096];
	struct stat s;

	snprintf(d, sizeof(d), "%s", path);
	char *slash = whole ? NULL : strrchr(d, '/');
	if (slash)
		*slash = '\0';
	return stat(d, &s) == 0 && s.st_dev == st->st_dev && s.st_ino == st->st_ino;
}

static int check_diff(struct vm *vm, const char *dir, struct err *e)
{
	const struct snap_lineage *l = vm->lineage;
	struct err be = { { 0 } };
	struct snapshot base;
	struct stat st;
	int r = 0;

	if (!l)
		return err_set(e, -EINVAL, "diff snapshots need dirty tracking: start tern with --track-dirty");
	if (!l->has_base)
		return err_set(e, -EINVAL, "no earlier snapshot of this VM to diff against: take a full snapshot "
					   "first (or restore with --track-dirty)");
	if (snapshot_read(l->dir, &base, &be) < 0)
		return err_set(e, -ESTALE, "this VM's base snapshot %s cannot be read back whole (%s): a diff on it "
					   "could never be restored; take a full snapshot", l->dir, be.msg);
	if (strcmp(base.mem_name, l->mem_name))
		r = err_set(e, -ESTALE, "the snapshot in %s was replaced since this VM saved or restored it (memory "
					"file %s, this VM's base %s): a diff on it could never be restored; take a full "
					"snapshot", l->dir, base.mem_name, l->mem_name);
	else if (base.nr_layers + 1 > SNAP_MAX_CHAIN)
		r = err_set(e, -ELOOP, "this diff would be number %u over one full snapshot (at most %d can be "
				       "restored): take a full snapshot", base.nr_layers + 1, SNAP_MAX_CHAIN);
	else if (stat(dir, &st) == 0) { /* else: a new directory replaces nothing */
		bool hit = same_dir(base.dir, true, &st) || same_dir(base.mem_path, false, &st);
		for (unsigned i = 0; !hit && i < base.nr_layers; i++)
			hit = same_dir(base.layers[i].mem_path, false, &st);
		if (hit)
			r = err_set(e, -EINVAL, "a diff snapshot into '%s' would replace a snapshot it depends on: "
						"choose another directory", dir);
	}
	snapshot_free(&base);
	return r;
}

/* ---- the directory -------------------------------------------------------- */

/* The memory file the directory's current state names ("" if none can be
 * read): the one file a successful write removes. */
static void current_memory(int dfd, char *out, size_t cap)
{
	struct snapshot s;
	struct err e = { { 0 } };
	uint8_t *buf = NULL;
	size_t len = 0;
	char path[64];

	out[0] = '\0';
	snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", dfd, SNAP_STATE_FILE);
	if (read_file(path, "snapshot state", SNAP_MAX_FILE, &buf, &len, &e) < 0)
		return;
	if (snapshot_parse(buf, len, &s, &e) == 0 && !strchr(s.mem_name, '/') && !strncmp(s.mem_name, "memory.", 7))
		snprintf(out, cap, "%s", s.mem_name);
	snapshot_free(&s);
	free(buf);
}

/* fsync of the directory holding path (a directory tern just created). */
static int sync_parent(const char *path, struct err *e)
{
	char d[4096];

	snprintf(d, sizeof(d), "%s", path);
	char *slash = strrchr(d, '/');
	if (slash == d)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		snprintf(d, sizeof(d), ".");
	int fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = fd < 0 || fsync(fd) < 0 ? -errno : 0;
	if (fd >= 0)
		close(fd);
	return r < 0 ? err_errno(e, r, "fsync of '%s', which holds the new snapshot directory", d) : 0;
}

/* Writes len bytes at buf, or the memory, into a new file name in dfd
 * (fsynced), then renames it to final. */
static int write_file(int dfd, const char *tmp, const char *final, const struct guest_mem *mem,
		      const uint64_t *pages, uint64_t *written, const void *buf, size_t len, struct err *e)
{
	int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	int r;

	if (fd < 0)
		return err_errno(e, -errno, "cannot create '%s' in the snapshot directory", tmp);
	if (mem) {
		r = snapmem_write(mem, fd, pages, written, e);
	} else {
		r = pwrite_all(fd, buf, len, 0);
		if (r == 0 && fsync(fd) < 0)
			r = -errno;
		if (r < 0)
			err_errno(e, r, "cannot write '%s'", tmp);
	}
	close(fd);
	if (r == 0 && renameat(dfd, tmp, dfd, final) < 0)
		r = err_errno(e, -errno, "cannot rename '%s' to '%s'", tmp, final);
	if (r < 0)
		unlinkat(dfd, tmp, 0);
	return r;
}

/* The state file's bytes into *buf (SNAP_MAX_FILE), *pos long. */
static int build_state_file(struct vm *vm, const char *mem_name, const struct snap_lineage *parent, uint8_t *buf,
			    size_t *pos, struct err *e)
{
	uint8_t *cfg = malloc(SNAP_CONFIG_MAX);
	void *st = NULL;
	int r;

	if (!cfg)
		return err_set(e, -ENOMEM, "out of memory for the snapshot");
	if ((r = snapshot_build_config(vm, mem_name, parent, cfg, SNAP_CONFIG_MAX, e)) < 0)
		goto out;
	st = snapshot_state_tree(vm, e);
	if (!st) {
		r = -ENOSPC;
		goto out;
	}
	struct rec_file_header h;
	rec_hello_init(&h, SNAP_MAGIC);
	memcpy(buf, &h, sizeof(h));
	*pos = sizeof(h);
	if (rec_put(buf, pos, SNAP_MAX_FILE, REC_CONFIG, cfg, fdt_totalsize(cfg)) < 0 ||
	    rec_put(buf, pos, SNAP_MAX_FILE, REC_STATE, st, fdt_totalsize(st)) < 0 ||
	    (parent && rec_put(buf, pos, SNAP_MAX_FILE, REC_PAGES, parent->pending, parent->words * 8) < 0) ||
	    rec_put(buf, pos, SNAP_MAX_FILE, REC_END, NULL, 0) < 0)
		r = err_set(e, -ENOSPC, "snapshot state exceeds %u MiB", SNAP_MAX_FILE >> 20);
out:
	free(cfg);
	free(st);
	return r;
}

/* Writes the snapshot into the locked directory dfd (real: its absolute
 * path); the VM is paused and its devices frozen. */
static int write_snapshot(struct vm *vm, int dfd, const char *real, struct snapshot_opts *o, struct err *e)
{
	const struct snap_lineage *parent = o->diff ? vm->lineage : NULL;
	char mem_name[64], old_mem[64], tmp[96];
	uint8_t *buf = NULL;
	uint64_t id = 0;
	size_t pos = 0;
	int r;

	current_memory(dfd, old_mem, sizeof(old_mem));
	/* everything dirtied up to now goes into pending, where it stays
	 * until a snapshot has saved it */
	if ((r = snapmem_collect(vm, e)) < 0)
		return r;
	/* unique among writers (the lock keeps them apart; a name from
	 * getrandom() keeps their files apart even so) */
	if (getrandom(&id, sizeof(id), 0) != sizeof(id))
		id = now_ns() ^ ((uint64_t)getpid() << 40);
	snprintf(mem_name, sizeof(mem_name), "memory.%016llx", (unsigned long long)id);
	if (!(buf = malloc(SNAP_MAX_FILE)))
		return err_set(e, -ENOMEM, "out of memory for the snapshot");
	if ((r = build_state_file(vm, mem_name, parent, buf, &pos, e)) < 0)
		goto out;
	/* memory first, made durable under its name, before the state file
	 * that names it can appear */
	snprintf(tmp, sizeof(tmp), "%s.tmp", mem_name);
	r = write_file(dfd, tmp, mem_name, &vm->mem, parent ? parent->pending : NULL, &o->pages, NULL, 0, e);
	if (r == 0 && fsync(dfd) < 0)
		r = err_errno(e, -errno, "fsync of '%s' after its memory file", real);
	if (r == 0) {
		snprintf(tmp, sizeof(tmp), "%s.%s.tmp", SNAP_STATE_FILE, mem_name + 7);
		r = write_file(dfd, tmp, SNAP_STATE_FILE, NULL, NULL, NULL, buf, pos, e);
	}
	if (r < 0) {
		unlinkat(dfd, mem_name, 0);
		goto out;
	}
	/* in place; until the directory is synced a crash may bring the old
	 * state back, so its memory file stays and the diff base does not
	 * move */
	if (fsync(dfd) < 0) {
		r = err_errno(e, -errno, "the snapshot is in '%s' but the directory could not be synced (the "
					 "previous snapshot there is kept and later diffs still count from it)", real);
		goto out;
	}
	if (old_mem[0] && strcmp(old_mem, mem_name))
		unlinkat(dfd, old_mem, 0);
	/* the VM is paused: its RAM is exactly what was saved */
	snapmem_set_base(vm, real, mem_name);
out:
	free(buf);
	return r;
}

int snapshot_create(struct vm *vm, const char *dir, struct snapshot_opts *o, struct err *e)
{
	char real[PATH_MAX];
	bool paused = false, created = false;
	int dfd = -1, r;

	o->pages = 0;
	if (o->diff && (r = check_diff(vm, dir, e)) < 0)
		return r;
	/* the devices' data paths write guest memory too: freeze them first */
	if (!o->devices_frozen) {
		if ((r = devices_pause(vm, e)) < 0)
			goto out;
		paused = true;
	}
	if (mkdir(dir, 0755) == 0) {
		created = true;
		if ((r = sync_parent(dir, e)) < 0)
			goto out;
	} else if (errno != EEXIST) {
		r = err_errno(e, -errno, "cannot create snapshot directory '%s'", dir);
		goto out;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || !realpath(dir, real)) {
		r = err_errno(e, -errno, "cannot open snapshot directory '%s'", dir);
		goto out;
	}
	if (flock(dfd, LOCK_EX | LOCK_NB) < 0) {
		r = errno == EWOULDBLOCK ? err_set(e, -EBUSY, "another snapshot is being written into '%s' (one "
							      "writer per directory)", dir)
					 : err_errno(e, -errno, "cannot lock snapshot directory '%s'", dir);
		created = false; /* the other writer's now */
		goto out;
	}
	r = write_snapshot(vm, dfd, real, o, e);
out:
	if (dfd >= 0)
		close(dfd); /* and the lock with it */
	if (r < 0 && created)
		rmdir(dir); /* a failed snapshot leaves no empty directory */
	if (paused)
		devices_thaw(vm);
	return r;
}
