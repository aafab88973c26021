/* SPDX-License-Identifier: MIT */
/*
 * vmm/boot_elf.c - ELF kernels: Linux vmlinux entered at e_entry in long mode
 * (64-bit boot protocol, RSI = zero page), or any ELF with a PVH note
 * (XEN_ELFNOTE_PHYS32_ENTRY) entered in 32-bit protected mode with EBX =
 * hvm_start_info. Segments are loaded at their physical addresses.
 */
#include "vmm/boot.h"

#include <asm/bootparam.h>
#include <elf.h>
#include <errno.h>
#include <string.h>

#include "firmware/abi.h"

#define ELF_MAX_PHDRS 64
#define XEN_ELFNOTE_PHYS32_ENTRY 18

bool boot_is_elf(const uint8_t *img, size_t len)
{
	return len >= SELFMAG && !memcmp(img, ELFMAG, SELFMAG);
}

/* Finds the PVH entry in one PT_NOTE segment; 0 if absent, <0 if malformed. */
static int elf_find_pvh_note(const uint8_t *img, size_t len, const Elf64_Phdr *ph, uint64_t *entry,
			     struct err *e)
{
	uint64_t off = ph->p_offset, end;

	if (add_overflows(off, ph->p_filesz, &end) || end > len)
		return err_set(e, -ENOEXEC, "ELF note segment lies outside the file");
	while (end - off >= sizeof(Elf64_Nhdr)) {
		Elf64_Nhdr nh;
		memcpy(&nh, img + off, sizeof(nh));
		uint64_t name_off = off + sizeof(nh);
		uint64_t name_sz = ((uint64_t)nh.n_namesz + 3) & ~3ull;
		uint64_t desc_sz = ((uint64_t)nh.n_descsz + 3) & ~3ull;
		uint64_t desc_off = name_off + name_sz;
		if (name_sz > end - name_off || desc_sz > end - desc_off)
			return err_set(e, -ENOEXEC, "ELF note at offset 0x%llx runs past its segment",
				       (unsigned long long)off);
		if (nh.n_type == XEN_ELFNOTE_PHYS32_ENTRY && nh.n_namesz == 4 && !memcmp(img + name_off, "Xen", 4)) {
			if (nh.n_descsz == 4) {
				uint32_t v;
				memcpy(&v, img + desc_off, 4);
				*entry = v;
			} else if (nh.n_descsz == 8) {
				memcpy(entry, img + desc_off, 8);
			} else {
				return err_set(e, -ENOEXEC, "PVH entry note has a %u-byte value (4 or 8 expected)",
					       nh.n_descsz);
			}
			return 1;
		}
		off = desc_off + desc_sz;
	}
	return 0;
}

static bool in_loaded(const Elf64_Phdr *phdrs, unsigned n, uint64_t addr)
{
	for (unsigned i = 0; i < n; i++)
		if (phdrs[i].p_type == PT_LOAD && addr >= phdrs[i].p_paddr &&
		    addr - phdrs[i].p_paddr < phdrs[i].p_memsz)
			return true;
	return false;
}

static int elf_load_segments(struct guest_mem *mem, const uint8_t *img, size_t len, const Elf64_Phdr *phdrs,
			     unsigned n, gpa_t *kernel_end, struct err *e)
{
	unsigned loaded = 0;

	*kernel_end = BOOT_KERNEL_GPA;
	for (unsigned i = 0; i < n; i++) {
		const Elf64_Phdr *ph = &phdrs[i];
		uint64_t file_end, mem_end;
		uint8_t *dst;

		if (ph->p_type != PT_LOAD || !ph->p_memsz)
			continue;
		if (ph->p_filesz > ph->p_memsz)
			return err_set(e, -ENOEXEC, "ELF segment %u: file size exceeds memory size", i);
		if (add_overflows(ph->p_offset, ph->p_filesz, &file_end) || file_end > len)
			return err_set(e, -ENOEXEC, "ELF segment %u lies outside the file (truncated image?)", i);
		if (ph->p_paddr < BOOT_KERNEL_GPA)
			return err_set(e, -ENOEXEC, "ELF segment %u at 0x%llx overlaps the boot area below 1 MiB",
				       i, (unsigned long long)ph->p_paddr);
		if (add_overflows(ph->p_paddr, ph->p_memsz, &mem_end))
			return err_set(e, -ENOEXEC, "ELF segment %u wraps the address space", i);
		dst = mem_ptr(mem, ph->p_paddr, ph->p_memsz);
		if (!dst)
			return err_set(e, -ENOMEM,
				       "ELF segment %u [0x%llx, 0x%llx) is not inside guest RAM; give the guest more memory",
				       i, (unsigned long long)ph->p_paddr, (unsigned long long)mem_end);
		memcpy(dst, img + ph->p_offset, ph->p_filesz);
		memset(dst + ph->p_filesz, 0, ph->p_memsz - ph->p_filesz);
		if (mem_end > *kernel_end)
			*kernel_end = mem_end;
		loaded++;
	}
	if (!loaded)
		return err_set(e, -ENOEXEC, "ELF image has no loadable segment");
	return 0;
}

