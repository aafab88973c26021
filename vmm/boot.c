/* SPDX-License-Identifier: MIT */
/* vmm/boot.c - picks the loader for an image and lays down what all share. */
#include "vmm/boot.h"

#include <errno.h>

#include "firmware/abi.h"
#include "vmm/acpi.h"
#include "vmm/mptable.h"

int boot_load(struct guest_mem *mem, const struct boot_request *req, struct boot_setup *out, struct err *e)
{
	/* Both tables describe the same machine: the IOAPIC id follows the
	 * CPUs' APIC ids in each. */
	const struct acpi_config acpi = {
		.nr_cpus = req->nr_cpus,
		.lapic_gpa = MPTABLE_LAPIC_GPA,
		.ioapic_gpa = MPTABLE_IOAPIC_GPA,
		.ioapic_id = (uint8_t)req->nr_cpus,
		.pci_mmio_base = ACPI_PCI_MMIO_BASE,
		.pci_mmio_end = ACPI_PCI_MMIO_END,
	};
	struct boot_request full = *req; /* plus what the loaders must pass on */
	int r;

	if (!req->kernel_len)
		return err_set(e, -ENOEXEC, "kernel image is empty");
	r = boot_setup_low_memory(mem, e);
	if (r < 0)
		return r;
	/* The MP table serves guests without ACPI (the test guest); Linux
	 * builds without an MP-table parser (Debian's) need the ACPI tables. */
	r = mptable_write(mem, BOOT_EBDA_GPA, 0xa0000 - BOOT_EBDA_GPA, req->nr_cpus, e);
	if (r < 0)
		return r;
	r = acpi_write(mem, &acpi, &full.acpi_rsdp, e);
	if (r < 0)
		return r;
	if (boot_is_elf(req->kernel, req->kernel_len))
		return boot_elf_load(mem, &full, out, e);
	if (boot_is_bzimage(req->kernel, req->kernel_len)) {
		if (req->protocol == BOOT_PROTOCOL_PVH)
			return err_set(e, -ENOEXEC, "PVH boot needs an ELF kernel; this is a bzImage");
		return boot_bzimage_load(mem, &full, out, e);
	}
	return err_set(e, -ENOEXEC, "unrecognised kernel image format (neither ELF nor bzImage)");
}
