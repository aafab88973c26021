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
 *   blk-bench   4 KiB random reads (write=0) or writes (write=1) over the
 *               first blocks=N blocks (default 16384: 64 MiB), qd=D
 *               requests in flight (1..32, default 1), ops=K in all
 *               (default 20000), queues=Q request queues the slots are
 *               spread over (1..4, default 1); reports "blk bench start" and then
 *               "blk bench done ops= errors=" (the host times the two)
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

#define BENCH_QD_MAX 32

/* Request slot k: on queue k % nq, descriptors 3j..3j+2 of it (j = k /
 * nq), its header at hdr + 64k (status at +32), its data at data + 4096k. */
static void bench_submit(uint8_t *hdr, uint8_t *data, unsigned k, uint32_t type, uint64_t sector)
{
	struct vq *q = vblk_queue(&disk, k % disk.nq);
	uint8_t *h = hdr + 64 * k;
	uint16_t d = (uint16_t)(3 * (k / disk.nq));

	memcpy(h, &type, 4);
	memset(h + 4, 0, 4);
	memcpy(h + 8, &sector, 8);
	h[32] = 0xff;
	q->desc[d] = (struct vring_desc){ (uint64_t)(uintptr_t)h, 16, VRING_DESC_F_NEXT, (uint16_t)(d + 1) };
	q->desc[d + 1] = (struct vring_desc){ (uint64_t)(uintptr_t)(data + (uint64_t)BLOCK * k), BLOCK,
					      (uint16_t)(VRING_DESC_F_NEXT | (type == VBLK_T_IN ? VRING_DESC_F_WRITE : 0)),
					      (uint16_t)(d + 2) };
	q->desc[d + 2] = (struct vring_desc){ (uint64_t)(uintptr_t)(h + 32), 1, VRING_DESC_F_WRITE, 0 };
	vnet_vq_push(q, d, 3);
}

static unsigned blk_bench(uint64_t blocks, unsigned qd, uint64_t ops, int write)
{
	uint8_t *hdr = vnet_mem_alloc(4096), *data = vnet_mem_alloc((uint64_t)BLOCK * BENCH_QD_MAX);
	uint32_t type = write ? VBLK_T_OUT : VBLK_T_IN;
	uint64_t rnd = 0x9e3779b97f4a7c15ull, issued = 0, done = 0, errors = 0;
	struct timeout to;

	if (!hdr || !data || qd < 1 || qd > BENCH_QD_MAX || 3 * qd > disk.q.size || qd < disk.nq || !blocks ||
	    blocks * (BLOCK / VBLK_SECTOR) > disk.capacity) {
		report("error blk-bench: qd must be 1..%u and blocks fit the disk", BENCH_QD_MAX);
		return GUEST_EXIT_USAGE;
	}
	for (unsigned k = 0; k < qd; k++)
		memset(data + (uint64_t)BLOCK * k, (int)(k + 1), BLOCK);
	report("blk bench start");
	for (; issued < qd && issued < ops; issued++) {
		rnd = rnd * 6364136223846793005ull + 1442695040888963407ull;
		bench_submit(hdr, data, (unsigned)issued, type, (rnd >> 33) % blocks * (BLOCK / VBLK_SECTOR));
	}
	for (unsigned i = 0; i < disk.nq; i++)
		vnet_vq_publish(&disk.t, vblk_queue(&disk, i));
	timeout_start(&to, 120);
	while (done < ops && !timeout_expired(&to)) {
		unsigned got = 0;
		for (unsigned i = 0; i < disk.nq; i++) {
			struct vq *q = vblk_queue(&disk, i);
			uint16_t id;
			uint32_t len;
			unsigned here = 0;
			while (vnet_vq_pop(&disk.t, q, BLOCK + 1, &id, &len)) {
				unsigned k = (id / 3u) * disk.nq + i; /* the slot */
				done++;
				here++;
				errors += id % 3 || k >= qd || hdr[64 * k + 32] != VBLK_S_OK;
				if (issued < ops && k < qd) {
					rnd = rnd * 6364136223846793005ull + 1442695040888963407ull;
					bench_submit(hdr, data, k, type, (rnd >> 33) % blocks * (BLOCK / VBLK_SECTOR));
					issued++;
				}
			}
			if (here)
				vnet_vq_publish(&disk.t, q);
			got += here;
		}
		if (!got)
			cpu_relax();
	}
	report("blk bench done ops=%llu errors=%llu", (unsigned long long)done, (unsigned long long)errors);
	return done == ops && !errors ? 0 : GUEST_EXIT_FAIL;
}

unsigned blk_test(const char *test, const struct bootinfo *bi)
{
	char arg[32];

	vnet_mem_from_bootinfo(bi);
	unsigned queues = cmdline_find(bi->cmdline, "queues", arg, sizeof(arg)) ? parse_uint(arg) : 1;
	if (vblk_up(&disk, 0, queues) < 0) {
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
	if (!strncmp(test, "blk-bench", 16)) {
		uint64_t blocks = cmdline_find(bi->cmdline, "blocks", arg, sizeof(arg)) ? parse_uint(arg) : 16384;
		unsigned qd = cmdline_find(bi->cmdline, "qd", arg, sizeof(arg)) ? parse_uint(arg) : 1;
		uint64_t ops = cmdline_find(bi->cmdline, "ops", arg, sizeof(arg)) ? parse_uint(arg) : 20000;
		int write = cmdline_find(bi->cmdline, "write", arg, sizeof(arg)) && parse_uint(arg);
		return blk_bench(blocks, qd, ops, write);
	}
	report("error unknown test '%s'", test);
	return GUEST_EXIT_USAGE;
}
