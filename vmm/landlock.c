/* SPDX-License-Identifier: MIT */
/* vmm/landlock.c - see landlock.h. The raw system calls: glibc 2.36 has
 * no wrappers. */
#include "vmm/landlock.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* (rights newer than the build's headers: their values are ABI) */
#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif

#define FS_V1 ((1ULL << 13) - 1) /* execute .. make_sym */

/* What each ABI version handles (index: version). */
static const uint64_t handled_by_abi[] = {
	0,
	FS_V1,
	FS_V1 | LANDLOCK_ACCESS_FS_REFER,
	FS_V1 | LANDLOCK_ACCESS_FS_REFER | LANDLOCK_ACCESS_FS_TRUNCATE,
	FS_V1 | LANDLOCK_ACCESS_FS_REFER | LANDLOCK_ACCESS_FS_TRUNCATE,
	FS_V1 | LANDLOCK_ACCESS_FS_REFER | LANDLOCK_ACCESS_FS_TRUNCATE | LANDLOCK_ACCESS_FS_IOCTL_DEV,
};

#define FILE_READ (LANDLOCK_ACCESS_FS_READ_FILE)
#define FILE_RW                                                                                              \
	(LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_TRUNCATE |          \
	 LANDLOCK_ACCESS_FS_IOCTL_DEV)
#define TREE_READ (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define TREE_WRITE                                                                                           \
	(TREE_READ | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_TRUNCATE |                            \
	 LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_DIR |        \
	 LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_REFER)

static const uint64_t access_rights[] = {
	[LANDLOCK_READ_FILE] = FILE_READ,
	[LANDLOCK_RW_FILE] = FILE_RW,
	[LANDLOCK_READ_TREE] = TREE_READ,
	[LANDLOCK_WRITE_TREE] = TREE_WRITE,
};

int landlock_allow(struct landlock *l, const char *path, enum landlock_access access, bool optional,
		   struct err *e)
{
	if (l->n >= LANDLOCK_MAX_PATHS)
		return err_set(e, -E2BIG, "--landlock: more than %d paths", LANDLOCK_MAX_PATHS);
	l->paths[l->n++] = (struct landlock_path){ .path = path, .access = access, .optional = optional };
	return 0;
}

int landlock_abi(void)
{
	long v = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);

	return v < 0 ? 0 : (int)v;
}

/* One path's rule: its rights, less what a file (not a directory) cannot
 * carry and what this kernel does not handle. */
static int add_path(int ruleset, const struct landlock_path *p, uint64_t handled, struct err *e)
{
	struct landlock_path_beneath_attr attr = { .allowed_access = access_rights[p->access] & handled };
	struct stat st;
	int fd = open(p->path, O_PATH | O_CLOEXEC);
	int r = 0;

	if (fd < 0) {
		if (p->optional && errno == ENOENT)
			return 0;
		return err_errno(e, -errno, "--landlock: '%s'", p->path);
	}
	if (fstat(fd, &st) < 0) {
		r = err_errno(e, -errno, "--landlock: '%s'", p->path);
		goto out;
	}
	if (!S_ISDIR(st.st_mode))
		attr.allowed_access &= LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |
				       LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_TRUNCATE |
				       LANDLOCK_ACCESS_FS_IOCTL_DEV;
	attr.parent_fd = fd;
	if (syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &attr, 0) < 0)
		r = err_errno(e, -errno, "--landlock: a rule for '%s'", p->path);
out:
	close(fd);
	return r;
}

int landlock_restrict(const struct landlock *l, struct err *e)
{
	int abi = landlock_abi();
	int nabi = (int)(sizeof(handled_by_abi) / sizeof(handled_by_abi[0]));
	struct landlock_ruleset_attr attr = { 0 };
	int ruleset, r = 0;

	if (abi <= 0)
		return err_set(e, -EOPNOTSUPP, "--landlock: this kernel has no Landlock (not built, or not in its "
					       "lsm= list)");
	attr.handled_access_fs = handled_by_abi[abi < nabi ? abi : nabi - 1];
	ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
	if (ruleset < 0)
		return err_errno(e, -errno, "--landlock: creating the ruleset");
	for (unsigned i = 0; i < l->n && r == 0; i++)
		r = add_path(ruleset, &l->paths[i], attr.handled_access_fs, e);
	if (r == 0 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		r = err_errno(e, -errno, "--landlock: no_new_privs");
	if (r == 0 && syscall(SYS_landlock_restrict_self, ruleset, 0) < 0)
		r = err_errno(e, -errno, "--landlock: restricting the process");
	close(ruleset);
	return r;
}
