/* SPDX-License-Identifier: MIT */
/*
 * cmd/api.c - the control API's handler layer (see api.h): routing, request
 * validation and the JSON replies. No HTTP and no KVM here.
 *
 * Request bodies are hostile input (docs/reliability-targets.md, A6). They
 * are parsed by json-c in strict mode with UTF-8 validation and a nesting
 * limit; a body must be one JSON object and nothing after it, every member
 * must be known to the endpoint and of the right type, and every string is
 * checked for embedded NULs and length before it reaches a hook.
 */
#include "cmd/api.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cmd/cli.h"

/* Deep enough for any body we accept; deeper input is refused early. */
#define API_JSON_DEPTH 8
/* Field names quoted in error messages are cut to this many bytes. */
#define API_NAME_SHOWN 64

struct api_call {
	const struct api_ops *ops;
	void *opaque;
	struct json_object *body; /* the parsed body, or NULL when empty */
	struct api_reply *reply;
};

typedef int (*api_handler)(struct api_call *c);

/* ---- replies ----------------------------------------------------------------- */

void api_reply_release(struct api_reply *r)
{
	free(r->body);
	r->body = NULL;
}

/* Takes ownership of obj. */
static int reply_json(struct api_reply *r, unsigned status, struct json_object *obj)
{
	const char *text;
	int ret = -ENOMEM;

	if (!obj)
		return -ENOMEM;
	text = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (text) {
		free(r->body);
		r->body = strdup(text);
		if (r->body) {
			r->status = status;
			ret = 0;
		}
	}
	json_object_put(obj);
	return ret;
}

int api_reply_error(struct api_reply *r, unsigned status, const char *msg)
{
	struct json_object *o = json_object_new_object();

	if (!o)
		return -ENOMEM;
	if (json_object_object_add(o, "error", json_object_new_string(msg)) < 0) {
		json_object_put(o);
		return -ENOMEM;
	}
	return reply_json(r, status, o);
}

