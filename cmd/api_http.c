/* SPDX-License-Identifier: MIT */
/*
 * cmd/api_http.c - the control API's transport: the UNIX socket file and
 * libmicrohttpd (MHD) serving HTTP/1.1 on it.
 *
 * Threading: MHD runs its own polling thread (MHD_USE_INTERNAL_POLLING_THREAD,
 * not thread-per-connection), so requests are handled one at a time on that
 * thread. That serialises the api_ops hooks with each other for free, keeps
 * MHD's connection timeouts working (tern's io_uring loop has no timers), and
 * lets a slow hook (a snapshot) run without stalling the console and signal
 * handling on the main thread. The main thread only starts and stops the
 * server; a shutdown request reaches it through ops->shutdown, which for a VM
 * is vm_request_exit() (thread-safe, wakes the event loop).
 *
 * Limits (hostile clients): at most API_MAX_CONNS connections, idle ones
 * closed after API_IDLE_TIMEOUT_S, request headers bounded by MHD's
 * per-connection memory pool, bodies by API_MAX_BODY. A body over the cap
 * is read and discarded, then refused with 413, so that a client which sends
 * its whole body before reading sees the 413 rather than a broken pipe; the
 * connection is dropped once a body goes past API_DISCARD_LIMIT. A declared
 * Content-Length over the cap is refused at once, before the body is read,
 * when the client waits for "100 Continue" or when it is over
 * API_DISCARD_LIMIT.
 */
#include "cmd/api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <microhttpd.h>

#include "vmm/dynlib.h"

/* libmicrohttpd, loaded when a server starts (vmm/dynlib.h): Debian's
 * links GnuTLS and its tree, which a VMM without --api-sock never maps. */
struct mhd_api {
	void *lib;
	struct MHD_Daemon *(*start_daemon)(unsigned flags, uint16_t port, MHD_AcceptPolicyCallback apc, void *apc_cls,
					   MHD_AccessHandlerCallback dh, void *dh_cls, ...);
	void (*stop_daemon)(struct MHD_Daemon *d);
	struct MHD_Response *(*create_response_from_buffer)(size_t size, void *buffer, enum MHD_ResponseMemoryMode mode);
	enum MHD_Result (*add_response_header)(struct MHD_Response *r, const char *header, const char *content);
	enum MHD_Result (*queue_response)(struct MHD_Connection *c, unsigned status, struct MHD_Response *r);
	void (*destroy_response)(struct MHD_Response *r);
	const char *(*lookup_connection_value)(struct MHD_Connection *c, enum MHD_ValueKind kind, const char *key);
};

#define MHD_SYM(f) { "MHD_" #f, offsetof(struct mhd_api, f) }
static const struct dynlib_sym mhd_syms[] = {
	MHD_SYM(start_daemon),		MHD_SYM(stop_daemon),	 MHD_SYM(create_response_from_buffer),
	MHD_SYM(add_response_header),	MHD_SYM(queue_response), MHD_SYM(destroy_response),
	MHD_SYM(lookup_connection_value),
};

#define API_MAX_CONNS 16
#define API_IDLE_TIMEOUT_S 30
#define API_LISTEN_BACKLOG 16
#define API_DISCARD_LIMIT (16 * API_MAX_BODY)

/* One request in progress (MHD's per-request context). */
struct api_request {
	char *body;          /* the body while within API_MAX_BODY */
	size_t kept;         /* bytes in body */
	size_t seen;         /* all body bytes received, kept or not */
	bool too_large;      /* over API_MAX_BODY: discarding */
	bool replied;        /* a reply was queued before the body ended */
	bool shutdown_after; /* the reply was to PUT /vm/shutdown */
};

static const char oom_reply[] = "{\"error\":\"tern is out of memory\"}";

/* ---- the socket file -------------------------------------------------------------- */

/* Is someone accepting connections on the socket at path? 1 yes, 0 no (a
 * stale file), or -errno when that cannot be told. */
static int socket_in_use(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int r;

	if (fd < 0)
		return -errno;
	r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	if (r == 0)
		r = 1;
	else if (errno == ECONNREFUSED)
		r = 0;
	else
		r = -errno;
	close(fd);
	return r;
}

