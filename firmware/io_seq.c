/* SPDX-License-Identifier: MIT */
/*
 * firmware/io_seq.c - test=io-seq: port and MMIO accesses with side
 * effects, back to back, for ever, each one checked, so that an access
 * the VMM handled but KVM never completed (a vCPU state saved between
 * the exit and the next KVM_RUN) shows up after a snapshot's restore or
 * a migration as a lost or doubled access.
 *
 * COM1 in loopback (MCR bit 4): each round writes two bytes to THR (each
 * `out` pushes one into the receive FIFO) and reads them back from RBR
 * after LSR says one is there. A doubled `out` leaves a byte too many, a
 * doubled `in` pops the wrong one (or reads an empty FIFO): either way a
 * byte differs from the sequence, reported as "io-seq error ..." and the
 * guest exits with status 1. Every `every=` rounds (default 4096) the
 * guest leaves loopback and reports "io-seq n=N" through the test device:
 * one MMIO write each, which a doubled write repeats, so the host checks
 * that the N it sees only ever grow. `rounds=` ends the test after that
 * many rounds (default: never).
 */
#include "io_seq.h"
#include "lib.h"

#define COM1 COM1_PORT
#define RBR 0
#define THR 0
#define MCR 4
#define LSR 5
#define LSR_DR 0x01
#define MCR_LOOP 0x10

/* The next byte in the FIFO; -1 when none comes (LSR asked 1000 times). */
static int fifo_pop(void)
{
	for (int i = 0; i < 1000; i++)
		if (inb(COM1 + LSR) & LSR_DR)
			return inb(COM1 + RBR);
	return -1;
}

unsigned io_seq_run(uint64_t every, uint64_t rounds)
{
	uint64_t n = 0;

	report("io-seq ready every=%llu", (unsigned long long)every);
	while (!rounds || n < rounds) {
		outb(COM1 + MCR, 0x03 | MCR_LOOP);
		for (uint64_t k = 0; k < every; k++, n++) {
			uint8_t a = (uint8_t)(2 * n), b = (uint8_t)(2 * n + 1);
			outb(COM1 + THR, a);
			outb(COM1 + THR, b);
			int x = fifo_pop(), y = fifo_pop();
			if (x != a || y != b) {
				int z = fifo_pop(); /* a doubled write leaves one more */
				outb(COM1 + MCR, 0x03);
				report("io-seq error round=%llu read %d %d (then %d), want %u %u",
				       (unsigned long long)n, x, y, z, a, b);
				return GUEST_EXIT_FAIL;
			}
		}
		outb(COM1 + MCR, 0x03); /* reports go to COM1 too */
		report("io-seq n=%llu", (unsigned long long)n);
	}
	return GUEST_EXIT_PASS;
}
