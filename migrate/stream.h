/* SPDX-License-Identifier: MIT */
/*
 * migrate/stream.h - tern's migration stream (docs/migration.md): the
 * record framing of migrate/record.h on a connected socket, both ways.
 *
 *   source -> destination   HELLO, CONFIG, then RAM/ZERO/PASS (and DISK)
 *                           records over one or more pre-copy passes,
 *                           STATE, END; later GO
 *   destination -> source   ACCEPT or REFUSE (after CONFIG), READY (after
 *                           END, everything loaded), DONE (the guest runs)
 *   either way              ERROR with a message, then the connection closes
 *
 * Every record carries a CRC32C; every length is checked against a limit
 * before anything is read into memory.
 */
#ifndef TERN_MIGRATE_STREAM_H
#define TERN_MIGRATE_STREAM_H

#include <sys/uio.h>

#include "migrate/record.h"

#define MIG_MAGIC "TERNMIGR"
/* its version: STATE_MAJOR.STATE_MINOR (record.h) */

enum mig_rec_type {
	MIG_CONFIG = 1,  /* the machine's configuration tree */
	MIG_STATE = 2,   /* device and vCPU state tree */
	MIG_JOIN = 3,    /* struct mig_join: instead of CONFIG, a further
			  * connection of a migration (migrate/stripes.h) */
	MIG_RAM = 16,    /* struct mig_pages + count pages */
	MIG_ZERO = 17,   /* struct mig_pages: pages that are now zero */
	MIG_PASS = 18,   /* struct mig_pass: a pre-copy pass ended */
	MIG_DISK = 19,   /* struct mig_disk (+ its data): a piece of a disk's
			  * image, only in a migration that copies disks */
	MIG_ACCEPT = 32, /* the destination takes this configuration */
	MIG_REFUSE = 33, /* it does not: a message says why */
	MIG_READY = 34,  /* everything is loaded; the guest runs on GO */
	MIG_GO = 35,     /* the source hands over: it will never resume */
	MIG_DONE = 36,   /* the guest runs on the destination */
	MIG_ERROR = 37,  /* the sender gives up: a message says why */
	MIG_NOT_RUN = 38, /* instead of DONE: stopped after GO without ever
			   * starting the guest (a message may say why); the
			   * source may resume */
	MIG_END = REC_END,
};

#define MIG_RUN_MAX 256u     /* pages in one RAM or ZERO record */
#define MIG_MSG_MAX 512u     /* REFUSE and ERROR messages */

struct mig_pages {
	uint64_t first;  /* page index in guest RAM (memfd offset / 4096) */
	uint32_t count;  /* 1..MIG_RUN_MAX */
	uint32_t rsvd;
} __attribute__((packed));

struct mig_pass {
	uint32_t pass, rsvd;
	uint64_t pages;      /* pages sent in the pass */
	uint64_t remaining;  /* dirty pages left at its end */
} __attribute__((packed));

#define MIG_DISK_ZERO 1u     /* mig_disk.flags: the range reads as zeros, no data */

struct mig_disk {
	uint32_t disk;   /* its place among the --disk options */
	uint32_t flags;  /* MIG_DISK_ZERO; other bits are refused */
	uint64_t offset; /* bytes into the image, a multiple of 512 */
	uint64_t len;    /* bytes, a multiple of 512; data: at most DEV_COPY_MAX */
} __attribute__((packed));

_Static_assert(sizeof(struct mig_pages) == 16, "mig_pages layout");
_Static_assert(sizeof(struct mig_disk) == 24, "mig_disk layout");
_Static_assert(sizeof(struct mig_pass) == 24, "mig_pass layout");

struct mig_cancel;
struct mig_tls;
struct mig_tls_creds;
struct mig_stream {
	int fd;
	struct mig_tls *tls;      /* records go through this session; NULL: plain */
	struct mig_tls_creds *creds; /* the destination's, freed with its stream */
	/* receiving: checked before each record (-ECANCELED); NULL: none */
	const struct mig_cancel *cancel;
	uint64_t sent, received;  /* bytes, framing included */
	uint64_t limit;           /* bytes per second sent; 0: no limit */
	uint64_t limit_start_ns;  /* the rate is kept over the whole stream */
};

/* The 16-byte HELLO; mig_recv_hello() refuses another magic, another
 * major version or a newer minor one. */
int mig_send_hello(struct mig_stream *s, struct err *e);
int mig_recv_hello(struct mig_stream *s, struct err *e);

/* Sends one record whose payload is the iovecs' concatenation. */
int mig_sendv(struct mig_stream *s, uint32_t type, const struct iovec *iov, int iovcnt, struct err *e);
int mig_send(struct mig_stream *s, uint32_t type, const void *payload, size_t len, struct err *e);
/* Sends ERROR or REFUSE with a message (best effort, for the peer's log). */
void mig_send_msg(struct mig_stream *s, uint32_t type, const char *msg);

/* Reads a record header (type, length; the reserved field must be 0). */
int mig_recv_header(struct mig_stream *s, struct rec_header *h, struct err *e);
/* Reads len payload bytes into dst, chaining *crc (start it with
 * crc32c(h, sizeof(*h), 0)). */
int mig_recv_payload(struct mig_stream *s, void *dst, size_t len, uint32_t *crc, struct err *e);
/* Reads the CRC and padding after a payload and checks them. */
int mig_recv_trailer(struct mig_stream *s, const struct rec_header *h, uint32_t crc, struct err *e);
/* A whole record of at most max payload bytes into a malloc'd *payload
 * (NULL when empty). */
int mig_recv(struct mig_stream *s, struct rec_header *h, void **payload, size_t max, struct err *e);
/* Receives one record of the given type with an empty payload; ERROR or
 * REFUSE from the peer become e's message (-ECONNREFUSED / -ECONNABORTED). */
int mig_expect(struct mig_stream *s, uint32_t type, const char *what, struct err *e);

#endif
