/* SPDX-License-Identifier: MIT */
/*
 * migrate/record.h - the framing that tern's state files and its migration
 * stream share (docs/state-format.md, docs/migration.md):
 *
 *   header  | magic (8) | major u16 | minor u16 | CRC32C u32 of the 12 before |
 *   record  | type u32 | reserved u32 = 0 | len u64 | payload (len) |
 *           | CRC32C u32 of type..payload | zero padding to 8 bytes |
 *
 * All integers are little-endian (tern runs on x86-64 only).
 */
#ifndef TERN_MIGRATE_RECORD_H
#define TERN_MIGRATE_RECORD_H

#include <isa-l/crc.h>

#include "vmm/util.h"

struct rec_file_header {
	char magic[8];
	uint16_t major, minor;
	uint32_t crc;
} __attribute__((packed));

struct rec_header {
	uint32_t type, rsvd;
	uint64_t len;
} __attribute__((packed));

_Static_assert(sizeof(struct rec_file_header) == 16, "record file header layout");
_Static_assert(sizeof(struct rec_header) == 16, "record header layout");

#define REC_END 0xffffffffu

/* Standard CRC32C (Castagnoli), chainable: crc32c(b, n2, crc32c(a, n1, 0))
 * is the CRC of a followed by b. ISA-L's raw form takes and gives it
 * inverted. */
static inline uint32_t crc32c(const void *p, size_t len, uint32_t prev)
{
	return ~crc32_iscsi((unsigned char *)(uintptr_t)p, (int)len, ~prev);
}

/* Padding after a record of payload length len. */
static inline size_t rec_pad(uint64_t len)
{
	return (8 - (sizeof(struct rec_header) + len + 4) % 8) % 8;
}

#endif
