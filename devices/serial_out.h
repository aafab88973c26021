/* SPDX-License-Identifier: MIT */
/*
 * devices/serial_out.h - the console's output queue. A guest writing its
 * UART runs on a vCPU thread; if that thread wrote to the console fd itself,
 * a reader that stops reading (a full pipe) would block the vCPU inside
 * tern, where it can neither run nor be paused - and a migration's or a
 * snapshot's pause would wait for it. The bytes go to a queue instead, and a
 * thread of the queue's own writes them out. Once the reader is a whole
 * queue behind, further bytes are dropped and counted, as a console that
 * cannot keep up loses output.
 */
#ifndef TERN_DEVICES_SERIAL_OUT_H
#define TERN_DEVICES_SERIAL_OUT_H

#include <stdint.h>

struct sandbox;

#define SERIAL_OUT_QUEUE (1u << 20) /* bytes the console may fall behind */

struct serial_out;

/* Starts the writer for fd; NULL when out of memory or threads. */
struct serial_out *serial_out_new(int fd, const struct sandbox *sb);
/* Queues one byte; never blocks (for long: a mutex with the writer). */
void serial_out_put(struct serial_out *o, uint8_t c);
/* Bytes dropped because the queue was full. */
uint64_t serial_out_dropped(struct serial_out *o);
/* Writes out what is queued, then stops the writer and frees o. */
void serial_out_free(struct serial_out *o);

#endif
