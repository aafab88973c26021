/* SPDX-License-Identifier: MIT */
/*
 * Loader tests on synthetic images: the good paths fill the boot structures
 * as the protocols say; every malformed field is refused with a message that
 * names it; every truncation is refused without reading past the image.
 */
#include <asm/bootparam.h>
#include <elf.h>
#include <errno.h>
#include <stdlib.h>

#include "firmware/abi.h"
#include "tests/unit/unit.h"
#include "vmm/boot.h"

#define LOAD 0x100000ull
#define ELF_TEXT_OFF 0x1000
#define ELF_TEXT_LEN 0x800
#define ELF_MEM_LEN 0x3000
#define PVH_ENTRY (LOAD + 0x10)
#define ELF_ENTRY (LOAD + 0x200)

struct elf_img {
	uint8_t b[ELF_TEXT_OFF + ELF_TEXT_LEN];
};

static Elf64_Ehdr *ehdr(struct elf_img *i)
{
	return (Elf64_Ehdr *)i->b;
}

static Elf64_Phdr *phdr(struct elf_img *i, unsigned n)
{
	return (Elf64_Phdr *)(i->b + sizeof(Elf64_Ehdr)) + n;
}

/* An ELF with one PT_LOAD at 1 MiB and, if pvh, a PT_NOTE with the Xen note. */
static void make_elf(struct elf_img *i, bool pvh)
{
	const size_t note_off = 0x200;
	Elf64_Ehdr *eh = ehdr(i);

	memset(i, 0, sizeof(*i));
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_ident[EI_VERSION] = EV_CURRENT;
	eh->e_type = ET_EXEC;
	eh->e_machine = EM_X86_64;
	eh->e_version = EV_CURRENT;
	eh->e_entry = ELF_ENTRY;
	eh->e_phoff = sizeof(Elf64_Ehdr);
	eh->e_ehsize = sizeof(Elf64_Ehdr);
	eh->e_phentsize = sizeof(Elf64_Phdr);
	eh->e_phnum = pvh ? 2 : 1;
	*phdr(i, 0) = (Elf64_Phdr){ .p_type = PT_LOAD, .p_offset = ELF_TEXT_OFF, .p_vaddr = LOAD,
				    .p_paddr = LOAD, .p_filesz = ELF_TEXT_LEN, .p_memsz = ELF_MEM_LEN };
	for (unsigned k = 0; k < ELF_TEXT_LEN; k++)
		i->b[ELF_TEXT_OFF + k] = (uint8_t)(k * 7 + 1);
	if (pvh) {
		Elf64_Nhdr nh = { .n_namesz = 4, .n_descsz = 8, .n_type = 18 };
		uint64_t entry = PVH_ENTRY;
		memcpy(i->b + note_off, &nh, sizeof(nh));
		memcpy(i->b + note_off + sizeof(nh), "Xen", 4);
		memcpy(i->b + note_off + sizeof(nh) + 4, &entry, 8);
		*phdr(i, 1) = (Elf64_Phdr){ .p_type = PT_NOTE, .p_offset = note_off,
					    .p_filesz = sizeof(nh) + 4 + 8 };
	}
}

struct env {
	struct guest_mem mem;
	struct err e;
	struct boot_setup out;
	uint8_t initrd[10000];
	struct boot_request req;
};

static int setup(void **state)
{
	struct env *v = calloc(1, sizeof(*v));
	struct err e = { { 0 } };

	if (!v || mem_init(&v->mem, 64 * MiB, &e) < 0)
		return -1;
	for (size_t k = 0; k < sizeof(v->initrd); k++)
		v->initrd[k] = (uint8_t)(k ^ 0x5a);
	*state = v;
	return 0;
}

static int teardown(void **state)
{
	struct env *v = *state;

	mem_destroy(&v->mem);
	free(v);
	return 0;
}

