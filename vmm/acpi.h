/* SPDX-License-Identifier: MIT */
/*
 * vmm/acpi.h - the ACPI tables tern gives a guest, and the small fixed
 * hardware interface they describe.
 *
 * Linux's Debian builds have no MP-table parser (CONFIG_X86_MPPARSE is off):
 * without ACPI they see one CPU and cannot power off. tern therefore writes
 *
 *   RSDP -> XSDT -> FADT -> FACS, DSDT (\_S5, the PCI root bridge)
 *                -> MADT (one local APIC per vCPU, the IOAPIC, the SCI
 *                         override, LINT1 = NMI)
 *
 * into the BIOS read-only area, where an OS that is not told the RSDP's
 * address finds it by scanning (ACPI 6.5, 5.2.5.1). The boot loaders also
 * pass the address explicitly (boot_params.acpi_rsdp_addr, PVH rsdp_paddr).
 *
 * The FADT's fixed hardware is tern's ACPI PM device (devices/acpi_pm.c) at
 * the ports below: PM1a event and control blocks and a reset register. There
 * is no PM timer, no GPE block and no SMI command port, so the hardware is
 * permanently in ACPI mode (SCI_EN reads as 1).
 *
 * Layouts are restated from the ACPI 6.5 specification (chapter 5) as packed
 * structs with offset asserts; the AML is hand-assembled from chapter 20.
 */
#ifndef TERN_VMM_ACPI_H
#define TERN_VMM_ACPI_H

#include "vmm/memory.h"

/* Where the tables go: the 128 KiB BIOS area the RSDP scan covers. */
#define ACPI_TABLES_GPA 0xe0000ull
#define ACPI_TABLES_SIZE 0x20000ull
/* The RSDP is the first thing in that area (16-byte aligned). */
#define ACPI_RSDP_GPA ACPI_TABLES_GPA

/* The ACPI PM device's port block and registers (offsets from the base). */
#define ACPI_PM_PORT 0x600
#define ACPI_PM_PORT_LEN 0x10
#define ACPI_PM1_EVT_OFF 0x0 /* PM1_STS (2 bytes), PM1_EN (2 bytes) */
#define ACPI_PM1_EVT_LEN 4
#define ACPI_PM1_CNT_OFF 0x4 /* PM1_CNT (2 bytes) */
#define ACPI_PM1_CNT_LEN 2
#define ACPI_RESET_OFF 0x8   /* reset register (1 byte) */
#define ACPI_RESET_VALUE 0x1 /* the value that resets the machine */

/* PM1 control register bits (ACPI 6.5, 4.8.3.2.1). */
#define ACPI_PM1_CNT_SCI_EN 0x0001
#define ACPI_PM1_CNT_SLP_TYP_SHIFT 10
#define ACPI_PM1_CNT_SLP_TYP_MASK 0x1c00
#define ACPI_PM1_CNT_SLP_EN 0x2000

/* The SLP_TYP value the DSDT's \_S5 package names: soft off. tern
 * advertises no other sleep state. */
#define ACPI_SLP_TYP_S5 5

/* PCI bus 0's memory window, where devices/pci.c places BARs
 * (devices/acpi_pm.c asserts the two agree): from the start of the 32-bit
 * hole to the test device. */
#define ACPI_PCI_MMIO_BASE MEM_HOLE_START
#define ACPI_PCI_MMIO_END 0xfe000000ull

/* The SCI's ISA IRQ (level, active high: the MADT says so). */
#define ACPI_SCI_IRQ 9

struct acpi_config {
	unsigned nr_cpus;   /* 1..254: local APIC ids 0..nr_cpus-1 */
	uint32_t lapic_gpa; /* local APIC base */
	uint32_t ioapic_gpa;
	uint8_t ioapic_id;
	/* PCI bus 0's memory window, inside the 32-bit hole; a DSDT root
	 * bridge (PNP0A03) is declared only when end > base. */
	uint64_t pci_mmio_base, pci_mmio_end;
};

/*
 * Builds every table into buf, which the guest will see at guest-physical
 * address gpa (all pointers between tables are computed from it), and
 * returns the RSDP's guest-physical address in *rsdp. The first
 * acpi_size(cfg) bytes of buf are overwritten; size must cover
 * them. Pure: touches nothing but buf, so unit tests run it on a plain
 * buffer.
 */
int acpi_build(uint8_t *buf, size_t size, gpa_t gpa, const struct acpi_config *cfg, gpa_t *rsdp, struct err *e);
/* The bytes acpi_build() uses for cfg. */
size_t acpi_size(const struct acpi_config *cfg);
/* acpi_build() into guest memory at ACPI_TABLES_GPA. */
int acpi_write(struct guest_mem *mem, const struct acpi_config *cfg, gpa_t *rsdp, struct err *e);

#endif
