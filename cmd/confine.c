/* SPDX-License-Identifier: MIT */
/* cmd/confine.c - see confine.h. */
#include "cmd/confine.h"
#include "vmm/dynlib.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* A copy of s in c's storage (options hand out pointers to parse buffers
 * that outlive the run; parents need their own). */
static const char *keep(struct confine *c, const char *s, size_t len, struct err *e)
{
	if (c->ndirs >= CONFINE_DIRS || len >= sizeof(c->dirs[0]))
		return err_set(e, -E2BIG, "--landlock: too many paths"), NULL;
	memcpy(c->dirs[c->ndirs], s, len);
	c->dirs[c->ndirs][len] = 0;
	return c->dirs[c->ndirs++];
}

/* The directory that holds path: where a socket is made and removed. */
static int allow_parent(struct confine *c, const char *path, struct err *e)
{
	const char *slash = strrchr(path, '/');
	const char *dir = !slash ? keep(c, ".", 1, e) : keep(c, path, slash == path ? 1 : (size_t)(slash - path), e);

	return dir ? landlock_allow(&c->rules, dir, LANDLOCK_WRITE_TREE, false, e) : -E2BIG;
}

static int allow_nets(const struct run_options *o, struct confine *c, struct err *e)
{
	bool tun = false;
	int r = 0;

	for (unsigned i = 0; i < o->cfg.nr_nets && r == 0; i++) {
		const struct net_config *n = &o->nets[i];
		if (n->kernel)
			r = landlock_allow(&c->rules, n->dev, LANDLOCK_RW_FILE, false, e);
		if (r == 0 && n->socket[0])
			r = allow_parent(c, n->socket, e);
		tun = tun || n->tap[0];
	}
	if (r == 0 && tun)
		r = landlock_allow(&c->rules, "/dev/net/tun", LANDLOCK_RW_FILE, false, e);
	return r;
}

/* A restore reads its own directory and, for a diff, its parents: beside
 * it (the tree that holds it) unless --restore-parents says where. */
static int allow_restore(const struct run_options *o, struct confine *c, struct err *e)
{
	const char *slash;
	int r;

	if (!o->restore)
		return 0;
	if (o->restore_parents)
		return landlock_allow(&c->rules, o->restore_parents, LANDLOCK_READ_TREE, false, e);
	r = landlock_allow(&c->rules, o->restore, LANDLOCK_READ_TREE, false, e);
	slash = strrchr(o->restore, '/');
	if (r == 0 && slash && slash != o->restore) {
		const char *tree = keep(c, o->restore, (size_t)(slash - o->restore), e);
		r = tree ? landlock_allow(&c->rules, tree, LANDLOCK_READ_TREE, false, e) : -E2BIG;
	}
	return r;
}

int confine_build(const struct run_options *o, struct confine *c, struct err *e)
{
	struct landlock *l = &c->rules;
	int r = 0;

	memset(&c->rules, 0, sizeof(c->rules));
	c->ndirs = 0;
	if (o->cfg.kernel)
		r = landlock_allow(l, o->cfg.kernel, LANDLOCK_READ_FILE, false, e);
	if (r == 0 && o->cfg.initrd)
		r = landlock_allow(l, o->cfg.initrd, LANDLOCK_READ_FILE, false, e);
	if (r == 0)
		r = landlock_allow(l, o->cfg.kvm_path ? o->cfg.kvm_path : "/dev/kvm", LANDLOCK_RW_FILE, false, e);
	for (unsigned i = 0; i < o->cfg.nr_disks && r == 0; i++)
		r = landlock_allow(l, o->disks[i].path, o->disks[i].readonly ? LANDLOCK_READ_FILE : LANDLOCK_RW_FILE,
				   false, e);
	if (r == 0)
		r = allow_nets(o, c, e);
	if (r == 0)
		r = allow_restore(o, c, e);
	if (r == 0 && o->incoming && !strncmp(o->incoming, "unix:", 5))
		r = allow_parent(c, o->incoming + 5, e);
	if (r == 0 && o->in.tls_dir)
		r = landlock_allow(l, o->in.tls_dir, LANDLOCK_READ_TREE, false, e);
	/* the host's free memory, which an incoming VM must fit in */
	if (r == 0)
		r = landlock_allow(l, "/proc/meminfo", LANDLOCK_READ_FILE, false, e);
#if defined(__SANITIZE_ADDRESS__)
	/* the test build's leak check reads the process's maps and tasks */
	if (r == 0)
		r = landlock_allow(l, "/proc", LANDLOCK_READ_TREE, false, e);
#endif
	for (unsigned i = 0; i < o->nallow && r == 0; i++)
		r = landlock_allow(l, o->allow[i], o->allow_ro[i] ? LANDLOCK_READ_TREE : LANDLOCK_WRITE_TREE, false, e);
	return r;
}

void confine_preload(const struct run_options *o, struct confine *c)
{
	if (o->api_sock)
		c->libs[0] = dynlib_preload("libmicrohttpd.so.12");
	c->libs[1] = dynlib_preload("libgnutls.so.30");
}

void confine_release(struct confine *c)
{
	for (unsigned i = 0; i < sizeof(c->libs) / sizeof(c->libs[0]); i++)
		dynlib_close(c->libs[i]);
}