static int load(struct env *v, const void *img, size_t len, enum boot_protocol proto, const char *cmdline,
		bool initrd)
{
	memset(&v->e, 0, sizeof(v->e));
	memset(v->mem.hva, 0, 2 * MiB);
	v->req = (struct boot_request){
		.kernel = img, .kernel_len = len, .cmdline = cmdline, .nr_cpus = 2, .protocol = proto,
		.initrd = initrd ? v->initrd : NULL, .initrd_len = initrd ? sizeof(v->initrd) : 0 };
	return boot_load(&v->mem, &v->req, &v->out, &v->e);
}

static void test_elf_pvh(void **state)
{
	struct env *v = *state;
	struct elf_img i;
	uint32_t u32;
	uint64_t u64;

	make_elf(&i, true);
	assert_int_equal(load(v, &i, sizeof(i), BOOT_PROTOCOL_AUTO, "console=ttyS0 x=y", true), 0);
	assert_int_equal(v->out.entry, BOOT_ENTRY_PVH32);
	assert_int_equal(v->out.rip, PVH_ENTRY);
	assert_int_equal(v->out.arg, BOOT_PVH_INFO_GPA);
	/* the segment: file bytes copied, the rest of memsz zeroed */
	assert_memory_equal(mem_ptr(&v->mem, LOAD, ELF_TEXT_LEN), i.b + ELF_TEXT_OFF, ELF_TEXT_LEN);
	const uint8_t *si = mem_ptr(&v->mem, BOOT_PVH_INFO_GPA, 56);
	memcpy(&u32, si, 4);
	assert_int_equal(u32, 0x336ec578);
	memcpy(&u32, si + 12, 4);
	assert_int_equal(u32, 1); /* one module: the initrd */
	memcpy(&u64, si + 24, 8);
	assert_string_equal((const char *)mem_ptr(&v->mem, u64, 1), "console=ttyS0 x=y");
	memcpy(&u64, si + 16, 8);
	const uint8_t *mod = mem_ptr(&v->mem, u64, 32);
	uint64_t ird, irdlen;
	memcpy(&ird, mod, 8);
	memcpy(&irdlen, mod + 8, 8);
	assert_int_equal(irdlen, sizeof(v->initrd));
	assert_int_equal(ird % 4096, 0);
	assert_true(ird >= LOAD + ELF_MEM_LEN && ird + irdlen <= 64 * MiB);
	assert_memory_equal(mem_ptr(&v->mem, ird, irdlen), v->initrd, irdlen);
	memcpy(&u32, si + 48, 4);
	assert_int_equal(u32, 3); /* memmap entries for 64 MiB */
}

static void test_elf_linux64(void **state)
{
	struct env *v = *state;
	struct elf_img i;

	make_elf(&i, false);
	assert_int_equal(load(v, &i, sizeof(i), BOOT_PROTOCOL_AUTO, "quiet", false), 0);
	assert_int_equal(v->out.entry, BOOT_ENTRY_LINUX64);
	assert_int_equal(v->out.rip, ELF_ENTRY);
	const struct boot_params *bp = mem_ptr(&v->mem, BOOT_ZERO_PAGE_GPA, sizeof(*bp));
	assert_int_equal(bp->hdr.header, 0x53726448);
	assert_int_equal(bp->hdr.type_of_loader, 0xff);
	assert_int_equal(bp->hdr.cmd_line_ptr, BOOT_CMDLINE_GPA);
	assert_int_equal(bp->hdr.ramdisk_size, 0);
	assert_int_equal(bp->e820_entries, 3);
	assert_int_equal(bp->e820_table[2].addr, LOAD);
	assert_int_equal(bp->e820_table[2].size, 64 * MiB - LOAD);
	/* the note is used by default, and can be overridden */
	make_elf(&i, true);
	assert_int_equal(load(v, &i, sizeof(i), BOOT_PROTOCOL_LINUX, "", false), 0);
	assert_int_equal(v->out.entry, BOOT_ENTRY_LINUX64);
}

static void expect_elf_error(struct env *v, struct elf_img *i, enum boot_protocol proto, const char *needle)
{
	int r = load(v, i, sizeof(*i), proto, "", false);
	if (r >= 0)
		fail_msg("image accepted, expected an error containing '%s'", needle);
	assert_err_contains(&v->e, needle);
}

