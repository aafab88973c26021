/* SPDX-License-Identifier: MIT */
/* vmm/boot.c - picks the loader for an image and lays down what all share. */
#include "vmm/boot.h"

#include <errno.h>

#include "firmware/abi.h"
#include "vmm/mptable.h"

int boot_load(struct guest_mem *mem, const struct boot_request *req, struct boot_setup *out, struct err *e)
{
	int r;

	if (!req->kernel_len)
		return err_set(e, -ENOEXEC, "kernel image is empty");
	r = boot_setup_low_memory(mem, e);
	if (r < 0)
		return r;
	r = mptable_write(mem, BOOT_EBDA_GPA, 0xa0000 - BOOT_EBDA_GPA, req->nr_cpus, e);
	if (r < 0)
		return r;
	if (boot_is_elf(req->kernel, req->kernel_len))
		return boot_elf_load(mem, req, out, e);
	if (boot_is_bzimage(req->kernel, req->kernel_len)) {
		if (req->protocol == BOOT_PROTOCOL_PVH)
			return err_set(e, -ENOEXEC, "PVH boot needs an ELF kernel; this is a bzImage");
		return boot_bzimage_load(mem, req, out, e);
	}
	return err_set(e, -ENOEXEC, "unrecognised kernel image format (neither ELF nor bzImage)");
}
