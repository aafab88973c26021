/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the device-side ring walker fed with fuzzed ring memory
 * and queue state (reliability target A3). Oracles: no chain longer than
 * VRING_MAX_SEGS, every segment inside the mapped window, no more chains
 * taken than the ring holds, and ASan for any access outside guest memory.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/guest_ram.h"
#include "vdpa/vdpa.h"
#include "vdpa/vring.h"

#define BASE FUZZ_RAM_BASE
#define SIZE FUZZ_RAM_SIZE

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vring_chain c;
	struct iotlb t;
	struct vring_dev v;
	uint8_t *mem;

	if (!(mem = fuzz_guest_ram(data, size, &t)))
		return 0;
	v = (struct vring_dev){
		.num = (uint16_t)(1u << (data[0] % 9)),       /* 1..256 */
		.desc_iova = BASE + 16 * (data[1] % 8),
		.avail_iova = BASE + 0x1000 + 2 * (data[2] % 8),
		.used_iova = BASE + 0x2000 + 4 * (data[3] % 8),
		.last_avail = (uint16_t)(data[4] | (data[5] << 8)),
		.event_idx = data[6] & 1,
	};
	if (vring_dev_attach(&v, &t, &t) == 0) {
		unsigned taken = 0;
		int r;
		while ((r = vring_dev_pop(&v, &c)) > 0) {
			if (c.nseg > VRING_MAX_SEGS || ++taken > v.num)
				abort();
			for (unsigned i = 0; i < c.nseg; i++)
				if (c.seg[i].iova < BASE || c.seg[i].iova + c.seg[i].len > BASE + SIZE)
					abort();
			uint8_t buf[64];
			vring_chain_read(&c, &t, 0, buf, sizeof(buf));
			vring_chain_write(&c, &t, 0, buf, sizeof(buf));
			vring_dev_push(&v, c.head, (uint32_t)c.in_len);
		}
		vring_dev_need_notify(&v, 0);
	}
	iotlb_exit(&t);
	free(mem);
	return 0;
}
