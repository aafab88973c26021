/* SPDX-License-Identifier: MIT */
/* firmware/io_seq.h - test=io-seq (see io_seq.c). */
#ifndef TERN_FIRMWARE_IO_SEQ_H
#define TERN_FIRMWARE_IO_SEQ_H

#include <stdint.h>

/* Runs the checked port and MMIO sequence: a report every `every` rounds,
 * `rounds` of them (0: for ever). Returns the guest exit status. */
unsigned io_seq_run(uint64_t every, uint64_t rounds);

#endif
