/* SPDX-License-Identifier: MIT */
/*
 * vmm/boot_bzimage.c - Linux bzImage via the 64-bit boot protocol
 * (Documentation/arch/x86/boot.rst): the protected-mode part is loaded at
 * 1 MiB, the setup header is copied into a fresh zero page, and the BSP
 * enters at load address + 0x200 in long mode with RSI = zero page.
 */
#include "vmm/boot.h"

#include <asm/bootparam.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "firmware/abi.h"

#define HDRS_MAGIC 0x53726448u /* "HdrS" */
#define MIN_VERSION 0x020c     /* 2.12: xloadflags, 64-bit entry */
#define SETUP_HEADER_OFF 0x1f1

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static uint16_t get16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

bool boot_is_bzimage(const uint8_t *img, size_t len)
{
	return len >= 0x206 && get16(img + 0x1fe) == 0xaa55 && get32(img + 0x202) == HDRS_MAGIC;
}

int boot_bzimage_load(struct guest_mem *mem, const struct boot_request *req, struct boot_setup *out, struct err *e)
{
	const uint8_t *img = req->kernel;
	size_t len = req->kernel_len, setup_size, hdr_end;
	struct setup_header hdr;
	uint64_t payload, load_end, need_end, base;
	uint8_t *zp, *dst;
	int r;

	if (!boot_is_bzimage(img, len))
		return err_set(e, -ENOEXEC, "kernel is not a bzImage (no HdrS setup header)");
	if (len < SETUP_HEADER_OFF + sizeof(hdr))
		return err_set(e, -ENOEXEC, "bzImage is truncated inside its setup header (%zu bytes)", len);
	memcpy(&hdr, img + SETUP_HEADER_OFF, sizeof(hdr));
	if (hdr.version < MIN_VERSION)
		return err_set(e, -ENOEXEC, "bzImage boot protocol %u.%02u is too old (2.12 or later needed)",
			       hdr.version >> 8, hdr.version & 0xff);
	if (!(hdr.xloadflags & XLF_KERNEL_64))
		return err_set(e, -ENOEXEC, "bzImage has no 64-bit entry point (XLF_KERNEL_64 clear)");
	if (!(hdr.loadflags & LOADED_HIGH))
		return err_set(e, -ENOEXEC, "bzImage is a zImage (not LOADED_HIGH); not supported");

	setup_size = ((size_t)(hdr.setup_sects ? hdr.setup_sects : 4) + 1) * 512;
	if (setup_size >= len)
		return err_set(e, -ENOEXEC, "bzImage is truncated: %zu-byte setup area, file is %zu bytes",
			       setup_size, len);
	/* The header's own length is given by the jump at 0x200; copy no more
	 * than the setup_header we know (len covers it, checked above). */
	hdr_end = 0x202 + (size_t)img[0x201];
	if (hdr_end > SETUP_HEADER_OFF + sizeof(hdr))
		hdr_end = SETUP_HEADER_OFF + sizeof(hdr);

	payload = len - setup_size;
	base = BOOT_KERNEL_GPA;
	/* The kernel needs init_size bytes from where it runs, which for a
	 * relocatable kernel may be pref_address. */
	need_end = base;
	if (hdr.relocatable_kernel && hdr.pref_address > base)
		need_end = hdr.pref_address;
	if (add_overflows(need_end, hdr.init_size > payload ? hdr.init_size : payload, &need_end) ||
	    add_overflows(base, payload, &load_end))
		return err_set(e, -ENOEXEC, "bzImage sizes overflow (init_size 0x%x)", hdr.init_size);
	if (need_end > mem_low_end(mem))
		return err_set(e, -ENOMEM, "bzImage needs guest RAM up to %llu MiB; give the guest more memory",
			       (unsigned long long)((need_end + MiB - 1) / MiB));
	dst = mem_ptr(mem, base, payload);
	if (NEVER(!dst))
		return err_set(e, -EFAULT, "bzImage does not fit in guest RAM");
	memcpy(dst, img + setup_size, payload);

	zp = mem_ptr(mem, BOOT_ZERO_PAGE_GPA, sizeof(struct boot_params));
	if (NEVER(!zp))
		return err_set(e, -EFAULT, "guest RAM too small for the zero page");
	memset(zp, 0, sizeof(struct boot_params));
	memcpy(zp + SETUP_HEADER_OFF, img + SETUP_HEADER_OFF, hdr_end - SETUP_HEADER_OFF);
	((struct boot_params *)zp)->hdr.code32_start = (uint32_t)base;

	r = boot_fill_zero_page(mem, req, zp, need_end, (uint64_t)hdr.initrd_addr_max + 1,
				hdr.cmdline_size ? (size_t)hdr.cmdline_size + 1 : 256, e);
	if (r < 0)
		return r;
	*out = (struct boot_setup){
		.entry = BOOT_ENTRY_LINUX64,
		.rip = base + 0x200,
		.arg = BOOT_ZERO_PAGE_GPA,
		.format = "bzImage",
	};
	return 0;
}
