/* SPDX-License-Identifier: MIT */
/*
 * cmd/client.h - the control API's client: `tern info|status|pause|resume|
 * shutdown|snapshot --api-sock PATH`, one HTTP request each (docs/api.md).
 */
#ifndef TERN_CMD_CLIENT_H
#define TERN_CMD_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Is name one of the client subcommands? */
bool client_is_command(const char *name);
/* Runs `tern NAME ARGS` (argv[0] is NAME, a client subcommand): prints the
 * JSON answer on stdout and returns 0 on a 2xx reply; otherwise prints one
 * line "tern: error: ..." on stderr and returns 1. */
int client_main(int argc, char **argv);
/* The "Commands:" lines for `tern --help`. */
void client_usage_commands(FILE *f);

/* For the client commands' own files (client_migrate.c). */
#define CLIENT_MAX_REPLY (1u << 20)
struct client_reply {
	char *data; /* NUL-terminated, malloc'd */
	size_t len;
	bool too_big;
};
/* One request on the API socket (body: JSON or NULL). 0 with *code and b
 * filled (the caller frees b->data), or -1 after printing why. */
int client_http(const char *sock, const char *method, const char *path, const char *body, long *code,
		struct client_reply *b);
/* Prints a 2xx answer as indented JSON on stdout (0), or the error line
 * on stderr (1). */
int client_print_answer(const char *sock, const char *method, const char *path, long code,
			const struct client_reply *b);
/* `tern migrate`: starts a migration and follows it to its end. */
int client_migrate_main(int argc, char **argv);

#endif
