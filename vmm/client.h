/* SPDX-License-Identifier: MIT */
/*
 * vmm/client.h - the control API's client: `tern info|status|pause|resume|
 * shutdown|snapshot --api-sock PATH`, one HTTP request each (docs/api.md).
 */
#ifndef TERN_VMM_CLIENT_H
#define TERN_VMM_CLIENT_H

#include <stdbool.h>
#include <stdio.h>

/* Is name one of the client subcommands? */
bool client_is_command(const char *name);
/* Runs `tern NAME ARGS` (argv[0] is NAME, a client subcommand): prints the
 * JSON answer on stdout and returns 0 on a 2xx reply; otherwise prints one
 * line "tern: error: ..." on stderr and returns 1. */
int client_main(int argc, char **argv);
/* The "Commands:" lines for `tern --help`. */
void client_usage_commands(FILE *f);

#endif
