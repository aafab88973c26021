/* SPDX-License-Identifier: MIT */
/*
 * vmm/mptable.h - Intel MultiProcessor Specification 1.4 tables: how Linux
 * (and the test guest) learn the CPUs, the IOAPIC and the ISA interrupt
 * routing without ACPI.
 */
#ifndef TERN_VMM_MPTABLE_H
#define TERN_VMM_MPTABLE_H

#include "vmm/memory.h"

#define MPTABLE_IOAPIC_GPA 0xfec00000u
#define MPTABLE_LAPIC_GPA 0xfee00000u

/* Writes the floating pointer at gpa and the configuration table right after
 * it, using at most size bytes. APIC ids are 0..nr_cpus-1; the IOAPIC gets
 * id nr_cpus. */
int mptable_write(struct guest_mem *mem, gpa_t gpa, size_t size, unsigned nr_cpus, struct err *e);
/* Bytes mptable_write() needs for nr_cpus. */
size_t mptable_size(unsigned nr_cpus);

#endif
