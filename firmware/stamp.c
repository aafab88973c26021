/* SPDX-License-Identifier: MIT */
/*
 * firmware/stamp.c - test=stamp: the page-stamp workload (reliability
 * target C1) that proves a snapshot, restore or migration lost no page.
 *
 * Each 4 KiB page of a region (mb=N MiB from 16 MiB, default 64) carries
 * {u64 page index, u32 generation, u32 CRC-32 of both} at its start and the
 * generation again in its last 4 bytes. Pass p rewrites every page with
 * generation p, in order, after checking that the page still holds pass
 * p-1's stamp (pass 1 expects zeroes). A page that is missing, misplaced,
 * stale or torn stops the guest with "stamp error ...", status 1.
 *
 * With hot=H MiB (default: all of it), only the first H MiB are rewritten
 * on every pass; the rest, the cold part, is stamped once by pass 1 and
 * then only checked (it must keep generation 1), so the guest has a working
 * set smaller than its memory, as diff snapshots and migrations meet it.
 *
 * Reports "stamp pass=P" after each pass. Every 64 pages it polls COM1: a
 * 'q' ends the run with "stamp ok passes=P", status 0, once the current pass
 * is complete - after a restore the checker therefore has to get through a
 * whole pass over restored memory; any other key is reported at once as
 * "stamp key=K" (benchmarks time a restored guest's first steps with it).
 */
#include "lib.h"
#include "stamp.h"

#define REGION_START (16ull << 20)
#define PAGE 4096u

struct stamp {
	uint64_t index;
	uint32_t gen;
	uint32_t crc;
};

static uint32_t stamp_crc(uint64_t index, uint32_t gen)
{
	uint8_t b[12];

	memcpy(b, &index, 8);
	memcpy(b + 8, &gen, 4);
	return crc32(0, b, sizeof(b));
}

unsigned stamp_run(uint64_t mb, uint64_t hot_mb, uint64_t ram_end)
{
	uint64_t pages = (mb << 20) / PAGE, hot = (hot_mb << 20) / PAGE;
	volatile uint8_t *base = (volatile uint8_t *)(uintptr_t)REGION_START;

	if (!mb || REGION_START + (mb << 20) > ram_end || REGION_START + (mb << 20) > (3ull << 30)) {
		report("error stamp region of %llu MiB does not fit below 0x%llx", (unsigned long long)mb,
		       (unsigned long long)ram_end);
		return GUEST_EXIT_USAGE;
	}
	if (hot > pages)
		hot = pages;
	report("stamp region=0x%llx pages=%llu hot=%llu", (unsigned long long)REGION_START, (unsigned long long)pages,
	       (unsigned long long)hot);
	int quit = 0;

	for (uint32_t pass = 1;; pass++) {
		for (uint64_t i = 0; i < pages; i++) {
			if (!(i & 63)) {
				int c = uart_getc_poll();
				if (c == 'q')
					quit = 1;
				else if (c >= 0x21 && c < 0x7f)
					report("stamp key=%c", (char)c);
			}
			volatile uint8_t *pg = base + i * PAGE;
			struct stamp s;
			uint32_t tail;
			memcpy(&s, (const void *)pg, sizeof(s));
			memcpy(&tail, (const void *)(pg + PAGE - 4), 4);
			int cold = i >= hot && pass > 1;
			uint32_t want = cold ? 1 : pass - 1;
			int ok = pass == 1 ? (!s.index && !s.gen && !s.crc && !tail)
					    : (s.index == i && s.gen == want && s.crc == stamp_crc(i, want) && tail == want);
			if (!ok) {
				report("stamp error page=%llu pass=%u found index=%llu gen=%u crc=0x%08x tail=%u",
				       (unsigned long long)i, pass, (unsigned long long)s.index, s.gen, s.crc, tail);
				return GUEST_EXIT_FAIL;
			}
			if (cold)
				continue;
			s = (struct stamp){ .index = i, .gen = pass, .crc = stamp_crc(i, pass) };
			memcpy((void *)(pg + PAGE - 4), &pass, 4);
			memcpy((void *)pg, &s, sizeof(s));
		}
		report("stamp pass=%u", pass);
		if (quit || uart_getc_poll() == 'q') {
			report("stamp ok passes=%u", pass);
			return GUEST_EXIT_PASS;
		}
	}
}
