/* SPDX-License-Identifier: MIT */
/*
 * firmware/main.c - the test guest's CPL3 workload dispatcher.
 *
 * Orders come from the kernel command line: test=NAME picks the workload,
 * exit=N the status boot-info ends with. Results go to the test device as
 * "key=value" lines (and to COM1 for people).
 *
 *   boot-info  report protocol, cmdline, memory map, initrd size and CRC-32,
 *              CPUs that reached CPL3; the default
 *   exit       end at once with exit=N
 *   fault      execute ud2 (the CPL0 handler reports the fault, status 2)
 *   reset      ask for a reset through the i8042 (status 0 from tern)
 *   echo       echo console lines back as reports until "quit"
 *   halt       report, then halt forever (for tests that stop tern)
 *   net-*      virtio-net workloads (net_tests.c)
 *   blk-*      virtio-blk workloads (blk_tests.c)
 *   stamp      the page-stamp workload (stamp.c), mb=N MiB, hot=H MiB
 */
#include "bootinfo.h"
#include "cpu.h"
#include "io_seq.h"
#include "lib.h"
#include "smp.h"
#include "stamp.h"
#include "virtio_blk.h"
#include "virtio_net.h"

static struct bootinfo bi;

/* Copies the value of "key=" from the cmdline into out; 0 if absent. */
static int cmdline_get(const char *key, char *out, size_t size)
{
	return cmdline_find(bi.cmdline, key, out, size);
}

static void test_boot_info(void)
{
	uint64_t ram = 0;

	report("proto=%s", bi.proto);
	report("cmdline=%s", bi.cmdline);
	for (unsigned i = 0; i < bi.nr_memmap; i++) {
		report("memmap addr=0x%llx len=0x%llx type=%u", (unsigned long long)bi.memmap[i].addr,
		       (unsigned long long)bi.memmap[i].len, bi.memmap[i].type);
		if (bi.memmap[i].type == 1)
			ram += bi.memmap[i].len;
	}
	report("mem_total=%llu", (unsigned long long)ram);
	if (bi.initrd_len && bi.initrd_addr + bi.initrd_len <= (4ull << 30)) {
		uint32_t crc = crc32(0, (const void *)(uintptr_t)bi.initrd_addr, bi.initrd_len);
		report("initrd len=%llu crc32=0x%08x", (unsigned long long)bi.initrd_len, crc);
	} else {
		report("initrd len=0");
	}
	report("cpus=%d", smp_start_aps());
}

static void test_echo(void)
{
	char line[256];
	size_t n = 0;

	report("echo ready");
	for (;;) {
		int c = uart_getc_poll();
		if (c < 0)
			continue;
		if (c == '\r' || c == '\n') {
			line[n] = '\0';
			if (!n)
				continue;
			report("echo line=%s", line);
			if (!strncmp(line, "quit", 5))
				return;
			n = 0;
		} else if (n + 1 < sizeof(line)) {
			line[n++] = (char)c;
		}
	}
}

void bsp_main(void)
{
	char test[32] = "boot-info", arg[16];
	unsigned status = GUEST_EXIT_PASS;
	int r;

	uart_init();
	r = bootinfo_parse(&bi);
	report("up abi=%u proto=%s testdev=%d", TERN_ABI_VERSION, bi.proto ? bi.proto : "?", testdev_present());
	if (r < 0) {
		report("error bad boot info (%d)", r);
		guest_exit(GUEST_EXIT_FAIL);
	}
	cmdline_get("test", test, sizeof(test));
	if (cmdline_get("exit", arg, sizeof(arg)))
		status = parse_uint(arg);

	if (!strncmp(test, "boot-info", sizeof(test))) {
		test_boot_info();
	} else if (!strncmp(test, "exit", sizeof(test))) {
		/* status as given */
	} else if (!strncmp(test, "fault", sizeof(test))) {
		__asm__ volatile("ud2");
	} else if (!strncmp(test, "reset", sizeof(test))) {
		outb(I8042_CMD_PORT, 0xfe);
		report("error reset request ignored");
		status = GUEST_EXIT_FAIL;
	} else if (!strncmp(test, "echo", sizeof(test))) {
		test_echo();
	} else if (!strncmp(test, "halt", sizeof(test))) {
		report("halted");
		for (;;)
			syscall2(SYS_HALT, 0, 0);
	} else if (!strncmp(test, "blk-", 4)) {
		status = blk_test(test, &bi); /* blk_tests.c */
	} else if (!strncmp(test, "net-", 4)) {
		status = net_test(test, &bi); /* net_tests.c */
	} else if (!strncmp(test, "io-seq", sizeof(test))) {
		uint64_t every = cmdline_get("every", arg, sizeof(arg)) ? parse_uint(arg) : 4096;
		status = io_seq_run(every ? every : 1, cmdline_get("rounds", arg, sizeof(arg)) ? parse_uint(arg) : 0);
	} else if (!strncmp(test, "stamp", sizeof(test))) {
		uint64_t ram_end = 0;
		for (unsigned i = 0; i < bi.nr_memmap; i++)
			if (bi.memmap[i].type == 1 && bi.memmap[i].addr + bi.memmap[i].len > ram_end)
				ram_end = bi.memmap[i].addr + bi.memmap[i].len;
		uint64_t mb = cmdline_get("mb", arg, sizeof(arg)) ? parse_uint(arg) : 64;
		status = stamp_run(mb, cmdline_get("hot", arg, sizeof(arg)) ? parse_uint(arg) : mb, ram_end);
	} else {
		report("error unknown test '%s'", test);
		status = GUEST_EXIT_USAGE;
	}
	report("exit status=%u", status);
	guest_exit(status);
}
