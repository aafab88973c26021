/* SPDX-License-Identifier: MIT */
/*
 * devices/disk_config.h - what one --disk option asks for, parsed once
 * (by the command line, into struct vm_config) into a typed configuration
 * that the virtio-blk device is built from (docs/disks.md).
 */
#ifndef TERN_DEVICES_DISK_CONFIG_H
#define TERN_DEVICES_DISK_CONFIG_H

#include "vmm/util.h"

#define DISK_SERIAL_LEN 20 /* VIRTIO_BLK_ID_BYTES */
#define DISK_MAX_QUEUES 8

enum disk_cache {
	DISK_CACHE_WRITEBACK, /* the host's page cache; flush is fdatasync */
	DISK_CACHE_NONE,      /* O_DIRECT where the filesystem allows it */
};

struct disk_config {
	char path[4096];
	bool readonly;
	char serial[DISK_SERIAL_LEN + 1]; /* "" : none */
	unsigned queues;                  /* 1..DISK_MAX_QUEUES */
	enum disk_cache cache;
	bool discard;
};

/* Parses "path=IMG[,readonly=on][,serial=ID][,queues=N][,cache=none|
 * writeback][,discard=on]" into *c; -EINVAL with a message naming the bad
 * key otherwise. */
int disk_config_parse(const char *spec, struct disk_config *c, struct err *e);

#endif
