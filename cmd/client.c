/* SPDX-License-Identifier: MIT */
/*
 * cmd/client.c - the control API's client subcommands. libcurl speaks HTTP
 * over the UNIX socket (CURLOPT_UNIX_SOCKET_PATH) and json-c reads the
 * answer. The server is trusted no more than needed: the answer is capped
 * at CLIENT_MAX_REPLY bytes, and an error message is printed on one line
 * with control characters replaced.
 */
#include "cmd/client.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "vmm/dynlib.h"
#include "vmm/util.h"

#define CLIENT_CONNECT_TIMEOUT_S 10L

struct client_cmd {
	const char *name;
	const char *method;
	const char *path;
	const char *summary;
};

static const struct client_cmd client_cmds[] = {
	{ "info", "GET", "/vm", "show the VM's configuration, state and uptime" },
	{ "status", "GET", "/vm/status", "show the VM's state and migration status" },
	{ "pause", "PUT", "/vm/pause", "pause the VM's vCPUs" },
	{ "resume", "PUT", "/vm/resume", "resume a paused VM" },
	{ "shutdown", "PUT", "/vm/shutdown", "stop the VM; its tern exits with status 0" },
	{ "snapshot", "PUT", "/vm/snapshot", "write a snapshot of the VM to a directory" },
	{ "migrate", "PUT", "/vm/migrate", "live-migrate the VM to a tern run --incoming" },
	{ "migration", "GET", "/vm/migration", "show the progress or result of a migration" },
	{ "migrate-cancel", "PUT", "/vm/migrate/cancel", "cancel a migration that has not handed over" },
};

struct client_opts {
	const struct client_cmd *cmd;
	const char *sock;
	const char *path;   /* snapshot: --path */
	bool no_resume;     /* snapshot: --no-resume */
	bool diff;          /* snapshot: --diff */
	bool help;
};


static const struct client_cmd *find_cmd(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(client_cmds); i++)
		if (!strcmp(client_cmds[i].name, name))
			return &client_cmds[i];
	return NULL;
}

bool client_is_command(const char *name)
{
	return find_cmd(name) != NULL;
}

void client_usage_commands(FILE *f)
{
	for (size_t i = 0; i < ARRAY_SIZE(client_cmds); i++)
		fprintf(f, "  %-14s %s (control API client)\n", client_cmds[i].name, client_cmds[i].summary);
}

static void client_usage(FILE *f, const struct client_cmd *c)
{
	bool snap = !strcmp(c->name, "snapshot");

	fprintf(f,
		"Usage: tern %s --api-sock PATH%s\n"
		"\n"
		"%c%s: %s %s on the control API of the tern started with\n"
		"'tern run --api-sock PATH', and prints the JSON answer (docs/api.md).\n"
		"\n"
		"Options:\n"
		"  -s, --api-sock PATH  the API socket of the running tern\n",
		c->name, snap ? " --path DIR [--diff] [--no-resume]" : "", c->summary[0] - 'a' + 'A', c->summary + 1,
		c->method, c->path);
	if (snap)
		fprintf(f,
			"  -p, --path DIR       the snapshot directory (relative: to this\n"
			"                       command's working directory)\n"
			"      --diff           save only the pages written since the VM's last\n"
			"                       snapshot (or its restore); needs 'tern run\n"
			"                       --track-dirty'. Restore needs the earlier\n"
			"                       snapshots kept where they are (default: a full\n"
			"                       snapshot)\n"
			"      --no-resume      leave the VM paused after the snapshot (default:\n"
			"                       it runs afterwards)\n");
	fprintf(f,
		"  -h, --help           show this help\n"
		"\n"
		"Exit status: 0 on success; 1 with a one-line message on any error.\n");
}

enum { OPT_NO_RESUME = 256, OPT_DIFF };