static int reply_errorf(struct api_reply *r, unsigned status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int reply_errorf(struct api_reply *r, unsigned status, const char *fmt, ...)
{
	char msg[384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return api_reply_error(r, status, msg);
}

unsigned api_status_for_errno(int err)
{
	switch (err < 0 ? -err : err) {
	case EINVAL:
	case ENOENT:
	case EEXIST:
	case ENOTDIR:
	case EISDIR:
	case EACCES:
	case EPERM:
	case ENAMETOOLONG:
	case EROFS:
		return 400;
	case EBUSY:
	case EALREADY:
		return 409;
	case ENOSYS:
	case EOPNOTSUPP:
		return 501;
	case ENOSPC:
	case EDQUOT:
		return 507;
	default:
		return 500;
	}
}

/* A hook failed with err: its message, or strerror when it left none. */
static int reply_hook_error(struct api_reply *r, int err, const struct err *e, const char *what)
{
	if (e->msg[0])
		return api_reply_error(r, api_status_for_errno(err), e->msg);
	return reply_errorf(r, api_status_for_errno(err), "%s: %s", what, strerror(err < 0 ? -err : err));
}

static const char *state_name(enum api_vm_state s)
{
	switch (s) {
	case API_VM_RUNNING:
		return "running";
	case API_VM_PAUSED:
		return "paused";
	case API_VM_STOPPING:
		return "stopping";
	case API_VM_INCOMING:
		return "incoming";
	}
	return "unknown";
}

static int reply_state(struct api_reply *r, enum api_vm_state s)
{
	struct json_object *o = json_object_new_object();

	if (o && json_object_object_add(o, "state", json_object_new_string(state_name(s))) < 0) {
		json_object_put(o);
		o = NULL;
	}
	return reply_json(r, 200, o);
}

/* ---- body validation ---------------------------------------------------------- */

/* A field name from the client, fit for a one-line message: at most
 * API_NAME_SHOWN bytes, anything but printable ASCII shown as '?'. */
static void shown_name(const char *name, char out[API_NAME_SHOWN + 4])
{
	size_t i;

	for (i = 0; name[i] && i < API_NAME_SHOWN; i++)
		out[i] = (name[i] >= 0x20 && name[i] < 0x7f) ? name[i] : '?';
	if (name[i]) {
		memcpy(out + i, "...", 3);
		i += 3;
	}
	out[i] = '\0';
}

/*
 * Parses body as a single JSON object into *obj (NULL for an empty body when
 * empty_ok). On a bad body, fills the 400 reply and returns 1; 0 on success;
 * -ENOMEM.
 */
static int parse_body(const char *body, size_t len, bool empty_ok, struct json_object **obj, struct api_reply *r)
{
	struct json_tokener *tok;
	enum json_tokener_error jerr;
	char *copy;
	size_t end;
	int ret;

	*obj = NULL;
	if (len == 0) {
		if (empty_ok)
			return 0;
		ret = api_reply_error(r, 400, "this request needs a JSON object body");
		return ret < 0 ? ret : 1;
	}
	/* json-c reads a NUL as the end of input; a body with one is not JSON. */
	if (memchr(body, '\0', len)) {
		ret = api_reply_error(r, 400, "malformed JSON: the body contains a NUL byte");
		return ret < 0 ? ret : 1;
	}
	copy = malloc(len + 1);
	tok = json_tokener_new_ex(API_JSON_DEPTH);
	if (!copy || !tok) {
		free(copy);
		if (tok)
			json_tokener_free(tok);
		return -ENOMEM;
	}
	memcpy(copy, body, len);
	copy[len] = '\0';
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	/* len + 1: the terminating NUL tells json-c the input is complete. */
	*obj = json_tokener_parse_ex(tok, copy, (int)(len + 1));
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	free(copy);

	if (jerr != json_tokener_success) {
		json_object_put(*obj);
		*obj = NULL;
		if (jerr == json_tokener_continue)
			ret = api_reply_error(r, 400, "malformed JSON: unexpected end of the body");
		else
			ret = reply_errorf(r, 400, "malformed JSON: %s (near byte %zu)", json_tokener_error_desc(jerr),
					   end);
		return ret < 0 ? ret : 1;
	}
	/* a JSON null parses to a NULL object */
	if (!*obj || !json_object_is_type(*obj, json_type_object)) {
		json_object_put(*obj);
		*obj = NULL;
		ret = api_reply_error(r, 400, "the body must be a JSON object");
		return ret < 0 ? ret : 1;
	}
	return 0;
}

/* 400 naming the first member of obj not in known[] (NULL-terminated).
 * 1 when there was one (reply filled), 0 when all are known, or -ENOMEM. */
static int reject_unknown(struct json_object *obj, const char *const *known, struct api_reply *r)
{
	if (!obj)
		return 0;
	json_object_object_foreach(obj, key, val) {
		const char *const *k;
		char shown[API_NAME_SHOWN + 4];
		int ret;

		(void)val;
		for (k = known; *k && strcmp(*k, key); k++)
			;
		if (*k)
			continue;
		shown_name(key, shown);
		ret = reply_errorf(r, 400, "unknown field '%s'", shown);
		return ret < 0 ? ret : 1;
	}
	return 0;
}

static const char *const no_fields[] = { NULL };

/* ---- handlers ------------------------------------------------------------------ */

/* A control-queue state as JSON (NULL if there is none). */
static struct json_object *ctrl_json(const struct net_ctrl_info *c)
{
	static const char *const modes[] = { "promisc", "allmulti", "alluni", "nomulti", "nouni", "nobcast" };
	static const char *const rss_modes[] = { "off", "steer", "hash" };
	struct json_object *o, *rx, *rss, *t;
	char mac[18];
	int bad = 0;

	if (!c->valid || !(o = json_object_new_object()))
		return NULL;
	snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", c->mac[0], c->mac[1], c->mac[2], c->mac[3],
		 c->mac[4], c->mac[5]);
	bad |= json_object_object_add(o, "mac", json_object_new_string(mac));
	bad |= json_object_object_add(o, "rx", rx = json_object_new_array()) || !rx;
	for (unsigned m = 0; rx && m < 6; m++)
		if (c->rx & (1u << m))
			bad |= json_object_array_add(rx, json_object_new_string(modes[m]));
	bad |= json_object_object_add(o, "unicast", json_object_new_int64(c->uni));
	bad |= json_object_object_add(o, "multicast", json_object_new_int64(c->multi));
	bad |= json_object_object_add(o, "unicast_overflow", json_object_new_boolean(c->uni_overflow));
	bad |= json_object_object_add(o, "multicast_overflow", json_object_new_boolean(c->multi_overflow));
	bad |= json_object_object_add(o, "vlans", json_object_new_int64(c->vlans));
	bad |= json_object_object_add(o, "pairs", json_object_new_int64(c->pairs));
	bad |= json_object_object_add(o, "offloads", json_object_new_uint64(c->offloads));
	bad |= json_object_object_add(o, "rss", rss = json_object_new_object()) || !rss;
	if (rss) {
		bad |= json_object_object_add(rss, "mode", json_object_new_string(rss_modes[c->rss_mode % 3]));
		bad |= json_object_object_add(rss, "hash_types", json_object_new_int64(c->hash_types));
		bad |= json_object_object_add(rss, "unclassified", json_object_new_int64(c->rss_unclassified));
		bad |= json_object_object_add(rss, "table", t = json_object_new_array()) || !t;
		for (unsigned i = 0; t && i < c->rss_table_len && i < 128; i++)
			bad |= json_object_array_add(t, json_object_new_int64(c->rss_table[i]));
	}
	if (bad) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static struct json_object *disks_json(const struct api_vm_info *info)
{
	struct json_object *a = json_object_new_array();
	int bad = !a;

	for (unsigned i = 0; a && i < info->nr_disks && i < VM_MAX_DISKS; i++) {
		const struct disk_info *d = &info->disk[i];
		struct json_object *x = json_object_new_object();
		bad |= json_object_array_add(a, x) || !x;
		bad |= json_object_object_add(x, "path", json_object_new_string(d->path));
		bad |= json_object_object_add(x, "readonly", json_object_new_boolean(d->readonly));
		bad |= json_object_object_add(x, "direct", json_object_new_boolean(d->direct));
		bad |= json_object_object_add(x, "size_bytes", json_object_new_uint64(d->size));
		bad |= json_object_object_add(x, "queues", json_object_new_int64(d->queues));
		bad |= json_object_object_add(x, "requests", json_object_new_uint64(d->stats.requests));
		bad |= json_object_object_add(x, "reads", json_object_new_uint64(d->stats.reads));
		bad |= json_object_object_add(x, "writes", json_object_new_uint64(d->stats.writes));
		bad |= json_object_object_add(x, "flushes", json_object_new_uint64(d->stats.flushes));
		bad |= json_object_object_add(x, "errors", json_object_new_uint64(d->stats.errors));
		bad |= json_object_object_add(x, "bad_chains", json_object_new_uint64(d->stats.bad_chains));
	}
	if (bad && a) {
		json_object_put(a);
		return NULL;
	}
	return a;
}

static int handle_info(struct api_call *c)
{
	struct api_vm_info info;
	struct json_object *o;
	int bad = 0;

	memset(&info, 0, sizeof(info));
	c->ops->info(c->opaque, &info);
	o = json_object_new_object();
	if (!o)
		return -ENOMEM;
	bad |= json_object_object_add(o, "version", json_object_new_string(TERN_VERSION));
	bad |= json_object_object_add(o, "state", json_object_new_string(state_name(info.state)));
	if (info.state == API_VM_INCOMING) /* the machine comes with the migration */
		goto done;
	char id[UUID_STR_LEN];
	bad |= json_object_object_add(o, "id", json_object_new_string(uuid_format(info.id, id)));
	bad |= json_object_object_add(o, "vcpus", json_object_new_int64(info.vcpus));
	bad |= json_object_object_add(o, "memory_bytes", json_object_new_uint64(info.memory));
	bad |= json_object_object_add(o, "memory_mib", json_object_new_uint64(info.memory / MiB));
	bad |= json_object_object_add(o, "kernel", info.kernel ? json_object_new_string(info.kernel) : NULL);
	bad |= json_object_object_add(o, "initrd", info.initrd ? json_object_new_string(info.initrd) : NULL);
	bad |= json_object_object_add(o, "cmdline", json_object_new_string(info.cmdline ? info.cmdline : ""));
	bad |= json_object_object_add(o, "uptime_ms", json_object_new_uint64(info.uptime_ms));
	struct json_object *nets = json_object_new_array();
	bad |= json_object_object_add(o, "net", nets);
	for (unsigned i = 0; nets && i < info.nr_nets && i < VM_MAX_NETS; i++) {
		const struct net_info *n = &info.net[i];
		struct json_object *x = json_object_new_object();
		bad |= json_object_array_add(nets, x);
		bad |= json_object_object_add(x, "mode", json_object_new_string(n->mode));
		bad |= json_object_object_add(x, "svq", json_object_new_string(n->svq));
		bad |= json_object_object_add(x, "strategy", json_object_new_int64(n->strategy));
		bad |= json_object_object_add(x, "switches", json_object_new_uint64(n->switches));
		bad |= json_object_object_add(x, "rollbacks", json_object_new_uint64(n->rollbacks));
		bad |= json_object_object_add(x, "recoveries", json_object_new_uint64(n->recoveries));
		bad |= json_object_object_add(x, "blackout_us", json_object_new_uint64(n->blackout_us));
		bad |= json_object_object_add(x, "shadow_maps", json_object_new_int64(n->shadow_maps));
		bad |= json_object_object_add(x, "iotlb_entries", json_object_new_int64(n->iotlb_entries));
		bad |= json_object_object_add(x, "rx_frames", json_object_new_int64(n->rx_frames));
		bad |= json_object_object_add(x, "tx_frames", json_object_new_int64(n->tx_frames));
		bad |= json_object_object_add(x, "ctrl", ctrl_json(&n->ctrl));
		bad |= json_object_object_add(x, "device_ctrl", ctrl_json(&n->device_ctrl));
	}
	struct json_object *disks = disks_json(&info);
	bad |= !disks || json_object_object_add(o, "disks", disks);
done:
	if (bad) {
		json_object_put(o);
		return -ENOMEM;
	}
	return reply_json(c->reply, 200, o);
}

static int handle_status(struct api_call *c)
{
	struct json_object *o = json_object_new_object();
	struct json_object *mig = json_object_new_object();
	int bad = 0;

	if (!o || !mig) {
		json_object_put(o);
		json_object_put(mig);
		return -ENOMEM;
	}
	bad |= json_object_object_add(o, "state", json_object_new_string(state_name(c->ops->state(c->opaque))));
	/* "none" until a migration has been started */
	struct mig_progress p = { .state = MIG_S_NONE };
	if (c->ops->migration)
		c->ops->migration(c->opaque, &p, false);
	bad |= json_object_object_add(mig, "state", json_object_new_string(mig_state_name(p.state)));
	bad |= json_object_object_add(o, "migration", mig);
	if (bad) {
		json_object_put(o);
		return -ENOMEM;
	}
	return reply_json(c->reply, 200, o);
}

/* 409 when the VM is on its way out: nothing can be changed then. */
static int refuse_if_stopping(struct api_call *c)
{
	int ret;

	if (c->ops->state(c->opaque) != API_VM_STOPPING)
		return 0;
	ret = api_reply_error(c->reply, 409, "the VM is stopping");
	return ret < 0 ? ret : 1;
}

static int handle_pause_resume(struct api_call *c, bool pause)
{
	struct err e = { { 0 } };
	int r;

	r = refuse_if_stopping(c);
	if (r)
		return r < 0 ? r : 0;
	r = pause ? c->ops->pause(c->opaque, &e) : c->ops->resume(c->opaque, &e);
	if (r < 0)
		return reply_hook_error(c->reply, r, &e, pause ? "pause" : "resume");
	return reply_state(c->reply, c->ops->state(c->opaque));
}

static int handle_pause(struct api_call *c)
{
	return handle_pause_resume(c, true);
}

static int handle_resume(struct api_call *c)
{
	return handle_pause_resume(c, false);
}

static int handle_shutdown(struct api_call *c)
{
	/* Idempotent: a VM already stopping just goes on stopping. */
	c->reply->shutdown_after = true;
	return reply_state(c->reply, API_VM_STOPPING);
}

static const char *const snapshot_fields[] = { "path", "resume", "type", NULL };

static int handle_snapshot(struct api_call *c)
{
	struct api_snapshot_req req = { .resume = true };
	struct json_object *v, *o;
	struct err e = { { 0 } };
	size_t len;
	int r;

	if (!json_object_object_get_ex(c->body, "path", &v))
		return api_reply_error(c->reply, 400, "field 'path' is required");
	if (!json_object_is_type(v, json_type_string))
		return api_reply_error(c->reply, 400, "field 'path' must be a string");
	req.path = json_object_get_string(v);
	len = (size_t)json_object_get_string_len(v);
	if (len == 0)
		return api_reply_error(c->reply, 400, "field 'path' must not be empty");
	if (strlen(req.path) != len)
		return api_reply_error(c->reply, 400, "field 'path' must not contain a NUL character");
	if (len >= PATH_MAX)
		return reply_errorf(c->reply, 400, "field 'path' is longer than %d bytes", PATH_MAX - 1);
	if (json_object_object_get_ex(c->body, "resume", &v)) {
		if (!json_object_is_type(v, json_type_boolean))
			return api_reply_error(c->reply, 400, "field 'resume' must be true or false");
		req.resume = json_object_get_boolean(v);
	}
	if (json_object_object_get_ex(c->body, "type", &v)) {
		const char *t = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
		if (!t || (strcmp(t, "full") && strcmp(t, "diff")))
			return api_reply_error(c->reply, 400, "field 'type' must be \"full\" or \"diff\"");
		req.diff = !strcmp(t, "diff");
	}

	r = refuse_if_stopping(c);
	if (r)
		return r < 0 ? r : 0;
	if (!c->ops->snapshot)
		return api_reply_error(c->reply, 501, "snapshots are not implemented yet");
	r = c->ops->snapshot(c->opaque, &req, &e);
	if (r < 0)
		return reply_hook_error(c->reply, r, &e, "snapshot");

	o = json_object_new_object();
	if (o && (json_object_object_add(o, "path", json_object_new_string(req.path)) < 0 ||
		  json_object_object_add(o, "type", json_object_new_string(req.diff ? "diff" : "full")) < 0 ||
		  json_object_object_add(o, "pages", json_object_new_int64((int64_t)req.pages)) < 0 ||
		  json_object_object_add(o, "state",
					 json_object_new_string(state_name(c->ops->state(c->opaque)))) < 0)) {
		json_object_put(o);
		o = NULL;
	}
	return reply_json(c->reply, 200, o);
}

/* ---- migration ----------------------------------------------------------------- */

static const char *const migrate_fields[] = { "to",	      "downtime_ms", "bandwidth", "timeout_ms",
					      "max_passes", "copy_disks",  "tls_dir",	"converge",
					      "connections", NULL };

/* An integer field in [min, max], if present. 1 with the 400 reply filled
 * when it is out of range or not an integer; 0 otherwise; -ENOMEM. */
static int int_field(struct api_call *c, const char *name, uint64_t min, uint64_t max, uint64_t *out)
{
	struct json_object *v;
	int ret;

	if (!json_object_object_get_ex(c->body, name, &v))
		return 0;
	if (json_object_is_type(v, json_type_int)) {
		int64_t x = json_object_get_int64(v);
		if (x >= 0 && (uint64_t)x >= min && (uint64_t)x <= max) {
			*out = (uint64_t)x;
			return 0;
		}
	}
	ret = reply_errorf(c->reply, 400, "field '%s' must be an integer from %llu to %llu", name,
			   (unsigned long long)min, (unsigned long long)max);
	return ret < 0 ? ret : 1;
}

static int progress_json(const struct mig_progress *p, struct json_object **out)
{
	struct json_object *o = json_object_new_object(), *passes = json_object_new_array();
	int bad = !o || !passes;

	for (unsigned i = 0; !bad && i < p->npasses && i < MIG_PASS_LOG; i++) {
		struct json_object *x = json_object_new_object();
		bad |= !x;
		bad |= json_object_object_add(x, "pages", json_object_new_uint64(p->passes[i].pages));
		bad |= json_object_object_add(x, "bytes", json_object_new_uint64(p->passes[i].bytes));
		bad |= json_object_object_add(x, "ms", json_object_new_uint64(p->passes[i].ms));
		bad |= json_object_array_add(passes, x);
	}
	bad |= json_object_object_add(o, "state", json_object_new_string(mig_state_name(p->state)));
	if (p->state != MIG_S_NONE) {
		bad |= json_object_object_add(o, "to", json_object_new_string(p->to));
		bad |= json_object_object_add(o, "pass", json_object_new_int64(p->pass));
		bad |= json_object_object_add(o, "ram_pages", json_object_new_uint64(p->ram_pages));
		bad |= json_object_object_add(o, "pages_sent", json_object_new_uint64(p->pages_sent));
		bad |= json_object_object_add(o, "bytes_sent", json_object_new_uint64(p->bytes_sent));
		bad |= json_object_object_add(o, "remaining_pages", json_object_new_uint64(p->remaining_pages));
		bad |= json_object_object_add(o, "bandwidth_bps", json_object_new_uint64((uint64_t)p->bandwidth));
		bad |= json_object_object_add(o, "dirty_pages_per_s", json_object_new_uint64((uint64_t)p->dirty_rate));
		bad |= json_object_object_add(o, "eta_ms", json_object_new_uint64(p->eta_ms));
		bad |= json_object_object_add(o, "elapsed_ms", json_object_new_uint64(p->elapsed_ms));
		bad |= json_object_object_add(o, "throttle_pct", json_object_new_int64(p->throttle_pct));
		bad |= json_object_object_add(o, "connections", json_object_new_int64(p->connections));
		bad |= json_object_object_add(o, "copy_disks", json_object_new_boolean(p->copy_disks));
		if (p->copy_disks) {
			bad |= json_object_object_add(o, "disk_bytes", json_object_new_uint64(p->disk_bytes));
			bad |= json_object_object_add(o, "disk_sent_bytes", json_object_new_uint64(p->disk_sent));
			bad |= json_object_object_add(o, "disk_remaining_bytes", json_object_new_uint64(p->disk_remaining));
		}
		if (p->state == MIG_S_COMPLETED) {
			bad |= json_object_object_add(o, "total_ms", json_object_new_uint64(p->total_ms));
			bad |= json_object_object_add(o, "downtime_ms", json_object_new_uint64(p->downtime_ms));
		}
		if (p->error[0])
			bad |= json_object_object_add(o, "error", json_object_new_string(p->error));
		bad |= json_object_object_add(o, "passes", passes);
		passes = NULL;
	}
	json_object_put(passes);
	if (bad) {
		json_object_put(o);
		return -ENOMEM;
	}
	*out = o;
	return 0;
}

static int reply_progress(struct api_call *c, unsigned status, bool results)
{
	struct mig_progress p = { .state = MIG_S_NONE };
	struct json_object *o = NULL;
	int r;

	c->ops->migration(c->opaque, &p, results);
	r = progress_json(&p, &o);
	return r < 0 ? r : reply_json(c->reply, status, o);
}

static int handle_migrate(struct api_call *c)
{
	struct mig_params p = { .downtime_ms = MIG_DEFAULT_DOWNTIME_MS, .timeout_ms = MIG_DEFAULT_TIMEOUT_MS,
				.max_passes = MIG_DEFAULT_MAX_PASSES };
	struct json_object *v;
	struct err e = { { 0 } };
	uint64_t x;
	int r;

	if (!json_object_object_get_ex(c->body, "to", &v) || !json_object_is_type(v, json_type_string))
		return api_reply_error(c->reply, 400, "field 'to' (tcp:HOST:PORT or unix:PATH) is required");
	if ((size_t)json_object_get_string_len(v) >= sizeof(p.to) ||
	    strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v))
		return reply_errorf(c->reply, 400, "field 'to' must be shorter than %zu bytes, without NUL", sizeof(p.to));
	strcpy(p.to, json_object_get_string(v));
	x = p.downtime_ms;
	if ((r = int_field(c, "downtime_ms", 1, 600000, &x)))
		return r < 0 ? r : 0;
	p.downtime_ms = (unsigned)x;
	x = p.timeout_ms;
	if ((r = int_field(c, "timeout_ms", 100, 3600000, &x)))
		return r < 0 ? r : 0;
	p.timeout_ms = (unsigned)x;
	x = p.max_passes;
	if ((r = int_field(c, "max_passes", 1, 1000, &x)))
		return r < 0 ? r : 0;
	p.max_passes = (unsigned)x;
	x = 1;
	if ((r = int_field(c, "connections", 1, MIG_CONNECTIONS_MAX, &x)))
		return r < 0 ? r : 0;
	p.connections = (unsigned)x;
	if (json_object_object_get_ex(c->body, "bandwidth", &v)) {
		/* bytes per second: a number, or a string with a K, M, G suffix */
		if (json_object_is_type(v, json_type_string)) {
			if (parse_size(json_object_get_string(v), &p.bandwidth) < 0)
				return api_reply_error(c->reply, 400, "field 'bandwidth' is not a rate (e.g. 100M)");
		} else if ((r = int_field(c, "bandwidth", 0, UINT64_MAX >> 1, &p.bandwidth))) {
			return r < 0 ? r : 0;
		}
	}
	if (json_object_object_get_ex(c->body, "converge", &v)) {
		static const char *const names[] = { "throttle", "force", "cancel" };
		const char *t = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
		unsigned i = 0;
		while (i < 3 && strcmp(t, names[i]))
			i++;
		if (i == 3)
			return api_reply_error(c->reply, 400, "field 'converge' must be \"throttle\", \"force\" or \"cancel\"");
		p.converge = (enum mig_converge)i;
	}
	if (json_object_object_get_ex(c->body, "tls_dir", &v)) {
		if (!json_object_is_type(v, json_type_string) || !json_object_get_string_len(v) ||
		    (size_t)json_object_get_string_len(v) >= sizeof(p.tls_dir) ||
		    strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v))
			return reply_errorf(c->reply, 400, "field 'tls_dir' must be a directory's path (1 to %zu bytes)",
					    sizeof(p.tls_dir) - 1);
		strcpy(p.tls_dir, json_object_get_string(v));
	}
	if (json_object_object_get_ex(c->body, "copy_disks", &v)) {
		if (!json_object_is_type(v, json_type_boolean))
			return api_reply_error(c->reply, 400, "field 'copy_disks' must be true or false");
		p.copy_disks = json_object_get_boolean(v);
	}
	r = refuse_if_stopping(c);
	if (r)
		return r < 0 ? r : 0;
	if (!c->ops->migrate)
		return api_reply_error(c->reply, 501, "live migration is not available");
	r = c->ops->migrate(c->opaque, &p, &e);
	if (r < 0)
		return reply_hook_error(c->reply, r, &e, "migrate");
	return reply_progress(c, 202, false);
}

