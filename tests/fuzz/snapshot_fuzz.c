/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the snapshot state-file parser (reliability target A2). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "migrate/snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct snapshot s;
	struct err e = { { 0 } };
	/* an exactly-sized copy, so any over-read is caught */
	uint8_t *copy = malloc(size ? size : 1);

	memcpy(copy, data, size);
	if (snapshot_parse(copy, size, &s, &e) == 0) {
		/* accepted: the invariants the loader relies on must hold */
		if (!s.config || !s.state || !s.nr_cpus || s.nr_cpus > 64 || s.mem_size < (16u << 20))
			abort();
	} else if (!e.msg[0]) {
		abort(); /* every refusal says why */
	}
	snapshot_free(&s);
	free(copy);
	return 0;
}