static void test_elf_bad_fields(void **state)
{
	struct env *v = *state;
	struct elf_img i;

#define CASE(mutation, proto, needle)                                                                  \
	do {                                                                                           \
		make_elf(&i, true);                                                                    \
		mutation;                                                                              \
		expect_elf_error(v, &i, proto, needle);                                               \
	} while (0)
	CASE(ehdr(&i)->e_ident[EI_CLASS] = ELFCLASS32, BOOT_PROTOCOL_AUTO, "64-bit");
	CASE(ehdr(&i)->e_machine = EM_386, BOOT_PROTOCOL_AUTO, "not x86-64");
	CASE(ehdr(&i)->e_type = ET_DYN, BOOT_PROTOCOL_AUTO, "not an executable");
	CASE(ehdr(&i)->e_phnum = 0, BOOT_PROTOCOL_AUTO, "program header table");
	CASE(ehdr(&i)->e_phnum = 65, BOOT_PROTOCOL_AUTO, "program header table");
	CASE(ehdr(&i)->e_phnum = 0xffff, BOOT_PROTOCOL_AUTO, "program header table");
	CASE(ehdr(&i)->e_phentsize = 0, BOOT_PROTOCOL_AUTO, "program header table");
	CASE(ehdr(&i)->e_phoff = sizeof(i) - 8, BOOT_PROTOCOL_AUTO, "outside the file");
	CASE(ehdr(&i)->e_phoff = UINT64_MAX - 8, BOOT_PROTOCOL_AUTO, "outside the file");
	CASE(phdr(&i, 0)->p_offset = sizeof(i), BOOT_PROTOCOL_AUTO, "outside the file");
	CASE(phdr(&i, 0)->p_offset = UINT64_MAX, BOOT_PROTOCOL_AUTO, "outside the file");
	CASE(phdr(&i, 0)->p_filesz = ELF_MEM_LEN + 1, BOOT_PROTOCOL_AUTO, "exceeds memory size");
	CASE(phdr(&i, 0)->p_paddr = 0x7000, BOOT_PROTOCOL_AUTO, "below 1 MiB");
	CASE(phdr(&i, 0)->p_paddr = UINT64_MAX - 0x100, BOOT_PROTOCOL_AUTO, "wraps");
	CASE(phdr(&i, 0)->p_paddr = 64 * MiB - 0x1000, BOOT_PROTOCOL_AUTO, "not inside guest RAM");
	CASE(phdr(&i, 0)->p_memsz = UINT64_MAX, BOOT_PROTOCOL_AUTO, "wraps");
	CASE(phdr(&i, 0)->p_type = PT_NULL, BOOT_PROTOCOL_AUTO, "no loadable segment");
	CASE(phdr(&i, 1)->p_filesz = UINT64_MAX, BOOT_PROTOCOL_AUTO, "note segment");
	CASE(phdr(&i, 1)->p_offset = sizeof(i), BOOT_PROTOCOL_AUTO, "note segment");
	CASE(((Elf64_Nhdr *)(i.b + 0x200))->n_namesz = 0xfffffff0, BOOT_PROTOCOL_AUTO, "runs past");
	CASE(((Elf64_Nhdr *)(i.b + 0x200))->n_descsz = 0xffffffff, BOOT_PROTOCOL_AUTO, "runs past");
	CASE(((Elf64_Nhdr *)(i.b + 0x200))->n_descsz = 2; phdr(&i, 1)->p_filesz = 12 + 4 + 4,
	     BOOT_PROTOCOL_AUTO, "4 or 8");
	CASE(memcpy(i.b + 0x200 + 16, &(uint64_t){ 0x5000 }, 8), BOOT_PROTOCOL_AUTO, "PVH entry point");
	CASE(memcpy(i.b + 0x200 + 16, &(uint64_t){ 4 * GiB }, 8), BOOT_PROTOCOL_AUTO, "PVH entry point");
	CASE(ehdr(&i)->e_entry = 0x42, BOOT_PROTOCOL_LINUX, "entry point");
	CASE(phdr(&i, 1)->p_type = PT_NULL, BOOT_PROTOCOL_PVH, "no PVH entry note");
#undef CASE
}

