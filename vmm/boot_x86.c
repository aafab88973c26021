/* SPDX-License-Identifier: MIT */
/*
 * vmm/boot_x86.c - the boot structures every protocol shares.
 *
 * Low memory, as tern lays it out (see firmware/abi.h for the constants):
 *   0x00000  real-mode IVT, BIOS data area (EBDA pointer at 0x40e)
 *   0x00500  boot GDT
 *   0x06000  PVH hvm_start_info, its memory map and module list
 *   0x07000  Linux zero page (boot_params)
 *   0x09000  PML4, PDPT, 4 PDs: identity map of the low 4 GiB
 *   0x20000  kernel command line (64 KiB at most)
 *   0x9f000  EBDA (4 KiB, reserved in e820): the MP table
 *   0x100000 kernel
 * Facts from Documentation/arch/x86/boot.rst and zero-page.rst, and Xen's
 * public hvm/start_info.h (layouts restated below with size asserts).
 */
#include "vmm/boot.h"

#include <asm/bootparam.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "firmware/abi.h"

_Static_assert(sizeof(struct boot_params) == 4096, "zero page layout");
_Static_assert(offsetof(struct boot_params, hdr) == 0x1f1, "setup header offset");
_Static_assert(offsetof(struct boot_params, e820_table) == 0x2d0, "e820 table offset");
_Static_assert(offsetof(struct boot_params, e820_entries) == 0x1e8, "e820 count offset");
_Static_assert(sizeof(struct boot_e820_entry) == 20, "e820 entry layout");

/* Xen public/arch-x86/hvm/start_info.h, version 1. */
#define PVH_START_MAGIC 0x336ec578u
struct pvh_start_info {
	uint32_t magic, version, flags, nr_modules;
	uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
	uint32_t memmap_entries, reserved;
};
struct pvh_mod_entry {
	uint64_t paddr, size, cmdline_paddr, reserved;
};
struct pvh_memmap_entry {
	uint64_t addr, size;
	uint32_t type, reserved;
};
_Static_assert(sizeof(struct pvh_start_info) == 56, "hvm_start_info layout");
_Static_assert(sizeof(struct pvh_mod_entry) == 32, "hvm_modlist_entry layout");
_Static_assert(sizeof(struct pvh_memmap_entry) == 24, "hvm_memmap_table_entry layout");

#define PAGE_SIZE ((uint64_t)PAGE) /* 64-bit: it masks addresses */

unsigned boot_e820_build(const struct guest_mem *mem, struct boot_e820 *map, unsigned max)
{
	unsigned n = 0;

	if (max < 4)
		return 0;
	map[n++] = (struct boot_e820){ 0, BOOT_EBDA_GPA, E820_RAM };
	map[n++] = (struct boot_e820){ BOOT_EBDA_GPA, 0xa0000 - BOOT_EBDA_GPA, E820_RESERVED };
	map[n++] = (struct boot_e820){ BOOT_KERNEL_GPA, mem_low_end(mem) - BOOT_KERNEL_GPA, E820_RAM };
	for (unsigned i = 1; i < mem->nr_regions; i++)
		map[n++] = (struct boot_e820){ mem->regions[i].gpa, mem->regions[i].size, E820_RAM };
	return n;
}

int boot_place_cmdline(struct guest_mem *mem, const char *cmdline, size_t max, struct err *e)
{
	size_t len = strlen(cmdline);
	char *dst;

	if (max > BOOT_CMDLINE_MAX)
		max = BOOT_CMDLINE_MAX;
	if (len + 1 > max)
		return err_set(e, -E2BIG, "kernel command line is too long (%zu bytes, this kernel takes %zu)",
			       len, max - 1);
	dst = mem_ptr(mem, BOOT_CMDLINE_GPA, len + 1);
	if (NEVER(!dst))
		return err_set(e, -EFAULT, "guest memory too small for the command line");
	memcpy(dst, cmdline, len + 1);
	return 0;
}

