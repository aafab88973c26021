/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/guest_ram.h - what the ring fuzzers share: a window of guest
 * RAM filled from the input after its first 8 bytes (the targets' knobs),
 * mapped read-write in an IOTLB at BASE.
 */
#ifndef TERN_TESTS_FUZZ_GUEST_RAM_H
#define TERN_TESTS_FUZZ_GUEST_RAM_H

#include <stdlib.h>
#include <string.h>

#include "vdpa/iotlb.h"
#include "vdpa/vdpa.h"

#define FUZZ_RAM_BASE 0x10000ull
#define FUZZ_RAM_SIZE 0x8000u

/* The window (free() it, iotlb_exit() t), or NULL for an input too short
 * to carry the knobs. */
static inline uint8_t *fuzz_guest_ram(const uint8_t *data, size_t size, struct iotlb *t)
{
	uint8_t *mem;

	if (size < 8 || !(mem = calloc(1, FUZZ_RAM_SIZE)))
		return NULL;
	memcpy(mem, data + 8, size - 8 < FUZZ_RAM_SIZE ? size - 8 : FUZZ_RAM_SIZE);
	iotlb_init(t);
	iotlb_map(t, FUZZ_RAM_BASE, FUZZ_RAM_SIZE, mem, VDPA_PERM_RW);
	return mem;
}

#endif