int api_open(struct api *api, const char *path, struct err *e)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = strlen(path);
	struct stat st;
	int fd, r;

	memset(api, 0, sizeof(*api));
	api->listen_fd = -1;
	if (len == 0 || len >= sizeof(sa.sun_path))
		return err_set(e, -ENAMETOOLONG, "--api-sock: the path must be 1 to %zu bytes long",
			       sizeof(sa.sun_path) - 1);
	memcpy(sa.sun_path, path, len + 1);

	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return err_set(e, -EEXIST, "--api-sock: '%s' exists and is not a socket", path);
		r = socket_in_use(&sa);
		if (r > 0)
			return err_set(e, -EADDRINUSE, "--api-sock: '%s' is in use by another process", path);
		if (r < 0)
			return err_errno(e, r, "--api-sock: cannot check the existing socket '%s'", path);
		/* stale: left behind by a tern that did not exit cleanly */
		if (unlink(path) < 0)
			return err_errno(e, -errno, "--api-sock: cannot remove the stale socket '%s'", path);
	} else if (errno != ENOENT) {
		return err_errno(e, -errno, "--api-sock: '%s'", path);
	}

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return err_errno(e, -errno, "--api-sock: socket");
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = err_errno(e, -errno, "--api-sock: cannot create '%s'", path);
		goto err_close;
	}
	/* The API controls the VM: only our user may connect. Nobody can
	 * connect before listen(), so setting the mode after bind() is safe. */
	if (chmod(path, 0600) < 0 || stat(path, &st) < 0) {
		r = err_errno(e, -errno, "--api-sock: '%s'", path);
		goto err_unlink;
	}
	if (listen(fd, API_LISTEN_BACKLOG) < 0) {
		r = err_errno(e, -errno, "--api-sock: listen on '%s'", path);
		goto err_unlink;
	}
	memcpy(api->path, path, len + 1);
	api->dev = st.st_dev;
	api->ino = st.st_ino;
	api->bound = true;
	api->listen_fd = fd;
	return 0;

err_unlink:
	unlink(path);
err_close:
	close(fd);
	return r;
}

/* ---- MHD callbacks ---------------------------------------------------------------- */

static enum MHD_Result queue(const struct mhd_api *m, struct MHD_Connection *conn, struct api_request *req,
			     const struct api_reply *r)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	unsigned status = 500;

	if (r && r->body)
		resp = m->create_response_from_buffer(strlen(r->body), r->body, MHD_RESPMEM_MUST_COPY);
	else
		resp = m->create_response_from_buffer(sizeof(oom_reply) - 1, (void *)oom_reply,
						       MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return MHD_NO;
	if (r && r->body)
		status = r->status;
	ret = m->add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	if (ret == MHD_YES && r && r->body && r->allow)
		ret = m->add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
	if (ret == MHD_YES)
		ret = m->queue_response(conn, status, resp);
	m->destroy_response(resp);
	if (ret == MHD_YES) {
		req->replied = true;
		req->shutdown_after = r && r->body && r->shutdown_after;
	}
	return ret;
}

/* Handles the request through the handler layer and queues its reply. */
static enum MHD_Result answer(struct api *api, struct MHD_Connection *conn, struct api_request *req,
			      const char *method, const char *url)
{
	struct api_reply reply;
	enum MHD_Result ret;
	int r;

	size_t len = req->kept;
	if (req->too_large)
		len = req->seen > API_MAX_BODY ? req->seen : API_MAX_BODY + 1;
	r = api_handle(api->ops, api->opaque, method, url, req->too_large ? NULL : req->body, len, &reply);
	ret = queue(api->mhd, conn, req, r < 0 ? NULL : &reply);
	api_reply_release(&reply);
	return ret;
}

static enum MHD_Result api_access(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	struct api *api = cls;
	struct api_request *req = *con_cls;
	size_t n = *upload_data_size;

	(void)version;
	if (!req) {
		/* First call: headers only. */
		const char *cl = api->mhd->lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		const char *expect = api->mhd->lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
		uint64_t declared;

		req = calloc(1, sizeof(*req));
		if (!req)
			return MHD_NO;
		*con_cls = req;
		if (cl && parse_u64(cl, 0, UINT64_MAX, &declared) == 0 && declared > API_MAX_BODY) {
			req->too_large = true;
			/* Answering now, MHD sends no 100 Continue and
			 * closes the connection after the reply. */
			if ((expect && !strcasecmp(expect, "100-continue")) || declared > API_DISCARD_LIMIT) {
				req->seen = declared > SIZE_MAX ? SIZE_MAX : (size_t)declared;
				return answer(api, conn, req, method, url);
			}
		}
		return MHD_YES;
	}
	if (n) {
		*upload_data_size = 0;
		if (req->replied)
			return MHD_YES;
		req->seen = req->seen + n < n ? SIZE_MAX : req->seen + n;
		if (req->too_large || req->kept + n > API_MAX_BODY) {
			/* over the cap: keep counting, keep nothing */
			req->too_large = true;
			free(req->body);
			req->body = NULL;
			return req->seen > API_DISCARD_LIMIT ? MHD_NO : MHD_YES;
		}
		if (!req->body) {
			req->body = malloc(API_MAX_BODY);
			if (!req->body)
				return MHD_NO;
		}
		memcpy(req->body + req->kept, upload_data, n);
		req->kept += n;
		return MHD_YES;
	}
	if (req->replied)
		return MHD_YES;
	return answer(api, conn, req, method, url);
}