static void test_elf_every_truncation(void **state)
{
	struct env *v = *state;
	struct elf_img i;

	make_elf(&i, true);
	for (size_t len = 0; len < sizeof(i); len++) {
		/* a heap copy of exactly len bytes lets ASan catch any over-read */
		uint8_t *cut = malloc(len ? len : 1);
		memcpy(cut, &i, len);
		int r = load(v, cut, len, BOOT_PROTOCOL_AUTO, "", false);
		free(cut);
		if (r >= 0)
			fail_msg("ELF truncated to %zu bytes was accepted", len);
		assert_true(v->e.msg[0] != '\0');
	}
	assert_int_equal(load(v, &i, sizeof(i), BOOT_PROTOCOL_AUTO, "", false), 0);
}

/* A bzImage: 2 setup sectors, then the payload. */
#define BZ_SETUP 1024
#define BZ_PAYLOAD 4096

struct bz_img {
	uint8_t b[BZ_SETUP + BZ_PAYLOAD];
};

static struct setup_header *bzhdr(struct bz_img *i)
{
	return (struct setup_header *)(i->b + 0x1f1);
}

static void make_bz(struct bz_img *i)
{
	struct setup_header *h = bzhdr(i);

	memset(i, 0, sizeof(*i));
	h->setup_sects = 1;
	h->boot_flag = 0xaa55;
	h->jump = 0x66eb;
	h->header = 0x53726448;
	h->version = 0x020f;
	h->loadflags = LOADED_HIGH;
	h->code32_start = LOAD;
	h->initrd_addr_max = 0x7fffffff;
	h->kernel_alignment = 0x200000;
	h->xloadflags = XLF_KERNEL_64;
	h->cmdline_size = 255;
	h->init_size = 2 * MiB;
	for (unsigned k = 0; k < BZ_PAYLOAD; k++)
		i->b[BZ_SETUP + k] = (uint8_t)(k * 13 + 3);
}

static void test_bzimage(void **state)
{
	struct env *v = *state;
	struct bz_img i;

	make_bz(&i);
	assert_int_equal(load(v, &i, sizeof(i), BOOT_PROTOCOL_AUTO, "root=/dev/vda", true), 0);
	assert_int_equal(v->out.entry, BOOT_ENTRY_LINUX64);
	assert_int_equal(v->out.rip, LOAD + 0x200);
	assert_memory_equal(mem_ptr(&v->mem, LOAD, BZ_PAYLOAD), i.b + BZ_SETUP, BZ_PAYLOAD);
	const struct boot_params *bp = mem_ptr(&v->mem, BOOT_ZERO_PAGE_GPA, sizeof(*bp));
	assert_int_equal(bp->hdr.version, 0x020f);
	assert_int_equal(bp->hdr.type_of_loader, 0xff);
	assert_string_equal((const char *)mem_ptr(&v->mem, bp->hdr.cmd_line_ptr, 1), "root=/dev/vda");
	assert_int_equal(bp->hdr.ramdisk_size, sizeof(v->initrd));
	assert_true(bp->hdr.ramdisk_image >= LOAD + 2 * MiB); /* above init_size */
	assert_memory_equal(mem_ptr(&v->mem, bp->hdr.ramdisk_image, sizeof(v->initrd)), v->initrd,
			    sizeof(v->initrd));
	assert_int_equal(bp->e820_entries, 3);
}

static void expect_bz_error(struct env *v, struct bz_img *i, const char *cmdline, bool initrd, const char *needle)
{
	int r = load(v, i, sizeof(*i), BOOT_PROTOCOL_AUTO, cmdline, initrd);
	if (r >= 0)
		fail_msg("bzImage accepted, expected an error containing '%s'", needle);
	assert_err_contains(&v->e, needle);
}