static int handle_migration(struct api_call *c)
{
	struct mig_progress p = { .state = MIG_S_NONE };
	struct json_object *o = NULL;
	int r;

	if (!c->ops->migration)
		return api_reply_error(c->reply, 501, "live migration is not available");
	c->ops->migration(c->opaque, &p, true);
	r = progress_json(&p, &o);
	if (r < 0)
		return r;
	/* the VM lives on at the destination: this tern exits once the
	 * caller has the result */
	if (p.state == MIG_S_COMPLETED)
		c->reply->shutdown_after = true;
	return reply_json(c->reply, 200, o);
}

static int handle_migrate_cancel(struct api_call *c)
{
	struct err e = { { 0 } };
	int r;

	if (!c->ops->migrate_cancel)
		return api_reply_error(c->reply, 501, "live migration is not available");
	r = c->ops->migrate_cancel(c->opaque, &e);
	if (r < 0)
		return api_reply_error(c->reply, r == -EBUSY || r == -ENOENT ? 409 : api_status_for_errno(r),
				       e.msg[0] ? e.msg : strerror(-r));
	return reply_progress(c, 200, false);
}

/* ---- routing ------------------------------------------------------------------- */

enum api_body {
	BODY_NONE,     /* must be empty */
	BODY_OPTIONAL, /* empty, or an object with only the listed fields */
	BODY_REQUIRED, /* an object with only the listed fields */
};