int boot_place_initrd(struct guest_mem *mem, const struct boot_request *req, gpa_t floor, gpa_t limit,
		      gpa_t *addr, struct err *e)
{
	gpa_t top = mem_low_end(mem), start, floor_end;
	void *dst;

	if (limit < top)
		top = limit;
	if (add_overflows(floor, PAGE_SIZE - 1, &floor_end))
		return err_set(e, -EINVAL, "kernel ends beyond the address space");
	floor = floor_end & ~(PAGE_SIZE - 1);
	if (req->initrd_len > top || top - req->initrd_len < floor)
		return err_set(e, -ENOMEM,
			       "initrd (%zu bytes) does not fit in guest memory below 0x%llx after the kernel; "
			       "give the guest more memory",
			       req->initrd_len, (unsigned long long)top);
	start = (top - req->initrd_len) & ~(PAGE_SIZE - 1);
	dst = mem_ptr(mem, start, req->initrd_len);
	if (NEVER(!dst))
		return err_set(e, -EFAULT, "initrd placement outside guest RAM");
	memcpy(dst, req->initrd, req->initrd_len);
	*addr = start;
	return 0;
}

int boot_fill_zero_page(struct guest_mem *mem, const struct boot_request *req, uint8_t *zp, gpa_t kernel_end,
			gpa_t initrd_limit, size_t cmdline_max, struct err *e)
{
	struct boot_params *bp = (struct boot_params *)zp;
	struct boot_e820 map[BOOT_E820_MAX];
	unsigned n;
	int r;

	r = boot_place_cmdline(mem, req->cmdline, cmdline_max, e);
	if (r < 0)
		return r;
	bp->hdr.type_of_loader = 0xff;
	bp->hdr.cmd_line_ptr = (uint32_t)BOOT_CMDLINE_GPA;
	bp->ext_cmd_line_ptr = 0;
	/* Read by kernels of boot protocol 2.14 and later; older ones scan. */
	bp->acpi_rsdp_addr = req->acpi_rsdp;
	if (req->initrd) {
		gpa_t addr;
		r = boot_place_initrd(mem, req, kernel_end, initrd_limit, &addr, e);
		if (r < 0)
			return r;
		bp->hdr.ramdisk_image = (uint32_t)addr;
		bp->hdr.ramdisk_size = (uint32_t)req->initrd_len;
		bp->ext_ramdisk_image = (uint32_t)(addr >> 32);
		bp->ext_ramdisk_size = (uint32_t)((uint64_t)req->initrd_len >> 32);
	}
	n = boot_e820_build(mem, map, BOOT_E820_MAX);
	if (n > E820_MAX_ENTRIES_ZEROPAGE)
		n = E820_MAX_ENTRIES_ZEROPAGE;
	for (unsigned i = 0; i < n; i++)
		bp->e820_table[i] = (struct boot_e820_entry){ map[i].addr, map[i].size, map[i].type };
	bp->e820_entries = (uint8_t)n;
	return 0;
}

int boot_setup_pvh(struct guest_mem *mem, const struct boot_request *req, gpa_t kernel_end, gpa_t *info,
		   struct err *e)
{
	const gpa_t si_gpa = BOOT_PVH_INFO_GPA;
	const gpa_t mod_gpa = si_gpa + sizeof(struct pvh_start_info);
	const gpa_t map_gpa = mod_gpa + sizeof(struct pvh_mod_entry);
	struct boot_e820 map[BOOT_E820_MAX];
	struct pvh_start_info *si;
	struct pvh_memmap_entry *mm;
	unsigned n = boot_e820_build(mem, map, BOOT_E820_MAX);
	int r;

