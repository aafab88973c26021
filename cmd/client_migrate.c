/* SPDX-License-Identifier: MIT */
/*
 * cmd/client_migrate.c - `tern migrate`: PUT /vm/migrate, then GET
 * /vm/migration until the migration ends, with a progress line on stderr
 * (redrawn in place on a terminal, one line per pass otherwise) and the
 * final figures as JSON on stdout.
 */
#include "cmd/client.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "vmm/util.h"

#define POLL_MS 100

struct migrate_opts {
	const char *sock, *to, *tls_dir, *converge;
	uint64_t downtime_ms, timeout_ms, max_passes, bandwidth, connections;
	bool has_downtime, has_timeout, has_passes, has_bandwidth, has_connections;
	bool copy_disks, no_wait, help;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: tern migrate --api-sock PATH --to ADDR [OPTIONS]\n"
		"\n"
		"Live-migrates the VM of the tern started with 'tern run --api-sock PATH' to\n"
		"the tern waiting with 'tern run --incoming ADDR', and follows it to the end:\n"
		"a progress line on stderr, then the result as JSON on stdout. The source\n"
		"tern exits once the destination runs the guest (docs/migration.md).\n"
		"\n"
		"Options:\n"
		"  -s, --api-sock PATH    the API socket of the source tern\n"
		"  -t, --to ADDR          tcp:HOST:PORT, tcp:[V6ADDR]:PORT or unix:PATH\n"
		"      --downtime-ms N    stop the VM once the rest can be sent in N ms\n"
		"                         (1..600000; default 50)\n"
		"      --bandwidth RATE   at most RATE bytes/s (K, M, G suffixes; default:\n"
		"                         as fast as the connection goes)\n"
		"      --timeout-ms N     a destination silent for N ms fails the migration\n"
		"                         (100..3600000; default 10000)\n"
		"      --max-passes N     after N pre-copy passes stop the VM whatever\n"
		"                         remains (1..1000; default 30)\n"
		"      --converge C       when the guest dirties memory faster than it is\n"
		"                         sent: throttle (default) slows its vCPUs in steps,\n"
		"                         then stops it after --max-passes whatever remains;\n"
		"                         force stops it then without slowing; cancel gives\n"
		"                         up then, the VM runs on here\n"
		"      --tls-dir DIR      mutual TLS 1.3 with the destination (tcp: only):\n"
		"                         DIR holds ca-cert.pem, client-cert.pem and\n"
		"                         client-key.pem; the destination's certificate must\n"
		"                         name the host of --to (docs/migration.md)\n"
		"      --connections N    stripe guest RAM over N connections (1..16;\n"
		"                         default 1), each with its own TLS session: more\n"
		"                         cores encrypt and send; the disks, the device\n"
		"                         state and the hand-over go over the first\n"
		"      --copy-disks       send the disks' contents too, for hosts that do\n"
		"                         not share storage: each destination --disk image\n"
		"                         is created, or must have the source's size, and\n"
		"                         is overwritten (docs/disks.md)\n"
		"      --no-wait          return once the migration started ('tern\n"
		"                         migration' shows it, 'tern migrate-cancel' stops it)\n"
		"  -h, --help             show this help\n"
		"\n"
		"Exit status: 0 once the destination runs the guest; 1 with a one-line\n"
		"message otherwise (the source VM then runs on, or stays paused if the\n"
		"message says so).\n");
}

enum { OPT_DOWNTIME = 256, OPT_BANDWIDTH, OPT_TIMEOUT, OPT_PASSES, OPT_COPY_DISKS, OPT_TLS_DIR, OPT_CONVERGE,
       OPT_CONNECTIONS, OPT_NO_WAIT };