struct api_route {
	const char *path;
	const char *method;
	enum api_body body;
	const char *const *fields; /* allowed members, NULL-terminated */
	api_handler handle;
};

/* Paths must be grouped: the 405 Allow header lists one path's methods.
 * HEAD is served wherever GET is. */
static const struct api_route routes[] = {
	{ "/vm", "GET", BODY_NONE, no_fields, handle_info },
	{ "/vm/status", "GET", BODY_NONE, no_fields, handle_status },
	{ "/vm/pause", "PUT", BODY_OPTIONAL, no_fields, handle_pause },
	{ "/vm/resume", "PUT", BODY_OPTIONAL, no_fields, handle_resume },
	{ "/vm/shutdown", "PUT", BODY_OPTIONAL, no_fields, handle_shutdown },
	{ "/vm/snapshot", "PUT", BODY_REQUIRED, snapshot_fields, handle_snapshot },
	{ "/vm/migrate", "PUT", BODY_REQUIRED, migrate_fields, handle_migrate },
	{ "/vm/migrate/cancel", "PUT", BODY_OPTIONAL, no_fields, handle_migrate_cancel },
	{ "/vm/migration", "GET", BODY_NONE, no_fields, handle_migration },
};

/* The Allow header for a path: its methods, as a static string. */
static const char *allow_for(const char *method)
{
	return !strcmp(method, "GET") ? "GET, HEAD" : method;
}

