/* SPDX-License-Identifier: MIT */
/*
 * vmm/dynlib.h - a library loaded only by the code that needs it. The
 * process that runs a guest maps only what it uses: the control API's
 * HTTP server library (and the TLS library tree it brings) only with
 * --api-sock, the HTTP client's only in the client commands, GnuTLS only
 * for a migration with --tls-dir (migrate/tls.c).
 */
#ifndef TERN_VMM_DYNLIB_H
#define TERN_VMM_DYNLIB_H

#include <stddef.h>

#include "vmm/util.h"

/* One function the caller needs: its name, and where in the caller's
 * struct of function pointers it goes (offsetof). */
struct dynlib_sym {
	const char *name;
	size_t offset;
};

/* Opens soname (a Debian package's library: package names it in the
 * error) and stores each symbol's address into fns + offset. The handle
 * for dynlib_close(), or NULL with e set. */
void *dynlib_open(const char *soname, const char *package, const struct dynlib_sym *syms, size_t n, void *fns,
		  struct err *e);
void dynlib_close(void *handle);

/* Maps soname now, while its files may still be opened (before a
 * Landlock restriction), so that a later dynlib_open() of it finds it
 * loaded; the handle for dynlib_close(), or NULL if it is not installed
 * (dynlib_open() says so when it is needed). */
void *dynlib_preload(const char *soname);

#endif
