/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the destination's reading of a migration stream
 * (reliability target A1) - RAM, ZERO, PASS, STATE, END and ERROR records
 * from a hostile source, into a 16 MiB guest memory. Every refusal has a
 * message; an accepted stream has a checked state tree; nothing is read or
 * written outside guest RAM (ASan). No KVM: the VM is its memory only. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migrate/migrate.h"
#include "migrate/snapshot.h"
#include "migrate/stream.h"
#include "vmm/vm.h"

#include <libfdt.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	struct snapshot snap;
	struct err e = { { 0 } };
	int fd[2], big = 1 << 22;

	if (!vm || size > (1u << 20) || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fd) < 0)
		abort();
	if (mem_init(&vm->mem, 16u << 20, &e) < 0)
		abort();
	setsockopt(fd[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	setsockopt(fd[1], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	/* the whole input waits in the socket, then the source hangs up */
	if (size && write(fd[0], data, size) != (ssize_t)size)
		abort();
	shutdown(fd[0], SHUT_WR);
	memset(&snap, 0, sizeof(snap));
	struct mig_stream s = { .fd = fd[1] };
	int r = migrate_recv_stream(&s, vm, &snap, &e);
	if (r < 0 && !e.msg[0])
		abort(); /* every refusal says why */
	if (r == 0 && (!snap.state || snapshot_check_tree(snap.state, fdt_totalsize(snap.state), "state", &e) < 0))
		abort();
	snapshot_free(&snap);
	close(fd[0]);
	close(fd[1]);
	mem_destroy(&vm->mem);
	free(vm);
	return 0;
}