int api_handle(const struct api_ops *ops, void *opaque, const char *method, const char *path,
	       const char *body, size_t len, struct api_reply *out)
{
	const struct api_route *route = NULL, *any = NULL;
	struct api_call c = { .ops = ops, .opaque = opaque, .reply = out };
	const char *m = !strcmp(method, "HEAD") ? "GET" : method;
	int r;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < ARRAY_SIZE(routes) && !route; i++) {
		if (strcmp(routes[i].path, path))
			continue;
		any = &routes[i];
		if (!strcmp(routes[i].method, m))
			route = &routes[i];
	}
	if (!any) {
		char shown[API_NAME_SHOWN + 4];
		shown_name(path, shown);
		return reply_errorf(out, 404, "no such resource '%s'", shown);
	}
	if (!route) {
		char shown[API_NAME_SHOWN + 4];
		shown_name(method, shown);
		out->allow = allow_for(any->method);
		return reply_errorf(out, 405, "%s does not allow %s (allowed: %s)", path, shown, out->allow);
	}
	if (len > API_MAX_BODY)
		return reply_errorf(out, 413, "the body is larger than %llu bytes", (unsigned long long)API_MAX_BODY);
	if (route->body == BODY_NONE) {
		if (len)
			return reply_errorf(out, 400, "%s %s takes no body", route->method, path);
	} else {
		r = parse_body(body, len, route->body == BODY_OPTIONAL, &c.body, out);
		if (r)
			return r < 0 ? r : 0;
		r = reject_unknown(c.body, route->fields, out);
		if (r) {
			json_object_put(c.body);
			return r < 0 ? r : 0;
		}
	}
	r = route->handle(&c);
	json_object_put(c.body);
	return r;
}
