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

/* The format's one version, for state files and the migration stream
 * alike (they carry the same trees): a reader needs the same major and
 * refuses a newer minor. 1.1: diff snapshots (PAGES, parent); 1.2: the
 * control-queue state (ctrl); 1.3: its RSS part (rss); 1.4: one counter
 * for files and stream, node versions "major.minor" (devices/state.h).
 * Before 1.4 the stream counted apart: its 1.1 and 1.2 are files' 1.2 and
 * 1.3. */
#define STATE_MAJOR 1
#define STATE_MINOR 4

#define REC_TRAILER_MAX 12 /* CRC and padding */
#define REC_BAD_CRC 1
#define REC_BAD_PADDING 2

/* A header with magic and this tern's version; its check (what names the
 * file or stream in messages). */
void rec_hello_init(struct rec_file_header *h, const char magic[8]);
int rec_hello_check(const struct rec_file_header *h, const char magic[8], const char *what, struct err *e);
/* What follows a payload of len bytes whose record CRC (header and
 * payload) is crc: its size, and its bytes in tail. */
size_t rec_trailer(uint64_t len, uint32_t crc, uint8_t tail[REC_TRAILER_MAX]);
/* 0, REC_BAD_CRC or REC_BAD_PADDING for the trailer of such a record. */
int rec_trailer_check(const uint8_t *tail, uint64_t len, uint32_t crc);
/* Appends a whole record to buf (cap bytes, *pos used); -ENOSPC. */
int rec_put(uint8_t *buf, size_t *pos, size_t cap, uint32_t type, const void *payload, size_t len);

#endif
