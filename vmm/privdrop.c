/* SPDX-License-Identifier: MIT */
/* vmm/privdrop.c - see privdrop.h. */
#include "vmm/privdrop.h"

#include <cap-ng.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

/* A decimal id, below the (uid_t)-1 that set*id calls take for "unchanged". */
static bool parse_number(const char *s, unsigned long *out)
{
	char *end;

	if (!*s || strspn(s, "0123456789") != strlen(s))
		return false;
	errno = 0;
	*out = strtoul(s, &end, 10);
	return errno == 0 && *out < UINT_MAX;
}

static int resolve_user(const char *name, struct privdrop *p, bool *has_group, struct err *e)
{
	struct passwd pw, *found = NULL;
	char buf[4096];
	unsigned long n;

	if (parse_number(name, &n)) {
		p->uid = (uid_t)n;
		if (getpwuid_r(p->uid, &pw, buf, sizeof(buf), &found) == 0 && found) {
			p->gid = found->pw_gid;
			*has_group = true;
		}
		return 0;
	}
	if (getpwnam_r(name, &pw, buf, sizeof(buf), &found) != 0 || !found)
		return err_set(e, -ENOENT, "--user: no user '%s' on this host", name);
	p->uid = found->pw_uid;
	p->gid = found->pw_gid;
	*has_group = true;
	return 0;
}

static int resolve_group(const char *name, struct privdrop *p, struct err *e)
{
	struct group gr, *found = NULL;
	char buf[4096];
	unsigned long n;

	if (parse_number(name, &n)) {
		p->gid = (gid_t)n;
		return 0;
	}
	if (getgrnam_r(name, &gr, buf, sizeof(buf), &found) != 0 || !found)
		return err_set(e, -ENOENT, "--user: no group '%s' on this host", name);
	p->gid = found->gr_gid;
	return 0;
}

int privdrop_parse(const char *spec, struct privdrop *p, struct err *e)
{
	char user[64];
	const char *colon = strchr(spec, ':');
	size_t ulen = colon ? (size_t)(colon - spec) : strlen(spec);
	bool has_group = false;
	int r;

	memset(p, 0, sizeof(*p));
	if (ulen == 0 || ulen >= sizeof(user) || strlen(spec) >= sizeof(p->spec))
		return err_set(e, -EINVAL, "--user: '%s' is not USER[:GROUP]", spec);
	memcpy(user, spec, ulen);
	user[ulen] = 0;
	if ((r = resolve_user(user, p, &has_group, e)) < 0)
		return r;
	if (colon && (r = resolve_group(colon + 1, p, e)) < 0)
		return r;
	if (!colon && !has_group)
		return err_set(e, -EINVAL, "--user: uid %u has no entry on this host to take its group from: "
					   "give one (--user %u:GROUP)", (unsigned)p->uid, (unsigned)p->uid);
	if (p->uid == 0 || p->gid == 0)
		return err_set(e, -EINVAL, "--user: '%s' is root (uid or gid 0): name an unprivileged user", spec);
	snprintf(p->spec, sizeof(p->spec), "%s", spec);
	p->enabled = true;
	return 0;
}

/* Core dumps would write guest memory to disk; the descriptor limit may
 * not be raised again (its hard limit comes down to the soft one). */
static int limit_resources(struct err *e)
{
	struct rlimit none = { 0, 0 }, files;

	if (setrlimit(RLIMIT_CORE, &none) < 0)
		return err_errno(e, -errno, "--user: RLIMIT_CORE");
	if (getrlimit(RLIMIT_NOFILE, &files) == 0) {
		files.rlim_max = files.rlim_cur;
		if (setrlimit(RLIMIT_NOFILE, &files) < 0)
			return err_errno(e, -errno, "--user: RLIMIT_NOFILE");
	}
	return 0;
}

/* What must hold afterwards: these ids everywhere, and root out of reach. */
static int verify_dropped(const struct privdrop *p, struct err *e)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0 || ru != p->uid || eu != p->uid ||
	    su != p->uid || rg != p->gid || eg != p->gid || sg != p->gid)
		return err_set(e, -EPERM, "--user: the ids did not change to %u:%u", (unsigned)p->uid, (unsigned)p->gid);
	if (capng_get_caps_process() != 0 || capng_have_capabilities(CAPNG_SELECT_ALL) != CAPNG_NONE)
		return err_set(e, -EPERM, "--user: capabilities remain after the drop");
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		return err_set(e, -EPERM, "--user: no_new_privs is not set");
	return 0;
}

int privdrop_prepare(const struct privdrop *p, struct err *e)
{
	if (!p || !p->enabled || geteuid() != 0)
		return 0;
	if (capng_get_caps_process() != 0)
		return err_set(e, -EPERM, "--user: cannot read the process's capabilities");
	capng_clear(CAPNG_SELECT_BOUNDS);
	if (capng_apply(CAPNG_SELECT_BOUNDS) != 0)
		return err_set(e, -EPERM, "--user: cannot empty the capability bounding set");
	return 0;
}

int privdrop_apply(const struct privdrop *p, struct err *e)
{
	int r;

	if (!p || !p->enabled)
		return 0;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return err_errno(e, -errno, "--user: no_new_privs");
	if ((r = limit_resources(e)) < 0)
		return r;
	if (geteuid() != 0) {
		/* already unprivileged: only the ids it was given will do */
		if (getuid() != p->uid || getgid() != p->gid)
			return err_set(e, -EPERM, "--user %s: tern runs as uid %u, not as root, and cannot change its ids",
				       p->spec, (unsigned)getuid());
		return verify_dropped(p, e);
	}
	capng_clear(CAPNG_SELECT_ALL);
	/* ids and supplementary groups on every thread (glibc has each make
	 * the calls), then the calling thread's capabilities, bounding set
	 * included, all empty */
	r = capng_change_id((int)p->uid, (int)p->gid, CAPNG_DROP_SUPP_GRP | CAPNG_CLEAR_BOUNDING);
	if (r != 0)
		return err_set(e, -EPERM, "--user: cannot become %s (uid %u, gid %u): libcap-ng step %d failed",
			       p->spec, (unsigned)p->uid, (unsigned)p->gid, r);
#if defined(__SANITIZE_ADDRESS__)
	/* the leak check at exit ptrace-attaches to the process, which a
	 * change of ids made undumpable: only the test build allows it */
	prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
#endif
	return verify_dropped(p, e);
}
