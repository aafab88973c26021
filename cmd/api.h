/* SPDX-License-Identifier: MIT */
/*
 * cmd/api.h - tern's control API: HTTP/1.1 with JSON bodies on a UNIX
 * socket (docs/api.md), in two layers:
 *
 *   api.c       the handler layer: (method, path, body) -> (status, JSON
 *               reply). Pure: it touches the machine only through a
 *               struct api_ops, so unit tests drive it without KVM, and it
 *               holds every validation rule (the body is hostile input).
 *   api_http.c  the transport: the socket file and libmicrohttpd, which
 *               parses HTTP and hands complete requests to api_handle().
 *
 * The machine side of api_ops is cmd/api_vm.c.
 */
#ifndef TERN_CMD_API_H
#define TERN_CMD_API_H

#include <stddef.h>
#include <stdint.h>

#include "devices/virtio_blk.h"
#include "devices/virtio_net.h"
#include "migrate/migrate.h"
#include "vmm/vm.h"
#include "vmm/sandbox.h"
#include "vmm/util.h"

/* Request bodies larger than this are refused with 413. */
#define API_MAX_BODY (64 * KiB)

enum api_vm_state {
	API_VM_RUNNING,
	API_VM_PAUSED,
	API_VM_STOPPING, /* tern is exiting (shutdown, guest exit, error) */
	API_VM_INCOMING, /* waiting for or receiving a migration: no VM yet */
};

/* What GET /vm reports. Strings belong to the ops' owner and stay valid
 * while the API runs; initrd and cmdline may be NULL. */

struct api_vm_info {
	unsigned nr_nets;
	struct net_info net[VM_MAX_NETS];
	unsigned nr_disks;
	struct disk_info disk[VM_MAX_DISKS];
	unsigned vcpus;
	uint8_t id[16];      /* the VM's id */
	uint64_t memory;     /* bytes */
	const char *kernel;
	const char *initrd;
	const char *cmdline;
	uint64_t uptime_ms;  /* since the vCPUs were started */
	enum api_vm_state state;
};

/* PUT /vm/snapshot's body, validated: path is non-empty, NUL-free and
 * shorter than PATH_MAX. */
struct api_snapshot_req {
	const char *path; /* the snapshot directory */
	bool resume;      /* true: the VM runs afterwards; false: it stays paused */
	bool diff;        /* "type": "diff": only pages dirtied since the last snapshot */
	uint64_t pages;   /* out: pages written to the memory file */
};

/*
 * The machine as the API sees it. Every hook runs on the API's one thread,
 * one request at a time, so hooks are serialised with each other (which is
 * what vm_pause()/vm_resume() ask of their callers). Hooks that can fail
 * return 0 or -errno with e set; the errno picks the HTTP status
 * (api_status_for_errno()) and e's message becomes {"error": ...}.
 */
struct api_ops {
	void (*info)(void *opaque, struct api_vm_info *info);
	enum api_vm_state (*state)(void *opaque);
	/* Both idempotent; return once the new state holds. */
	int (*pause)(void *opaque, struct err *e);
	int (*resume)(void *opaque, struct err *e);
	/* Called once the reply to PUT /vm/shutdown has been sent: tern then
	 * exits with status 0. */
	void (*shutdown)(void *opaque);
	/* Writes a snapshot to req->path and leaves the VM running or paused
	 * as req->resume says. NULL while snapshots are not implemented: the
	 * endpoint then answers 501. */
	int (*snapshot)(void *opaque, struct api_snapshot_req *req, struct err *e);
	/* Live migration (migrate/migrate.h). NULL: the endpoints answer 501.
	 * migrate starts one and returns; migration copies the progress (and
	 * with results marks a completed migration's results as read). */
	int (*migrate)(void *opaque, const struct mig_params *p, struct err *e);
	int (*migrate_cancel)(void *opaque, struct err *e);
	void (*migration)(void *opaque, struct mig_progress *out, bool results);
};

/* One reply of the handler layer. */
struct api_reply {
	unsigned status;     /* HTTP status code */
	char *body;          /* malloc'd JSON text (never NULL after success) */
	const char *allow;   /* with 405: the Allow header's value */
	bool shutdown_after; /* call ops->shutdown once the reply is sent */
};

/*
 * Handles one complete request: method and path as sent (path without the
 * query string), body of len bytes (need not be NUL-terminated; len may be
 * 0, or API_MAX_BODY + 1 to say "the body was too large"). Fills *out,
 * whose body the caller frees with api_reply_release(). Returns 0, or
 * -ENOMEM when no reply could be built.
 */
int api_handle(const struct api_ops *ops, void *opaque, const char *method, const char *path,
	       const char *body, size_t len, struct api_reply *out);
void api_reply_release(struct api_reply *r);
/* The reply for a failure whose message is msg: {"error": msg}. 0 or -ENOMEM. */
int api_reply_error(struct api_reply *r, unsigned status, const char *msg);
/* HTTP status for a hook's -errno: 400 for a bad argument (EINVAL, ENOENT,
 * EEXIST, ENOTDIR, EISDIR, EACCES, EPERM, ENAMETOOLONG, EROFS), 409 for a
 * conflict with the VM's state (EBUSY, EALREADY), 501 for ENOSYS and
 * EOPNOTSUPP, 507 for ENOSPC and EDQUOT, else 500. */
unsigned api_status_for_errno(int err);

/* The transport (api_http.c). */
struct MHD_Daemon;

struct mhd_api;

struct api {
	struct MHD_Daemon *daemon;
	struct mhd_api *mhd; /* the HTTP library, loaded by api_serve() */
	const struct api_ops *ops;
	void *opaque;
	int listen_fd;      /* until api_serve() hands it to MHD */
	char path[108];     /* the socket file (sun_path's size) */
	uint64_t dev, ino;  /* its identity, so api_stop() removes only ours */
	bool bound;         /* path was created by us */
	const struct sandbox *sandbox; /* the server thread's filter, entered on its first connection */
	bool confined;      /* (that thread's alone) it has entered it */
};

/*
 * Creates the UNIX socket at path and listens on it; connections wait in the
 * backlog until api_serve(). An existing socket that nobody listens on (a
 * stale one from a tern that died) is replaced; any other existing file, or
 * a socket in use, is refused. The socket is made mode 0600. 0, or -errno
 * with e set.
 */
int api_open(struct api *api, const char *path, struct err *e);
/*
 * Starts serving requests with ops on a thread of the API's own, which
 * inherits the caller's signal mask. 0, or -errno with e set.
 */
int api_serve(struct api *api, const struct api_ops *ops, void *opaque, struct err *e);
/* Stops serving (waiting for a request in progress) and removes the socket
 * file if it is still ours. Idempotent; safe after a failed api_open() and
 * on a zeroed struct api. */
void api_stop(struct api *api);

#endif