static const struct option client_long_opts[] = {
	{ "api-sock", required_argument, NULL, 's' },
	{ "path", required_argument, NULL, 'p' },
	{ "no-resume", no_argument, NULL, OPT_NO_RESUME },
	{ "diff", no_argument, NULL, OPT_DIFF },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int client_parse(int argc, char **argv, struct client_opts *o, struct err *e)
{
	bool snap;
	int c;

	memset(o, 0, sizeof(*o));
	o->cmd = find_cmd(argv[0]);
	if (!o->cmd)
		return err_set(e, -EINVAL, "unknown command '%s'", argv[0]);
	snap = !strcmp(o->cmd->name, "snapshot");
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":s:p:h", client_long_opts, NULL)) != -1) {
		switch (c) {
		case 's':
			o->sock = optarg;
			break;
		case 'p':
			if (!snap)
				goto unknown;
			o->path = optarg;
			break;
		case OPT_NO_RESUME:
			if (!snap)
				goto unknown;
			o->no_resume = true;
			break;
		case OPT_DIFF:
			if (!snap)
				goto unknown;
			o->diff = true;
			break;
		case 'h':
			o->help = true;
			return 0;
		case ':':
			return err_set(e, -EINVAL, "option '%s' needs a value", argv[optind - 1]);
		default:
			goto unknown;
		}
	}
	if (optind < argc)
		return err_set(e, -EINVAL, "unexpected argument '%s' (see 'tern %s --help')", argv[optind],
			       o->cmd->name);
	if (!o->sock)
		return err_set(e, -EINVAL, "--api-sock is required (see 'tern %s --help')", o->cmd->name);
	if (snap && !o->path)
		return err_set(e, -EINVAL, "--path is required (see 'tern snapshot --help')");
	return 0;

unknown:
	return err_set(e, -EINVAL, "unknown option '%s' (see 'tern %s --help')", argv[optind - 1], o->cmd->name);
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct client_reply *b = userdata;
	size_t n = size * nmemb;
	char *p;

	if (n > CLIENT_MAX_REPLY - b->len) {
		b->too_big = true;
		return 0; /* aborts the transfer */
	}
	p = realloc(b->data, b->len + n + 1);
	if (!p)
		return 0;
	memcpy(p + b->len, ptr, n);
	b->data = p;
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

/* Copies s into out as one printable line. */
static void one_line(const char *s, char *out, size_t size)
{
	size_t i;

	for (i = 0; s[i] && i + 1 < size; i++)
		out[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
	out[i] = '\0';
}

/* The request body for snapshot, as malloc'd JSON text, or NULL. A
 * relative path is the client's: the tern that writes it may run in
 * another working directory, so it is made absolute here. */
static char *snapshot_body(const struct client_opts *o)
{
	struct json_object *obj = json_object_new_object();
	char *text = NULL, cwd[PATH_MAX], path[PATH_MAX + 4096];

	if (o->path[0] == '/' || !getcwd(cwd, sizeof(cwd)))
		snprintf(path, sizeof(path), "%s", o->path);
	else
		snprintf(path, sizeof(path), "%s/%s", strcmp(cwd, "/") ? cwd : "", o->path);
	if (obj && json_object_object_add(obj, "path", json_object_new_string(path)) == 0 &&
	    json_object_object_add(obj, "resume", json_object_new_boolean(!o->no_resume)) == 0 &&
	    json_object_object_add(obj, "type", json_object_new_string(o->diff ? "diff" : "full")) == 0)
		text = strdup(json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN));
	json_object_put(obj);
	return text;
}

/* Prints the answer: pretty JSON on stdout for 2xx, else the error line.
 * Returns the exit status. */
int client_print_answer(const char *sock, const char *method, const char *path, long code,
			const struct client_reply *b)
{
	struct json_object *obj = NULL, *msg;
	char line[400];
	int status = 1;

	if (b->len)
		obj = json_tokener_parse(b->data);
	if (code >= 200 && code < 300) {
		if (!b->len) {
			status = 0;
		} else if (!obj) {
			fprintf(stderr, "tern: error: %s answered %ld with malformed JSON\n", sock, code);
		} else {
			printf("%s\n", json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
										   JSON_C_TO_STRING_NOSLASHESCAPE));
			status = 0;
		}
	} else if (obj && json_object_object_get_ex(obj, "error", &msg) && json_object_is_type(msg, json_type_string)) {
		one_line(json_object_get_string(msg), line, sizeof(line));
		fprintf(stderr, "tern: error: %s (HTTP %ld)\n", line, code);
	} else {
		fprintf(stderr, "tern: error: %s %s answered HTTP %ld\n", method, path, code);
	}
	json_object_put(obj);
	return status;
}

/* libcurl, loaded by the client commands only (vmm/dynlib.h): it brings
 * some twenty libraries a running VMM has no use for. */
struct curl_api {
	CURLcode (*global_init)(long flags);
	void (*global_cleanup)(void);
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *h, CURLoption opt, ...);
	CURLcode (*easy_perform)(CURL *h);
	CURLcode (*easy_getinfo)(CURL *h, CURLINFO info, ...);
	const char *(*easy_strerror)(CURLcode code);
	void (*easy_cleanup)(CURL *h);
	struct curl_slist *(*slist_append)(struct curl_slist *list, const char *s);
	void (*slist_free_all)(struct curl_slist *list);
};

