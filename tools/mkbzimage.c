/* SPDX-License-Identifier: MIT */
/*
 * mkbzimage - wrap the test guest's ELF into a bzImage-format file (Linux x86
 * boot protocol 2.15 header, 64-bit entry at load address + 0x200) so that
 * tern's bzImage loader is exercised by the same guest as its ELF loaders.
 *
 * usage: mkbzimage GUEST.elf OUT.bzImage
 *
 * The ELF must have exactly one PT_LOAD segment, at physical 0x100000.
 * There is no real-mode setup code: the image is for loaders that use the
 * 64-bit entry point (tern, Firecracker-style), not for BIOS boot.
 */
#include <elf.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SETUP_SECTS 1
#define LOAD_ADDR 0x100000u

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n);
		if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		}
		*len = (size_t)n;
	}
	fclose(f);
	return buf;
}

int main(int argc, char **argv)
{
	size_t len, setup_len = (SETUP_SECTS + 1) * 512u;
	const Elf64_Phdr *load = NULL;
	uint8_t *elf, *out;
	FILE *f;

	if (argc != 3) {
		fprintf(stderr, "usage: mkbzimage GUEST.elf OUT.bzImage\n");
		return 2;
	}
	elf = slurp(argv[1], &len);
	if (!elf || len < sizeof(Elf64_Ehdr)) {
		fprintf(stderr, "mkbzimage: cannot read %s\n", argv[1]);
		return 1;
	}
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)elf;
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_phoff > len || eh->e_phnum > (len - eh->e_phoff) / sizeof(Elf64_Phdr)) {
		fprintf(stderr, "mkbzimage: %s is not a 64-bit ELF\n", argv[1]);
		return 1;
	}
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *ph = (const Elf64_Phdr *)(elf + eh->e_phoff) + i;
		if (ph->p_type != PT_LOAD)
			continue;
		if (load) {
			fprintf(stderr, "mkbzimage: more than one PT_LOAD\n");
			return 1;
		}
		load = ph;
	}
	if (!load || load->p_paddr != LOAD_ADDR || load->p_offset > len || load->p_filesz > len - load->p_offset ||
	    eh->e_entry != LOAD_ADDR + 0x200) {
		fprintf(stderr, "mkbzimage: need one PT_LOAD at 0x%x with entry at +0x200\n", LOAD_ADDR);
		return 1;
	}

	size_t payload = (load->p_filesz + 15) & ~(size_t)15;
	out = calloc(1, setup_len + payload);
	if (!out)
		return 1;
	memcpy(out + setup_len, elf + load->p_offset, load->p_filesz);

	uint8_t *h = out;
	h[0x1f1] = SETUP_SECTS;
	put32(h + 0x1f4, (uint32_t)(payload / 16)); /* syssize */
	put16(h + 0x1fe, 0xaa55);                   /* boot_flag */
	h[0x200] = 0xeb;                            /* jump over the header */
	h[0x201] = 0x6a;                            /* to 0x26c: header length */
	memcpy(h + 0x202, "HdrS", 4);
	put16(h + 0x206, 0x020f);            /* protocol 2.15 */
	h[0x211] = 0x01;                     /* loadflags: LOADED_HIGH */
	put32(h + 0x214, LOAD_ADDR);         /* code32_start */
	put32(h + 0x22c, 0x7fffffff);        /* initrd_addr_max */
	put32(h + 0x230, 0x200000);          /* kernel_alignment */
	h[0x234] = 0;                        /* not relocatable */
	put16(h + 0x236, 0x1);               /* xloadflags: XLF_KERNEL_64 */
	put32(h + 0x238, 0xffff);            /* cmdline_size */
	put64(h + 0x258, LOAD_ADDR);         /* pref_address */
	put32(h + 0x260, (uint32_t)load->p_memsz); /* init_size */

	f = fopen(argv[2], "wb");
	if (!f || fwrite(out, 1, setup_len + payload, f) != setup_len + payload || fclose(f)) {
		fprintf(stderr, "mkbzimage: cannot write %s: %s\n", argv[2], strerror(errno));
		return 1;
	}
	free(out);
	free(elf);
	return 0;
}