	/* start info, one module entry and the map must fit below the zero page */
	_Static_assert(BOOT_PVH_INFO_GPA + sizeof(struct pvh_start_info) + sizeof(struct pvh_mod_entry) +
				   8 * sizeof(struct pvh_memmap_entry) <=
			       BOOT_ZERO_PAGE_GPA,
		       "PVH info area");
	if (NEVER(n > 8))
		return err_set(e, -E2BIG, "memory map too large for the PVH info area");
	si = mem_ptr(mem, si_gpa, BOOT_ZERO_PAGE_GPA - si_gpa);
	if (NEVER(!si))
		return err_set(e, -EFAULT, "guest memory too small for PVH start info");
	memset(si, 0, BOOT_ZERO_PAGE_GPA - si_gpa);
	r = boot_place_cmdline(mem, req->cmdline, BOOT_CMDLINE_MAX, e);
	if (r < 0)
		return r;
	*si = (struct pvh_start_info){
		.magic = PVH_START_MAGIC,
		.version = 1,
		.cmdline_paddr = BOOT_CMDLINE_GPA,
		.rsdp_paddr = req->acpi_rsdp,
		.memmap_paddr = map_gpa,
		.memmap_entries = n,
	};
	mm = (struct pvh_memmap_entry *)((uint8_t *)si + (map_gpa - si_gpa));
	for (unsigned i = 0; i < n; i++)
		mm[i] = (struct pvh_memmap_entry){ .addr = map[i].addr, .size = map[i].size, .type = map[i].type };
	if (req->initrd) {
		struct pvh_mod_entry *mod = (struct pvh_mod_entry *)((uint8_t *)si + (mod_gpa - si_gpa));
		gpa_t addr;
		r = boot_place_initrd(mem, req, kernel_end, MEM_HOLE_START, &addr, e);
		if (r < 0)
			return r;
		*mod = (struct pvh_mod_entry){ .paddr = addr, .size = req->initrd_len };
		si->nr_modules = 1;
		si->modlist_paddr = mod_gpa;
	}
	*info = si_gpa;
	return 0;
}

int boot_setup_low_memory(struct guest_mem *mem, struct err *e)
{
	static const uint64_t gdt[] = {
		0,
		0x00cf9a000000ffffull, /* 0x08 code, 32-bit */
		0x00af9a000000ffffull, /* 0x10 code, 64-bit */
		0x00cf92000000ffffull, /* 0x18 data */
		0x00008b0000000067ull, /* 0x20 TSS, 32-bit busy, base 0: PVH wants one */
	};
	uint64_t *g = mem_ptr(mem, BOOT_GDT_GPA, sizeof(gdt));
	uint64_t *pml4 = mem_ptr(mem, BOOT_PML4_GPA, PAGE_SIZE);
	uint64_t *pdpt = mem_ptr(mem, BOOT_PDPT_GPA, PAGE_SIZE);
	uint64_t *pd = mem_ptr(mem, BOOT_PD_GPA, 4 * PAGE_SIZE);
	uint8_t *bda_ebda = mem_ptr(mem, 0x40e, 2);
	uint8_t *bda_basemem = mem_ptr(mem, 0x413, 2); /* unaligned: BIOS layout */
	uint16_t ebda_seg = (uint16_t)(BOOT_EBDA_GPA >> 4), base_kib = (uint16_t)(BOOT_EBDA_GPA / 1024);

	if (NEVER(!g || !pml4 || !pdpt || !pd || !bda_ebda || !bda_basemem))
		return err_set(e, -EFAULT, "guest memory too small for boot structures");
	memcpy(g, gdt, sizeof(gdt));
	memset(pml4, 0, PAGE_SIZE);
	memset(pdpt, 0, PAGE_SIZE);
	pml4[0] = BOOT_PDPT_GPA | 0x3;
	for (unsigned i = 0; i < 4; i++)
		pdpt[i] = (BOOT_PD_GPA + i * PAGE_SIZE) | 0x3;
	for (uint64_t i = 0; i < 4 * 512; i++)
		pd[i] = (i << 21) | 0x83; /* present, writable, 2 MiB */
	memcpy(bda_ebda, &ebda_seg, 2);
	memcpy(bda_basemem, &base_kib, 2);
	return 0;
}
