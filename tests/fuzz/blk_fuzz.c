/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: virtio-blk requests from a hostile guest, walked from
 * fuzzed ring memory and checked by devices/blk_request.c. Oracles: a
 * request handed on for I/O lies on the disk (offset and length whole
 * sectors, inside the capacity), its data within the request limits and
 * inside guest memory, a read-only disk never gets a write, discard or
 * write-zeroes, and ASan for any access outside guest memory.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/blk_image.h"
#include "devices/blk_request.h"
#include "tests/fuzz/guest_ram.h"
#include "vdpa/vdpa.h"

#define BASE FUZZ_RAM_BASE
#define SIZE FUZZ_RAM_SIZE

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct blk_req *r, const struct blk_limits *lim, const uint8_t *mem)
{
	if (r->op == BLK_OP_ANSWER)
		return;
	if (r->offset % BLK_SECTOR || r->len % BLK_SECTOR || r->offset / BLK_SECTOR > lim->capacity ||
	    r->len / BLK_SECTOR > lim->capacity - r->offset / BLK_SECTOR)
		abort();
	if (lim->readonly && r->op != BLK_OP_READ && r->op != BLK_OP_FLUSH)
		abort();
	uint64_t total = 0;
	for (unsigned i = 0; i < r->niov; i++) {
		const uint8_t *p = r->iov[i].iov_base;
		if (p < mem || p + r->iov[i].iov_len > mem + SIZE)
			abort();
		total += r->iov[i].iov_len;
	}
	if ((r->op == BLK_OP_READ || r->op == BLK_OP_WRITE) && (total != r->len || r->len > lim->max_bytes ||
								 r->niov > lim->seg_max))
		abort();
	if (r->status_byte < mem || r->status_byte >= mem + SIZE)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vring_chain c;
	static struct blk_req r;
	struct iotlb t;
	struct vring_dev v;
	uint8_t *mem;

	if (!(mem = fuzz_guest_ram(data, size, &t)))
		return 0;
	struct blk_limits lim = { .capacity = (uint64_t)data[4] << (data[5] % 40), .seg_max = 1 + data[6] % 126,
				  .max_bytes = 4096u << (data[7] % 6), .max_range = 64, .readonly = data[0] & 0x80,
				  .discard = data[0] & 0x40, .serial = "fuzz" };
	/* small rings close together, so that short inputs reach requests:
	 * descriptors at 0, avail at 0x100, used at 0x180, buffers anywhere */
	v = (struct vring_dev){
		.num = (uint16_t)(1u << (data[1] % 5)), /* 1..16 */
		.desc_iova = BASE,
		.avail_iova = BASE + 0x100,
		.used_iova = BASE + 0x180,
		.event_idx = data[1] & 0x80,
	};
	if (vring_dev_attach(&v, &t, &t) == 0) {
		unsigned taken = 0;
		while (vring_dev_pop(&v, &c) > 0 && ++taken <= v.num) {
			if (blk_request_parse(&c, &t, &lim, &r) == 0)
				check(&r, &lim, mem);
			vring_dev_push(&v, c.head, r.used_len);
		}
	}
	iotlb_exit(&t);
	free(mem);
	return 0;
}
