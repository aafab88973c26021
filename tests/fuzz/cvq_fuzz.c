/* SPDX-License-Identifier: MIT */
/* libFuzzer target: control-queue command parsing (reliability target A5):
 * a refused command must leave the state exactly as it was. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vdpa/cvq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t mac[6] = { 0x52, 0x54, 0, 0, 0, 1 };
	const struct cvq_limits lim = { .mac_table_max = 4, .max_pairs = 4, .rss_key_max = 40, .rss_table_max = 64,
				       .hash_types = 7 };
	struct net_ctrl_state s, before;
	uint64_t features = ~0ull;
	uint8_t *copy;

	if (size < 1)
		return 0;
	features = data[0] & 1 ? ~0ull : (1ull << VNET_F_CTRL_VQ) | (1ull << VNET_F_CTRL_RX);
	copy = malloc(size - 1 ? size - 1 : 1);
	memcpy(copy, data + 1, size - 1);
	cvq_state_reset(&s, mac, features);
	before = s;
	if (cvq_apply(&s, &lim, features, copy, size - 1) != CVQ_OK && memcmp(&s, &before, sizeof(s)))
		abort();
	if (s.uni_count > 64 || s.multi_count > 64 || !s.pairs || s.pairs > lim.max_pairs)
		abort();
	if (s.rss.mode == CVQ_RSS_STEER && (s.rss.table_len > 64 || (s.rss.table_len & (s.rss.table_len - 1))))
		abort();
	if (size - 1 >= 6) /* the filter's contract: dst is 6 bytes */
		cvq_filter_pass(&s, copy, copy[2] & 1 ? copy[3] * 16 % 4096 : -1);
	/* steering by the state the command left, over the command's bytes
	 * taken as a frame */
	int q = cvq_rss_queue(&s, copy, size - 1);
	if (q >= lim.max_pairs)
		abort();
	free(copy);
	return 0;
}