int boot_elf_load(struct guest_mem *mem, const struct boot_request *req, struct boot_setup *out, struct err *e)
{
	const uint8_t *img = req->kernel;
	size_t len = req->kernel_len;
	Elf64_Phdr phdrs[ELF_MAX_PHDRS];
	uint64_t pvh_entry = 0, ph_end;
	bool has_pvh = false;
	gpa_t kernel_end;
	Elf64_Ehdr eh;
	int r;

	if (!boot_is_elf(img, len))
		return err_set(e, -ENOEXEC, "kernel is not an ELF file");
	if (len < sizeof(eh))
		return err_set(e, -ENOEXEC, "ELF image is truncated (%zu bytes)", len);
	memcpy(&eh, img, sizeof(eh));
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB)
		return err_set(e, -ENOEXEC, "ELF image is not 64-bit little-endian");
	if (eh.e_machine != EM_X86_64)
		return err_set(e, -ENOEXEC, "ELF image is for machine %u, not x86-64", eh.e_machine);
	if (eh.e_type != ET_EXEC)
		return err_set(e, -ENOEXEC, "ELF image is not an executable (type %u)", eh.e_type);
	if (eh.e_phentsize != sizeof(Elf64_Phdr) || !eh.e_phnum || eh.e_phnum > ELF_MAX_PHDRS)
		return err_set(e, -ENOEXEC, "ELF image has a bad program header table (%u entries of %u bytes)",
			       eh.e_phnum, eh.e_phentsize);
	if (add_overflows(eh.e_phoff, (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr), &ph_end) || ph_end > len)
		return err_set(e, -ENOEXEC, "ELF program headers lie outside the file");
	memcpy(phdrs, img + eh.e_phoff, (size_t)eh.e_phnum * sizeof(Elf64_Phdr));

	for (unsigned i = 0; i < eh.e_phnum && !has_pvh; i++) {
		if (phdrs[i].p_type != PT_NOTE)
			continue;
		r = elf_find_pvh_note(img, len, &phdrs[i], &pvh_entry, e);
		if (r < 0)
			return r;
		has_pvh = r > 0;
	}
	r = elf_load_segments(mem, img, len, phdrs, eh.e_phnum, &kernel_end, e);
	if (r < 0)
		return r;

	if (req->protocol == BOOT_PROTOCOL_PVH || (req->protocol == BOOT_PROTOCOL_AUTO && has_pvh)) {
		if (!has_pvh)
			return err_set(e, -ENOEXEC, "ELF image has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)");
		if (pvh_entry >= MEM_HOLE_START || !in_loaded(phdrs, eh.e_phnum, pvh_entry))
			return err_set(e, -ENOEXEC, "PVH entry point 0x%llx is outside the loaded segments",
				       (unsigned long long)pvh_entry);
		gpa_t info;
		r = boot_setup_pvh(mem, req, kernel_end, &info, e);
		if (r < 0)
			return r;
		*out = (struct boot_setup){ .entry = BOOT_ENTRY_PVH32, .rip = pvh_entry, .arg = info, .format = "ELF (PVH)" };
		return 0;
	}

	if (!in_loaded(phdrs, eh.e_phnum, eh.e_entry))
		return err_set(e, -ENOEXEC, "ELF entry point 0x%llx is outside the loaded segments",
			       (unsigned long long)eh.e_entry);
	uint8_t *zp = mem_ptr(mem, BOOT_ZERO_PAGE_GPA, sizeof(struct boot_params));
	if (NEVER(!zp))
		return err_set(e, -EFAULT, "guest RAM too small for the zero page");
	memset(zp, 0, sizeof(struct boot_params));
	struct setup_header *h = &((struct boot_params *)zp)->hdr;
	h->boot_flag = 0xaa55;
	h->header = 0x53726448; /* "HdrS" */
	h->version = 0x020f;
	h->kernel_alignment = 0x1000000;
	h->cmdline_size = BOOT_CMDLINE_MAX - 1;
	h->initrd_addr_max = 0x7fffffff;
	r = boot_fill_zero_page(mem, req, zp, kernel_end, 0x80000000ull, BOOT_CMDLINE_MAX, e);
	if (r < 0)
		return r;
	*out = (struct boot_setup){ .entry = BOOT_ENTRY_LINUX64, .rip = eh.e_entry, .arg = BOOT_ZERO_PAGE_GPA,
				    .format = "ELF" };
	return 0;
}
