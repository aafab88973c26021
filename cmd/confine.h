/* SPDX-License-Identifier: MIT */
/*
 * cmd/confine.h - the paths a `tern run` may open under --landlock: the
 * ones its options name, with the access each needs (docs/security.md).
 */
#ifndef TERN_CMD_CONFINE_H
#define TERN_CMD_CONFINE_H

#include "cmd/cli.h"
#include "vmm/landlock.h"

#define CONFINE_DIRS 24 /* parent directories derived from options */

struct confine {
	struct landlock rules;
	char dirs[CONFINE_DIRS][4096];
	unsigned ndirs;
	void *libs[2]; /* loaded before the restriction (confine_preload) */
};

/* The rules for o: kernel and initrd (read), the KVM device, /dev/net/tun
 * for TAPs, vhost-vdpa devices and disk images (read and write; read for
 * readonly=on), the directories of the UNIX sockets tern makes (write), a
 * restore's tree and --restore-parents (read), the destination's TLS
 * directory (read), /proc/meminfo (read), and every --landlock-allow. */
int confine_build(const struct run_options *o, struct confine *c, struct err *e);

/* Loads now the libraries tern would load later, which it could not open
 * once restricted: the API's HTTP server (with --api-sock) and GnuTLS
 * (a migration with --tls-dir may be asked for through the API). */
void confine_preload(const struct run_options *o, struct confine *c);
void confine_release(struct confine *c);

#endif
