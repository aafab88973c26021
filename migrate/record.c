/* SPDX-License-Identifier: MIT */
/* migrate/record.c - the framing state files and the stream share (record.h). */
#include "migrate/record.h"

#include <errno.h>
#include <string.h>

void rec_hello_init(struct rec_file_header *h, const char magic[8])
{
	memset(h, 0, sizeof(*h));
	memcpy(h->magic, magic, 8);
	h->major = STATE_MAJOR;
	h->minor = STATE_MINOR;
	h->crc = crc32c(h, 12, 0);
}

int rec_hello_check(const struct rec_file_header *h, const char magic[8], const char *what, struct err *e)
{
	if (memcmp(h->magic, magic, 8))
		return err_set(e, -EPROTO, "not a tern %s (bad magic)", what);
	if (h->crc != crc32c(h, 12, 0))
		return err_set(e, -EPROTO, "%s header is corrupt (CRC mismatch)", what);
	if (h->major != STATE_MAJOR || h->minor > STATE_MINOR)
		return err_set(e, -EPROTO, "%s version %u.%u is not supported (this tern reads %u.0-%u.%u)", what,
			       h->major, h->minor, STATE_MAJOR, STATE_MAJOR, STATE_MINOR);
	return 0;
}

size_t rec_trailer(uint64_t len, uint32_t crc, uint8_t tail[REC_TRAILER_MAX])
{
	size_t n = 4 + rec_pad(len);

	memset(tail, 0, REC_TRAILER_MAX);
	memcpy(tail, &crc, 4);
	return n;
}

int rec_trailer_check(const uint8_t *tail, uint64_t len, uint32_t crc)
{
	uint32_t got;

	memcpy(&got, tail, 4);
	if (got != crc)
		return REC_BAD_CRC;
	for (size_t i = 4; i < 4 + rec_pad(len); i++)
		if (tail[i])
			return REC_BAD_PADDING;
	return 0;
}

int rec_put(uint8_t *buf, size_t *pos, size_t cap, uint32_t type, const void *payload, size_t len)
{
	struct rec_header h = { .type = type, .len = len };
	uint8_t tail[REC_TRAILER_MAX];
	size_t n;

	if (*pos + sizeof(h) + len + REC_TRAILER_MAX > cap)
		return -ENOSPC;
	memcpy(buf + *pos, &h, sizeof(h));
	if (len)
		memcpy(buf + *pos + sizeof(h), payload, len);
	n = rec_trailer(len, crc32c(buf + *pos, sizeof(h) + len, 0), tail);
	memcpy(buf + *pos + sizeof(h) + len, tail, n);
	*pos += sizeof(h) + len + n;
	return 0;
}