/* The server's thread confines itself when its first connection starts:
 * after the accept, before it reads a byte of the request. */
static void api_connection(void *cls, struct MHD_Connection *conn, void **socket_ctx,
			   enum MHD_ConnectionNotificationCode toe)
{
	struct api *api = cls;

	(void)conn;
	(void)socket_ctx;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED && !api->confined) {
		sandbox_enter_thread(api->sandbox, SANDBOX_API, "api");
		api->confined = true;
	}
}

static void api_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			  enum MHD_RequestTerminationCode toe)
{
	struct api *api = cls;
	struct api_request *req = *con_cls;

	(void)conn;
	(void)toe;
	if (!req)
		return;
	/* Shut down even if the client left before reading the reply: the
	 * request was accepted. */
	if (req->shutdown_after)
		api->ops->shutdown(api->opaque);
	free(req->body);
	free(req);
	*con_cls = NULL;
}

static void api_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void api_log(void *cls, const char *fmt, va_list ap)
{
	char msg[256];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	pr_debug("api: %s", msg);
}

/* ---- life cycle --------------------------------------------------------------------- */

int api_serve(struct api *api, const struct api_ops *ops, void *opaque, struct err *e)
{
	if (api->listen_fd < 0 || api->daemon)
		return err_set(e, -EINVAL, "api: no socket to serve on");
	api->ops = ops;
	api->opaque = opaque;
	if (!api->mhd) {
		struct mhd_api *m = calloc(1, sizeof(*m));
		if (!m)
			return err_set(e, -ENOMEM, "api: out of memory");
		m->lib = dynlib_open("libmicrohttpd.so.12", "libmicrohttpd12", mhd_syms, ARRAY_SIZE(mhd_syms), m, e);
		if (!m->lib) {
			free(m);
			return -ENOENT;
		}
		api->mhd = m;
	}
	/* MHD owns the listening socket from here: MHD_stop_daemon() closes it. */
	api->daemon = api->mhd->start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC |
					       MHD_USE_ERROR_LOG,
				       0, NULL, NULL, api_access, api,
				       /* first, or MHD logs the options before it by itself */
				       MHD_OPTION_EXTERNAL_LOGGER, api_log, api,
				       MHD_OPTION_LISTEN_SOCKET, api->listen_fd,
				       MHD_OPTION_CONNECTION_LIMIT, (unsigned)API_MAX_CONNS,
				       MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)API_IDLE_TIMEOUT_S,
				       MHD_OPTION_STRICT_FOR_CLIENT, 1,
				       MHD_OPTION_NOTIFY_COMPLETED, api_completed, api,
				       MHD_OPTION_NOTIFY_CONNECTION, api_connection, api,
				       MHD_OPTION_END);
	if (!api->daemon)
		return err_set(e, -EIO, "api: cannot start the HTTP server on '%s'", api->path);
	api->listen_fd = -1;
	return 0;
}

void api_stop(struct api *api)
{
	struct stat st;

	if (api->daemon)
		api->mhd->stop_daemon(api->daemon);
	api->daemon = NULL;
	if (api->mhd) {
		dynlib_close(api->mhd->lib);
		free(api->mhd);
		api->mhd = NULL;
	}
	if (api->bound && api->listen_fd >= 0)
		close(api->listen_fd);
	api->listen_fd = -1;
	/* Remove the file only if it is still the socket we made: another
	 * tern may have replaced it since. */
	if (api->bound && lstat(api->path, &st) == 0 && st.st_dev == api->dev && st.st_ino == api->ino)
		unlink(api->path);
	api->bound = false;
}
