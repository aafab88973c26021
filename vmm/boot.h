/* SPDX-License-Identifier: MIT */
/*
 * vmm/boot.h - kernel loaders (Linux x86 boot protocol bzImage, ELF vmlinux
 * with its 64-bit entry, PVH) and the boot structures they share: e820 map,
 * zero page or hvm_start_info, command line, initrd, MP table, boot GDT and
 * page tables.
 *
 * Every field read from an image is checked against the image's length and
 * guest RAM, with overflow-checked arithmetic; a malformed image is refused
 * with a one-line message in struct err.
 */
#ifndef TERN_VMM_BOOT_H
#define TERN_VMM_BOOT_H

#include "vmm/memory.h"
#include "vmm/util.h"

enum boot_protocol {
	BOOT_PROTOCOL_AUTO,  /* bzImage: 64-bit entry; ELF: PVH if it has the note */
	BOOT_PROTOCOL_LINUX, /* 64-bit Linux boot protocol */
	BOOT_PROTOCOL_PVH,   /* Xen PVH direct boot (32-bit entry) */
};

enum boot_entry {
	BOOT_ENTRY_LINUX64 = 1, /* long mode, RSI = zero page */
	BOOT_ENTRY_PVH32,       /* 32-bit protected mode, paging off, EBX = start info */
};

/* What the BSP's registers must be set to. */
struct boot_setup {
	enum boot_entry entry;
	gpa_t rip;
	gpa_t arg;          /* zero page (RSI) or hvm_start_info (EBX) */
	const char *format; /* "bzImage", "ELF", for messages */
};

struct boot_request {
	const uint8_t *kernel;
	size_t kernel_len;
	const uint8_t *initrd; /* NULL if none */
	size_t initrd_len;
	const char *cmdline;   /* never NULL */
	unsigned nr_cpus;
	enum boot_protocol protocol;
	gpa_t acpi_rsdp;       /* set by boot_load() for the loaders; 0: no ACPI */
};

/* Detects the format and loads; fills *out for vcpu set-up. */
int boot_load(struct guest_mem *mem, const struct boot_request *req, struct boot_setup *out, struct err *e);

/* Format back ends (boot_bzimage.c, boot_elf.c). */
bool boot_is_bzimage(const uint8_t *img, size_t len);
int boot_bzimage_load(struct guest_mem *mem, const struct boot_request *req, struct boot_setup *out,
		      struct err *e);
bool boot_is_elf(const uint8_t *img, size_t len);
int boot_elf_load(struct guest_mem *mem, const struct boot_request *req, struct boot_setup *out, struct err *e);

/* Shared pieces (boot_x86.c). */
#define BOOT_E820_MAX 128
#define E820_RAM 1
#define E820_RESERVED 2

struct boot_e820 {
	uint64_t addr, size;
	uint32_t type;
};

/* The guest's memory map; returns the number of entries. */
unsigned boot_e820_build(const struct guest_mem *mem, struct boot_e820 *map, unsigned max);
/* Copies the command line to BOOT_CMDLINE_GPA; max is the kernel's limit
 * including the NUL. */
int boot_place_cmdline(struct guest_mem *mem, const char *cmdline, size_t max, struct err *e);
/* Places the initrd page-aligned, as high as possible below limit (exclusive)
 * and above floor. */
int boot_place_initrd(struct guest_mem *mem, const struct boot_request *req, gpa_t floor, gpa_t limit,
		      gpa_t *addr, struct err *e);
/* Fills the zero page's e820 table, command line and initrd fields. zp
 * points at the zero page in guest memory (setup header already there). */
int boot_fill_zero_page(struct guest_mem *mem, const struct boot_request *req, uint8_t *zp, gpa_t kernel_end,
			gpa_t initrd_limit, size_t cmdline_max, struct err *e);
/* Writes the PVH start info (+ memory map, module list) and places cmdline
 * and initrd; returns its GPA in *info. */
int boot_setup_pvh(struct guest_mem *mem, const struct boot_request *req, gpa_t kernel_end, gpa_t *info,
		   struct err *e);
/* GDT at BOOT_GDT_GPA and 4 GiB identity page tables at BOOT_PML4_GPA, plus
 * the BIOS data area words that point at the EBDA. */
int boot_setup_low_memory(struct guest_mem *mem, struct err *e);

/* Boot GDT selectors (boot_x86.c writes the table). */
#define BOOT_SEL_CODE32 0x08
#define BOOT_SEL_CODE64 0x10
#define BOOT_SEL_DATA 0x18
#define BOOT_SEL_TSS 0x20

#endif
