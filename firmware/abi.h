/* SPDX-License-Identifier: MIT */
/*
 * firmware/abi.h - the one header shared by tern (the VMM) and the test guest.
 *
 * Self-contained C99: only <stdint.h>. The host side defines TERN_HOST before
 * including it to get the _Static_assert layout pins.
 *
 * The test device is an MMIO page. A guest finds it by reading TESTDEV_MAGIC
 * at offset 0 (a VMM without it reads all-ones or zero there), then:
 *   - reports a line of text: write the GPA of a struct testdev_report to
 *     TESTDEV_REG_REPORT (one 64-bit write; tern copies the record out of
 *     guest memory at that moment, bounds-checked);
 *   - ends the run: write the exit status to TESTDEV_REG_EXIT (32-bit); tern
 *     stops every vCPU and exits with (status & 0xff).
 * Both are single writes so that each costs exactly one MMIO exit.
 */
#ifndef TERN_FIRMWARE_ABI_H
#define TERN_FIRMWARE_ABI_H

#include <stdint.h>

#define TERN_ABI_VERSION 1u

/* Guest-physical placement: inside the 32-bit PCI hole, below the IOAPIC. */
#define TESTDEV_GPA 0xfe000000ull
#define TESTDEV_SIZE 0x1000ull

#define TESTDEV_MAGIC 0x4e524554u /* "TERN", little-endian */

#define TESTDEV_REG_MAGIC 0x00   /* r, u32: TESTDEV_MAGIC */
#define TESTDEV_REG_VERSION 0x04 /* r, u32: TERN_ABI_VERSION */
#define TESTDEV_REG_EXIT 0x08    /* w, u32: exit status */
#define TESTDEV_REG_REPORT 0x10  /* w, u64: GPA of struct testdev_report */

#define TESTDEV_REPORT_MAX 4096u /* largest text a report may carry */

struct testdev_report {
	uint32_t len;  /* bytes of text that follow, <= TESTDEV_REPORT_MAX */
	uint32_t rsvd; /* must be zero */
	char text[];   /* not NUL-terminated; no newline needed */
};

/* The legacy devices tern emulates, at their PC addresses. */
#define COM1_PORT 0x3f8
#define COM1_IRQ 4
#define I8042_DATA_PORT 0x60
#define I8042_CMD_PORT 0x64
#define CMOS_INDEX_PORT 0x70
#define CMOS_DATA_PORT 0x71

/*
 * Low-memory layout tern's loaders use. The test guest relies on none of it
 * except through the boot protocols (boot_params / hvm_start_info, MP table).
 */
#define BOOT_GDT_GPA 0x500ull
#define BOOT_PVH_INFO_GPA 0x6000ull
#define BOOT_ZERO_PAGE_GPA 0x7000ull
#define BOOT_PML4_GPA 0x9000ull
#define BOOT_PDPT_GPA 0xa000ull
#define BOOT_PD_GPA 0xb000ull /* 4 pages: identity map of the low 4 GiB */
#define BOOT_CMDLINE_GPA 0x20000ull
#define BOOT_CMDLINE_MAX 0x10000u
#define BOOT_EBDA_GPA 0x9f000ull /* 4 KiB EBDA: MP table, reserved in e820 */
#define BOOT_KERNEL_GPA 0x100000ull

#ifdef TERN_HOST
_Static_assert(sizeof(struct testdev_report) == 8, "testdev_report header layout");
#endif

#endif
