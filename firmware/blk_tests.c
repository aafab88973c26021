/* SPDX-License-Identifier: MIT */
/*
 * firmware/blk_tests.c - the test guest's virtio-blk workloads:
 *
 *   blk-check   the disk as the driver sees it: capacity, serial (GET_ID),
 *               read-only or not; a read past the end and, on a read-only
 *               disk, a write must be refused with IOERR
 *   blk-stamp   the block-stamp workload: blocks=N 4 KiB blocks from the
 *               start of the disk (default 256), rounds=R (default 3).
 *               Each block carries its index, a generation and a CRC; each
 *               round reads every block, checks what it holds (a stamp of
 *               this index with a good CRC and the generation this guest
 *               wrote there last; before its first write, zeroes or any
 *               good stamp of that index), then writes it again one
 *               generation up. The reports say how many blocks were good,
 *               blank and bad in each round: a write lost, made twice or
 *               put in the wrong place is a bad block. rounds=0 runs on
 *               until tern stops it.
 */
#include "bootinfo.h"
#include "lib.h"
#include "virtio_blk.h"

#define BLOCK 4096
#define STAMP_MAGIC 0x504d5453424b4c42ull /* "BLKSTMP" */

struct stamp {
	uint64_t magic, index, generation;
	uint32_t crc, rsvd;
};

#define MAX_BLOCKS 8192

static struct vblk disk;
/* the generation this guest wrote last into each block, 0 before its
 * first write (in guest RAM: a snapshot or a migration carries it, so a
 * restored guest expects exactly what its disk must hold) */
static uint64_t written[MAX_BLOCKS];

static uint32_t stamp_crc(const uint8_t *block)
{
	/* over the header (but its CRC) and the body */
	uint32_t c = crc32(0, block, offsetof(struct stamp, crc));
	return crc32(c, block + sizeof(struct stamp), BLOCK - sizeof(struct stamp));
}

static void stamp_fill(uint8_t *block, uint64_t index, uint64_t gen)
{
	struct stamp s = { .magic = STAMP_MAGIC, .index = index, .generation = gen };

	for (unsigned i = sizeof(s); i < BLOCK; i++)
		block[i] = (uint8_t)(index * 31 + gen * 7 + i);
	memcpy(block, &s, sizeof(s));
	s.crc = stamp_crc(block);
	memcpy(block, &s, sizeof(s));
}

/* 1 good (with *gen), 0 never written, -1 bad */
static int stamp_check(const uint8_t *block, uint64_t index, uint64_t *gen)
{
	struct stamp s;
	unsigned zero = 1;

	memcpy(&s, block, sizeof(s));
	if (s.magic != STAMP_MAGIC) {
		for (unsigned i = 0; i < BLOCK && zero; i++)
			zero = !block[i];
		return zero ? 0 : -1;
	}
	if (s.index != index || s.crc != stamp_crc(block))
		return -1;
	*gen = s.generation;
	return 1;
}

static int blk_stamp(uint64_t blocks, uint64_t rounds)
{
	unsigned failures = 0;

	if (blocks > MAX_BLOCKS || blocks * (BLOCK / VBLK_SECTOR) > disk.capacity) {
		report("error blk-stamp: %llu blocks do not fit %llu sectors", (unsigned long long)blocks,
		       (unsigned long long)disk.capacity);
		return GUEST_EXIT_USAGE;
	}
	for (uint64_t r = 0; !rounds || r < rounds; r++) {
		uint64_t good = 0, blank = 0, bad = 0, max_gen = 0;
		for (uint64_t i = 0; i < blocks; i++) {
			uint64_t gen = 0, sector = i * (BLOCK / VBLK_SECTOR);
			int st = vblk_request(&disk, VBLK_T_IN, sector, BLOCK);
			int c = st == VBLK_S_OK ? stamp_check(disk.buf, i, &gen) : -1;
			if (written[i] && (c != 1 || gen != written[i]))
				c = -1; /* not what this guest wrote there last */
			good += c == 1;
			blank += c == 0;
			bad += c < 0;
			max_gen = gen > max_gen ? gen : max_gen;
			if (c < 0 && bad <= 4)
				report("blk-stamp bad block=%llu status=%d", (unsigned long long)i, st);
			if (c < 0)
				gen = written[i];
			stamp_fill(disk.buf, i, gen + 1);
			if ((st = vblk_request(&disk, VBLK_T_OUT, sector, BLOCK)) != VBLK_S_OK) {
				report("error blk-stamp write block=%llu status=%d", (unsigned long long)i, st);
				return GUEST_EXIT_FAIL;
			}
			written[i] = gen + 1;
		}
		int fl = vblk_request(&disk, VBLK_T_FLUSH, 0, 0);
		report("blk-stamp round=%llu good=%llu blank=%llu bad=%llu gen=%llu flush=%d", (unsigned long long)r,
		       (unsigned long long)good, (unsigned long long)blank, (unsigned long long)bad,
		       (unsigned long long)max_gen, fl);
		failures += bad != 0 || fl != VBLK_S_OK;
	}
	return failures ? GUEST_EXIT_FAIL : 0;
}

static int blk_check(void)
{
	char serial[21] = { 0 };
	int ro = !!(disk.t.features & VBIT(VIRTIO_BLK_F_RO));
	int id = vblk_request(&disk, VBLK_T_GET_ID, 0, 20);

	if (id == VBLK_S_OK)
		memcpy(serial, disk.buf, 20);
	report("blk capacity=%llu ro=%d id=%d serial=%s", (unsigned long long)disk.capacity, ro, id, serial);
	/* the last sector reads; one past it, and a range running over the
	 * end, are refused */
	int last = vblk_request(&disk, VBLK_T_IN, disk.capacity - 1, VBLK_SECTOR);
	int past = vblk_request(&disk, VBLK_T_IN, disk.capacity, VBLK_SECTOR);
	int over = vblk_request(&disk, VBLK_T_IN, disk.capacity - 1, 2 * VBLK_SECTOR);
	int partial = vblk_request(&disk, VBLK_T_IN, 0, 100); /* not whole sectors */
	memset(disk.buf, 0x5a, VBLK_SECTOR);
	int write = vblk_request(&disk, VBLK_T_OUT, 0, VBLK_SECTOR);
	report("blk last=%d past=%d over=%d partial=%d write=%d", last, past, over, partial, write);
	int ok = last == VBLK_S_OK && past == VBLK_S_IOERR && over == VBLK_S_IOERR && partial == VBLK_S_IOERR &&
		 write == (ro ? VBLK_S_IOERR : VBLK_S_OK);
	return ok ? 0 : GUEST_EXIT_FAIL;
}

unsigned blk_test(const char *test, const struct bootinfo *bi)
{
	char arg[32];

	vnet_mem_from_bootinfo(bi);
	if (vblk_up(&disk, 0) < 0) {
		report("error virtio-blk: %s", disk.t.error);
		return GUEST_EXIT_FAIL;
	}
	if (!strncmp(test, "blk-check", 16))
		return blk_check();
	if (!strncmp(test, "blk-stamp", 16)) {
		uint64_t blocks = cmdline_find(bi->cmdline, "blocks", arg, sizeof(arg)) ? parse_uint(arg) : 256;
		uint64_t rounds = cmdline_find(bi->cmdline, "rounds", arg, sizeof(arg)) ? parse_uint(arg) : 3;
		return blk_stamp(blocks, rounds);
	}
	report("error unknown test '%s'", test);
	return GUEST_EXIT_USAGE;
}