static const struct option long_opts[] = {
	{ "api-sock", required_argument, NULL, 's' },
	{ "to", required_argument, NULL, 't' },
	{ "downtime-ms", required_argument, NULL, OPT_DOWNTIME },
	{ "bandwidth", required_argument, NULL, OPT_BANDWIDTH },
	{ "timeout-ms", required_argument, NULL, OPT_TIMEOUT },
	{ "max-passes", required_argument, NULL, OPT_PASSES },
	{ "copy-disks", no_argument, NULL, OPT_COPY_DISKS },
	{ "tls-dir", required_argument, NULL, OPT_TLS_DIR },
	{ "converge", required_argument, NULL, OPT_CONVERGE },
	{ "connections", required_argument, NULL, OPT_CONNECTIONS },
	{ "no-wait", no_argument, NULL, OPT_NO_WAIT },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int parse(int argc, char **argv, struct migrate_opts *o, struct err *e)
{
	int c;

	memset(o, 0, sizeof(*o));
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":s:t:h", long_opts, NULL)) != -1) {
		switch (c) {
		case 's':
			o->sock = optarg;
			break;
		case 't':
			o->to = optarg;
			break;
		case OPT_DOWNTIME:
			if (parse_u64(optarg, 1, 600000, &o->downtime_ms) < 0)
				return err_set(e, -EINVAL, "--downtime-ms: '%s' is not 1..600000", optarg);
			o->has_downtime = true;
			break;
		case OPT_TIMEOUT:
			if (parse_u64(optarg, 100, 3600000, &o->timeout_ms) < 0)
				return err_set(e, -EINVAL, "--timeout-ms: '%s' is not 100..3600000", optarg);
			o->has_timeout = true;
			break;
		case OPT_PASSES:
			if (parse_u64(optarg, 1, 1000, &o->max_passes) < 0)
				return err_set(e, -EINVAL, "--max-passes: '%s' is not 1..1000", optarg);
			o->has_passes = true;
			break;
		case OPT_BANDWIDTH:
			if (parse_size(optarg, &o->bandwidth) < 0 || !o->bandwidth)
				return err_set(e, -EINVAL, "--bandwidth: '%s' is not a rate (e.g. 100M)", optarg);
			o->has_bandwidth = true;
			break;
		case OPT_COPY_DISKS:
			o->copy_disks = true;
			break;
		case OPT_TLS_DIR:
			o->tls_dir = optarg;
			break;
		case OPT_CONVERGE:
			if (strcmp(optarg, "throttle") && strcmp(optarg, "force") && strcmp(optarg, "cancel"))
				return err_set(e, -EINVAL, "--converge: '%s' is not throttle, force or cancel", optarg);
			o->converge = optarg;
			break;
		case OPT_CONNECTIONS:
			if (parse_u64(optarg, 1, 16, &o->connections) < 0)
				return err_set(e, -EINVAL, "--connections: '%s' is not 1..16", optarg);
			o->has_connections = true;
			break;
		case OPT_NO_WAIT:
			o->no_wait = true;
			break;
		case 'h':
			o->help = true;
			return 0;
		case ':':
			return err_set(e, -EINVAL, "option '%s' needs a value", argv[optind - 1]);
		default:
			return err_set(e, -EINVAL, "unknown option '%s' (see 'tern migrate --help')", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return err_set(e, -EINVAL, "unexpected argument '%s' (see 'tern migrate --help')", argv[optind]);
	if (!o->sock)
		return err_set(e, -EINVAL, "--api-sock is required (see 'tern migrate --help')");
	if (!o->to)
		return err_set(e, -EINVAL, "--to is required (see 'tern migrate --help')");
	return 0;
}

static char *body_of(const struct migrate_opts *o)
{
	struct json_object *b = json_object_new_object();
	char *text = NULL;
	int bad = !b;

	bad |= json_object_object_add(b, "to", json_object_new_string(o->to));
	if (o->has_downtime)
		bad |= json_object_object_add(b, "downtime_ms", json_object_new_int64((int64_t)o->downtime_ms));
	if (o->has_timeout)
		bad |= json_object_object_add(b, "timeout_ms", json_object_new_int64((int64_t)o->timeout_ms));
	if (o->has_passes)
		bad |= json_object_object_add(b, "max_passes", json_object_new_int64((int64_t)o->max_passes));
	if (o->has_bandwidth)
		bad |= json_object_object_add(b, "bandwidth", json_object_new_int64((int64_t)o->bandwidth));
	if (o->has_connections)
		bad |= json_object_object_add(b, "connections", json_object_new_int64((int64_t)o->connections));
	if (o->copy_disks)
		bad |= json_object_object_add(b, "copy_disks", json_object_new_boolean(1));
	if (o->converge)
		bad |= json_object_object_add(b, "converge", json_object_new_string(o->converge));
	if (o->tls_dir) {
		/* the server opens it: absolute, as the client sees it */
		char *abs = realpath(o->tls_dir, NULL);
		bad |= json_object_object_add(b, "tls_dir", json_object_new_string(abs ? abs : o->tls_dir));
		free(abs);
	}
	if (!bad)
		text = strdup(json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN));
	json_object_put(b);
	return text;
}

static uint64_t u64(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_uint64(v) : 0;
}

static const char *str(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
		       ? json_object_get_string(v)
		       : "";
}

/* One progress line: [####......] share of RAM sent, the pass, what is
 * left, the dirty rate, the bandwidth and the ETA. */
static void show(struct json_object *p, bool tty, uint64_t *last_pass, char last_state[16])
{
	uint64_t ram = u64(p, "ram_pages"), sent = u64(p, "pages_sent"), pass = u64(p, "pass");
	unsigned pct = ram ? (unsigned)(sent * 100 / ram) : 0, fill;
	char bar[21];

	if (pct > 100)
		pct = 100; /* later passes send pages again */
	fill = pct / 5;
	memset(bar, '#', fill);
	memset(bar + fill, '.', 20 - fill);
	bar[20] = '\0';
	if (!tty && pass == *last_pass && !strcmp(last_state, str(p, "state")))
		return;
	*last_pass = pass;
	snprintf(last_state, 16, "%s", str(p, "state"));
	char disks[128] = "";
	if (u64(p, "throttle_pct"))
		snprintf(disks, sizeof(disks), "  throttle %llu%%", (unsigned long long)u64(p, "throttle_pct"));
	if (u64(p, "disk_bytes"))
		snprintf(disks + strlen(disks), sizeof(disks) - strlen(disks), "  disks: sent %llu MiB, left %llu MiB of %llu MiB",
			 (unsigned long long)(u64(p, "disk_sent_bytes") >> 20),
			 (unsigned long long)(u64(p, "disk_remaining_bytes") >> 20),
			 (unsigned long long)(u64(p, "disk_bytes") >> 20));
	fprintf(stderr, "%s[%s] %3u%% %-9s pass %llu  sent %llu MiB  RAM: left %llu pages, dirty %llu pages/s%s  %.1f MiB/s  ETA %llu ms%s",
		tty ? "\r" : "", bar, pct, str(p, "state"), (unsigned long long)pass,
		(unsigned long long)(u64(p, "bytes_sent") >> 20), (unsigned long long)u64(p, "remaining_pages"),
		(unsigned long long)u64(p, "dirty_pages_per_s"), disks, (double)u64(p, "bandwidth_bps") / (1 << 20),
		(unsigned long long)u64(p, "eta_ms"), tty ? "\033[K" : "\n");
	fflush(stderr);
}

static bool final(const char *st)
{
	return !strcmp(st, "completed") || !strcmp(st, "failed") || !strcmp(st, "cancelled") || !strcmp(st, "none");
}

int client_migrate_main(int argc, char **argv)
{
	struct migrate_opts o;
	struct err e = { { 0 } };
	struct client_reply b;
	struct json_object *p = NULL;
	bool tty = isatty(2);
	uint64_t last_pass = ~0ull;
	char last_state[16] = "";
	char *body;
	long code;
	int status = 1;

	if (parse(argc, argv, &o, &e) < 0) {
		fprintf(stderr, "tern: error: %s\n", e.msg);
		return 1;
	}
	if (o.help) {
		usage(stdout);
		return 0;
	}
	body = body_of(&o);
	if (!body) {
		fprintf(stderr, "tern: error: out of memory\n");
		return 1;
	}
	if (client_http(o.sock, "PUT", "/vm/migrate", body, &code, &b) < 0) {
		free(body);
		return 1;
	}
	free(body);
	if (code != 202 || o.no_wait) {
		status = client_print_answer(o.sock, "PUT", "/vm/migrate", code, &b);
		free(b.data);
		return status;
	}
	free(b.data);
	for (;;) {
		struct timespec ts = { 0, POLL_MS * 1000000L };
		if (client_http(o.sock, "GET", "/vm/migration", NULL, &code, &b) < 0)
			return 1;
		json_object_put(p);
		p = code == 200 && b.len ? json_tokener_parse(b.data) : NULL;
		if (!p) {
			status = client_print_answer(o.sock, "GET", "/vm/migration", code, &b);
			free(b.data);
			return status ? status : 1;
		}
		free(b.data);
		show(p, tty, &last_pass, last_state);
		if (final(str(p, "state")))
			break;
		nanosleep(&ts, NULL);
	}
	if (tty)
		fputc('\n', stderr);
	if (!strcmp(str(p, "state"), "completed")) {
		printf("%s\n", json_object_to_json_string_ext(p, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
								     JSON_C_TO_STRING_NOSLASHESCAPE));
		status = 0;
	} else {
		fprintf(stderr, "tern: error: migration %s: %s\n", str(p, "state"), str(p, "error"));
	}
	json_object_put(p);
	return status;
}