static void test_bzimage_bad_fields(void **state)
{
	struct env *v = *state;
	struct bz_img i;
	char longline[300];

	memset(longline, 'a', sizeof(longline) - 1);
	longline[sizeof(longline) - 1] = '\0';
#define CASE(mutation, cmdline, initrd, needle)                                                        \
	do {                                                                                           \
		make_bz(&i);                                                                           \
		mutation;                                                                              \
		expect_bz_error(v, &i, cmdline, initrd, needle);                                      \
	} while (0)
	CASE(bzhdr(&i)->version = 0x0200, "", false, "too old");
	CASE(bzhdr(&i)->xloadflags = 0, "", false, "64-bit entry");
	CASE(bzhdr(&i)->loadflags = 0, "", false, "zImage");
	CASE(bzhdr(&i)->setup_sects = 200, "", false, "truncated");
	CASE(bzhdr(&i)->setup_sects = 0xff, "", false, "truncated");
	CASE(bzhdr(&i)->init_size = 0xffffffff, "", false, "more memory");
	CASE(bzhdr(&i)->init_size = 63 * MiB + 1, "", false, "more memory");
	CASE(bzhdr(&i)->relocatable_kernel = 1; bzhdr(&i)->pref_address = UINT64_MAX - 10, "", false,
	     "overflow");
	CASE((void)0, longline, false, "command line is too long");
	CASE(bzhdr(&i)->initrd_addr_max = LOAD + 2 * MiB + 4096, "", true, "does not fit");
	CASE(bzhdr(&i)->boot_flag = 0x1234, "", false, "unrecognised");
#undef CASE
}

static void test_bzimage_every_truncation(void **state)
{
	struct env *v = *state;
	struct bz_img i;

	make_bz(&i);
	/* the payload is not self-describing: any cut past the setup area
	 * loads (a shorter kernel); every cut inside the header must not */
	for (size_t len = 0; len <= BZ_SETUP; len++) {
		uint8_t *cut = malloc(len ? len : 1);
		memcpy(cut, &i, len);
		int r = load(v, cut, len, BOOT_PROTOCOL_AUTO, "", false);
		free(cut);
		if (r >= 0)
			fail_msg("bzImage truncated to %zu bytes was accepted", len);
	}
}

static void test_not_a_kernel(void **state)
{
	struct env *v = *state;
	const char text[] = "root:x:0:0:root:/root:/bin/bash\n";

	assert_int_equal(load(v, text, sizeof(text), BOOT_PROTOCOL_AUTO, "", false), -ENOEXEC);
	assert_err_contains(&v->e, "unrecognised kernel image format");
	assert_int_equal(load(v, text, 0, BOOT_PROTOCOL_AUTO, "", false), -ENOEXEC);
	assert_err_contains(&v->e, "empty");
	struct bz_img i;
	make_bz(&i);
	assert_true(load(v, &i, sizeof(i), BOOT_PROTOCOL_PVH, "", false) < 0);
	assert_err_contains(&v->e, "PVH boot needs an ELF");
}

static void test_e820(void **state)
{
	struct boot_e820 map[BOOT_E820_MAX];
	struct guest_mem m;
	struct err e = { { 0 } };

	(void)state;
	assert_int_equal(mem_init(&m, 4 * GiB, &e), 0);
	unsigned n = boot_e820_build(&m, map, BOOT_E820_MAX);
	assert_int_equal(n, 4);
	assert_int_equal(map[0].addr, 0);
	assert_int_equal(map[0].size, BOOT_EBDA_GPA);
	assert_int_equal(map[1].type, E820_RESERVED);
	assert_int_equal(map[2].addr + map[2].size, 3 * GiB);
	assert_int_equal(map[3].addr, 4 * GiB);
	assert_int_equal(map[3].size, 1 * GiB);
	assert_int_equal(boot_e820_build(&m, map, 2), 0);
	mem_destroy(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_elf_pvh, setup, teardown),
		cmocka_unit_test_setup_teardown(test_elf_linux64, setup, teardown),
		cmocka_unit_test_setup_teardown(test_elf_bad_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_elf_every_truncation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bzimage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bzimage_bad_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bzimage_every_truncation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_a_kernel, setup, teardown),
		cmocka_unit_test(test_e820),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
