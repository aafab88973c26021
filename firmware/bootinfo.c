/* SPDX-License-Identifier: MIT */
/*
 * firmware/bootinfo.c - read the PVH start info or the Linux zero page.
 * Field offsets are those of the public protocols (xen/arch-x86/hvm/start_info.h
 * and Documentation/arch/x86/zero-page.rst); only what the tests need.
 */
#include "bootinfo.h"
#include "cpu.h"
#include "lib.h"

#define PVH_MAGIC 0x336ec578u

static uint32_t rd32(uint64_t base, unsigned off)
{
	return *(const volatile uint32_t *)(uintptr_t)(base + off);
}

static uint64_t rd64(uint64_t base, unsigned off)
{
	return *(const volatile uint64_t *)(uintptr_t)(base + off);
}

static int parse_pvh(struct bootinfo *bi, uint64_t si)
{
	if (rd32(si, 0) != PVH_MAGIC)
		return -1;
	bi->proto = "pvh";
	bi->cmdline = (const char *)(uintptr_t)rd64(si, 24);
	uint32_t nr_modules = rd32(si, 12);
	uint64_t modlist = rd64(si, 16);
	if (nr_modules && modlist) {
		bi->initrd_addr = rd64(modlist, 0);
		bi->initrd_len = rd64(modlist, 8);
	}
	if (rd32(si, 4) >= 1) {
		uint64_t map = rd64(si, 40);
		uint32_t n = rd32(si, 48);
		if (n > BOOTINFO_MAX_MEMMAP)
			return -2;
		for (uint32_t i = 0; i < n; i++) {
			bi->memmap[i].addr = rd64(map + 24 * i, 0);
			bi->memmap[i].len = rd64(map + 24 * i, 8);
			bi->memmap[i].type = rd32(map + 24 * i, 16);
		}
		bi->nr_memmap = n;
	}
	return 0;
}

static int parse_linux(struct bootinfo *bi, uint64_t zp)
{
	const volatile uint8_t *z = (const volatile uint8_t *)(uintptr_t)zp;

	if (rd32(zp, 0x202) != 0x53726448) /* "HdrS" */
		return -3;
	bi->proto = "linux64";
	bi->cmdline = (const char *)(uintptr_t)(rd32(zp, 0x228) | ((uint64_t)rd32(zp, 0x0c8) << 32));
	bi->initrd_addr = rd32(zp, 0x218) | ((uint64_t)rd32(zp, 0x0c0) << 32);
	bi->initrd_len = rd32(zp, 0x21c) | ((uint64_t)rd32(zp, 0x0c4) << 32);
	unsigned n = z[0x1e8];
	if (n > BOOTINFO_MAX_MEMMAP)
		return -4;
	for (unsigned i = 0; i < n; i++) {
		uint64_t e = zp + 0x2d0 + 20 * i;
		bi->memmap[i].addr = rd32(e, 0) | ((uint64_t)rd32(e, 4) << 32);
		bi->memmap[i].len = rd32(e, 8) | ((uint64_t)rd32(e, 12) << 32);
		bi->memmap[i].type = rd32(e, 16);
	}
	bi->nr_memmap = n;
	return 0;
}

int bootinfo_parse(struct bootinfo *bi)
{
	memset(bi, 0, sizeof(*bi));
	bi->cmdline = "";
	if (!boot_info_ptr || boot_info_ptr >= (4ull << 30))
		return -5;
	int r = boot_proto == BOOT_PROTO_PVH ? parse_pvh(bi, boot_info_ptr) : parse_linux(bi, boot_info_ptr);
	if (!bi->cmdline || (uint64_t)(uintptr_t)bi->cmdline >= (4ull << 30))
		bi->cmdline = "";
	return r;
}