#define CURL_SYM(f) { "curl_" #f, offsetof(struct curl_api, f) }
static const struct dynlib_sym curl_syms[] = {
	CURL_SYM(global_init),  CURL_SYM(global_cleanup), CURL_SYM(easy_init),    CURL_SYM(easy_setopt),
	CURL_SYM(easy_perform), CURL_SYM(easy_getinfo),   CURL_SYM(easy_strerror), CURL_SYM(easy_cleanup),
	CURL_SYM(slist_append), CURL_SYM(slist_free_all),
};

int client_http(const char *sock, const char *method, const char *path, const char *body, long *code,
		struct client_reply *b)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *headers = NULL;
	struct curl_api c;
	struct err e = { { 0 } };
	char url[64];
	CURLcode cr;
	long os_errno = 0;
	int ret = -1;
	CURL *h;

	memset(b, 0, sizeof(*b));
	*code = 0;
	void *lib = dynlib_open("libcurl.so.4", "libcurl4", curl_syms, ARRAY_SIZE(curl_syms), &c, &e);
	if (!lib) {
		fprintf(stderr, "tern: error: %s\n", e.msg);
		return -1;
	}
	if (c.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "tern: error: cannot initialise libcurl\n");
		dynlib_close(lib);
		return -1;
	}
	h = c.easy_init();
	if (!h) {
		fprintf(stderr, "tern: error: cannot initialise libcurl\n");
		goto out_global;
	}
	snprintf(url, sizeof(url), "http://localhost%s", path);
	c.easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, sock);
	c.easy_setopt(h, CURLOPT_URL, url);
	c.easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
	c.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	c.easy_setopt(h, CURLOPT_CONNECTTIMEOUT, CLIENT_CONNECT_TIMEOUT_S);
	c.easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	c.easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	c.easy_setopt(h, CURLOPT_WRITEDATA, b);
	if (!strcmp(method, "PUT")) {
		if (body) {
			headers = c.slist_append(headers, "Content-Type: application/json");
			if (!headers) {
				fprintf(stderr, "tern: error: out of memory\n");
				goto out_easy;
			}
			c.easy_setopt(h, CURLOPT_HTTPHEADER, headers);
		}
		/* POSTFIELDS sends the body with a Content-Length (0 when none);
		 * CUSTOMREQUEST makes the method PUT. */
		c.easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
		c.easy_setopt(h, CURLOPT_POSTFIELDSIZE, body ? (long)strlen(body) : 0L);
		c.easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
	}

	cr = c.easy_perform(h);
	if (cr == CURLE_COULDNT_CONNECT) {
		c.easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno);
		fprintf(stderr, "tern: error: cannot connect to %s: %s\n", sock,
			os_errno ? strerror((int)os_errno) : (errbuf[0] ? errbuf : c.easy_strerror(cr)));
		goto out_easy;
	}
	if (cr != CURLE_OK) {
		if (b->too_big)
			fprintf(stderr, "tern: error: %s answered more than %llu bytes\n", sock,
				(unsigned long long)CLIENT_MAX_REPLY);
		else
			fprintf(stderr, "tern: error: request to %s failed: %s\n", sock,
				errbuf[0] ? errbuf : c.easy_strerror(cr));
		goto out_easy;
	}
	c.easy_getinfo(h, CURLINFO_RESPONSE_CODE, code);
	ret = 0;

out_easy:
	c.slist_free_all(headers);
	c.easy_cleanup(h);
out_global:
	c.global_cleanup();
	dynlib_close(lib);
	if (ret < 0) {
		free(b->data);
		b->data = NULL;
	}
	return ret;
}

static int client_request(const struct client_opts *o)
{
	struct client_reply b;
	char *body = NULL;
	long code;
	int status = 1;

	if (!strcmp(o->cmd->name, "snapshot")) {
		body = snapshot_body(o);
		if (!body) {
			fprintf(stderr, "tern: error: out of memory\n");
			return 1;
		}
	}
	if (client_http(o->sock, o->cmd->method, o->cmd->path, body, &code, &b) == 0)
		status = client_print_answer(o->sock, o->cmd->method, o->cmd->path, code, &b);
	free(body);
	free(b.data);
	return status;
}

int client_main(int argc, char **argv)
{
	struct client_opts o;
	struct err e = { { 0 } };

	if (!strcmp(argv[0], "migrate"))
		return client_migrate_main(argc, argv);
	if (client_parse(argc, argv, &o, &e) < 0) {
		fprintf(stderr, "tern: error: %s\n", e.msg);
		return 1;
	}
	if (o.help) {
		client_usage(stdout, o.cmd);
		return 0;
	}
	return client_request(&o);
}
