/* SPDX-License-Identifier: MIT */
/* firmware/bootinfo.h - what the loader told us, whichever protocol it used. */
#ifndef TERN_FIRMWARE_BOOTINFO_H
#define TERN_FIRMWARE_BOOTINFO_H

#include <stdint.h>

#define BOOTINFO_MAX_MEMMAP 128

struct memmap_entry {
	uint64_t addr, len;
	uint32_t type; /* e820 types: 1 RAM, 2 reserved, ... */
};

struct bootinfo {
	const char *proto;    /* "pvh" or "linux64" */
	const char *cmdline;  /* points into guest memory, NUL-terminated */
	uint64_t initrd_addr, initrd_len;
	unsigned nr_memmap;
	struct memmap_entry memmap[BOOTINFO_MAX_MEMMAP];
};

/* Fills *bi from boot_info_ptr/boot_proto; returns 0 or a negative code
 * naming what was malformed. */
int bootinfo_parse(struct bootinfo *bi);

#endif
