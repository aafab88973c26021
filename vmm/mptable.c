/* SPDX-License-Identifier: MIT */
/*
 * vmm/mptable.c - builds the MP floating pointer and configuration table.
 * Layouts from the MultiProcessor Specification 1.4, chapter 4 (restated as
 * packed structs with size asserts, not copied from any implementation).
 */
#include "vmm/mptable.h"

#include <errno.h>
#include <string.h>

struct mpf {
	char sig[4];       /* "_MP_" */
	uint32_t physptr;  /* configuration table */
	uint8_t length;    /* in 16-byte units: 1 */
	uint8_t spec_rev;  /* 4 = 1.4 */
	uint8_t checksum;
	uint8_t feature[5];
} __attribute__((packed));

struct mpc_header {
	char sig[4]; /* "PCMP" */
	uint16_t length;
	uint8_t spec_rev;
	uint8_t checksum;
	char oem[8];
	char product[12];
	uint32_t oem_ptr;
	uint16_t oem_size;
	uint16_t count;
	uint32_t lapic;
	uint16_t ext_length;
	uint8_t ext_checksum;
	uint8_t reserved;
} __attribute__((packed));

struct mpc_cpu {
	uint8_t type; /* 0 */
	uint8_t apic_id, apic_ver, flags;
	uint32_t signature, features;
	uint32_t reserved[2];
} __attribute__((packed));

struct mpc_bus {
	uint8_t type; /* 1 */
	uint8_t id;
	char name[6];
} __attribute__((packed));

struct mpc_ioapic {
	uint8_t type; /* 2 */
	uint8_t id, ver, flags;
	uint32_t addr;
} __attribute__((packed));

struct mpc_intsrc {
	uint8_t type; /* 3 = I/O interrupt, 4 = local interrupt */
	uint8_t irqtype;
	uint16_t flags;
	uint8_t src_bus, src_irq, dst_apic, dst_irq;
} __attribute__((packed));

_Static_assert(sizeof(struct mpf) == 16, "MP floating pointer layout");
_Static_assert(sizeof(struct mpc_header) == 44, "MP config header layout");
_Static_assert(sizeof(struct mpc_cpu) == 20, "MP processor entry layout");
_Static_assert(sizeof(struct mpc_bus) == 8, "MP bus entry layout");
_Static_assert(sizeof(struct mpc_ioapic) == 8, "MP IOAPIC entry layout");
_Static_assert(sizeof(struct mpc_intsrc) == 8, "MP interrupt entry layout");

#define NR_ISA_IRQS 16
#define MP_IRQ_INT 0
#define MP_IRQ_NMI 1
#define MP_IRQ_EXTINT 3
#define CPU_ENABLED 1
#define CPU_BSP 2
#define APIC_VERSION 0x14

static uint8_t checksum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t s = 0;

	while (len--)
		s = (uint8_t)(s + *b++);
	return (uint8_t)(0 - s);
}

size_t mptable_size(unsigned nr_cpus)
{
	return sizeof(struct mpf) + sizeof(struct mpc_header) + nr_cpus * sizeof(struct mpc_cpu) +
	       sizeof(struct mpc_bus) + sizeof(struct mpc_ioapic) + NR_ISA_IRQS * sizeof(struct mpc_intsrc) +
	       2 * sizeof(struct mpc_intsrc);
}

int mptable_write(struct guest_mem *mem, gpa_t gpa, size_t size, unsigned nr_cpus, struct err *e)
{
	size_t need = mptable_size(nr_cpus);
	uint8_t *base, *p;
	struct mpc_header *h;
	uint8_t ioapic_id = (uint8_t)nr_cpus;

	if (!nr_cpus || nr_cpus > 254)
		return err_set(e, -EINVAL, "MP table: %u CPUs is out of range", nr_cpus);
	if (need > size)
		return err_set(e, -ENOSPC, "MP table for %u CPUs needs %zu bytes, %zu available", nr_cpus, need, size);
	base = mem_ptr(mem, gpa, need);
	if (!base || gpa + need > 0x100000)
		return err_set(e, -EFAULT, "MP table does not fit below 1 MiB");
	memset(base, 0, need);

	struct mpf *mpf = (struct mpf *)base;
	memcpy(mpf->sig, "_MP_", 4);
	mpf->physptr = (uint32_t)(gpa + sizeof(*mpf));
	mpf->length = 1;
	mpf->spec_rev = 4;
	mpf->checksum = checksum(mpf, sizeof(*mpf));

	h = (struct mpc_header *)(base + sizeof(*mpf));
	p = (uint8_t *)(h + 1);
	memcpy(h->sig, "PCMP", 4);
	h->spec_rev = 4;
	memcpy(h->oem, "TERN    ", 8);
	memcpy(h->product, "TERN MICROVM", 12);
	h->lapic = MPTABLE_LAPIC_GPA;

	for (unsigned i = 0; i < nr_cpus; i++, p += sizeof(struct mpc_cpu)) {
		*(struct mpc_cpu *)p = (struct mpc_cpu){
			.type = 0,
			.apic_id = (uint8_t)i,
			.apic_ver = APIC_VERSION,
			.flags = CPU_ENABLED | (i == 0 ? CPU_BSP : 0),
			.signature = 0x600, /* family 6 */
			.features = 0x201,  /* FPU, APIC */
		};
	}
	*(struct mpc_bus *)p = (struct mpc_bus){ .type = 1, .id = 0, .name = "ISA   " };
	p += sizeof(struct mpc_bus);
	*(struct mpc_ioapic *)p = (struct mpc_ioapic){
		.type = 2, .id = ioapic_id, .ver = 0x11, .flags = 1, .addr = MPTABLE_IOAPIC_GPA };
	p += sizeof(struct mpc_ioapic);
	/* ISA IRQ n -> IOAPIC pin n: KVM's default GSI routing, PIT included. */
	for (unsigned irq = 0; irq < NR_ISA_IRQS; irq++, p += sizeof(struct mpc_intsrc)) {
		*(struct mpc_intsrc *)p = (struct mpc_intsrc){
			.type = 3, .irqtype = MP_IRQ_INT, .src_bus = 0, .src_irq = (uint8_t)irq,
			.dst_apic = ioapic_id, .dst_irq = (uint8_t)irq };
	}
	*(struct mpc_intsrc *)p = (struct mpc_intsrc){
		.type = 4, .irqtype = MP_IRQ_EXTINT, .src_bus = 0, .dst_apic = 0xff, .dst_irq = 0 };
	p += sizeof(struct mpc_intsrc);
	*(struct mpc_intsrc *)p = (struct mpc_intsrc){
		.type = 4, .irqtype = MP_IRQ_NMI, .src_bus = 0, .dst_apic = 0xff, .dst_irq = 1 };
	p += sizeof(struct mpc_intsrc);

	h->count = (uint16_t)(nr_cpus + 2 + NR_ISA_IRQS + 2);
	h->length = (uint16_t)(p - (uint8_t *)h);
	h->checksum = checksum(h, h->length);
	return 0;
}
