/* SPDX-License-Identifier: MIT */
/* cmd/cli.h - command-line parsing for tern's subcommands. */
#ifndef TERN_CMD_CLI_H
#define TERN_CMD_CLI_H

#include <stdio.h>

#include "devices/disk_config.h"
#include "devices/net_config.h"
#include "migrate/migrate.h"
#include "vmm/vm.h"

#define TERN_VERSION "0.1.0"

struct run_options {
	struct vm_config cfg;
	struct net_config nets[VM_MAX_NETS]; /* cfg.net_cfgs points here */
	struct disk_config disks[VM_MAX_DISKS]; /* cfg.disk_cfgs points here */
	const char *testdev_path; /* --test-device=PATH, or NULL for stderr */
	const char *api_sock;     /* --api-sock PATH: serve the control API, or NULL */
	const char *restore;      /* --restore DIR */
	bool restore_memory;      /* --restore-memory was given */
	const char *restore_parents; /* --restore-parents DIR: where a diff's chain may lie */
	const char *incoming;     /* --incoming ADDR: receive a live migration */
	struct mig_incoming in;   /* its other options (addr is incoming) */
	bool vm_id_given;         /* --vm-id (else random, or the snapshot's) */
	bool landlock;            /* --landlock: only the paths named may be opened */
	const char *allow[16];    /* --landlock-allow(-read) DIR */
	bool allow_ro[16];        /* that one read-only */
	unsigned nallow;
	bool help;
};

/* Parses `tern run` arguments (argv[0] is "run"). 0, or -EINVAL with e set. */
int cli_parse_run(int argc, char **argv, struct run_options *o, struct err *e);
void cli_usage(FILE *f);
void cli_usage_run(FILE *f);

#endif
