/* SPDX-License-Identifier: MIT */
/* firmware/stamp.h - the page-stamp workload (stamp.c). */
#ifndef TERN_FIRMWARE_STAMP_H
#define TERN_FIRMWARE_STAMP_H

#include <stdint.h>

/* Runs test=stamp over mb MiB, rewriting the first hot_mb of them on every
 * pass; ram_end bounds the region. */
unsigned stamp_run(uint64_t mb, uint64_t hot_mb, uint64_t ram_end);

#endif
