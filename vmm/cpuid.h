/* SPDX-License-Identifier: MIT */
/*
 * vmm/cpuid.h - the CPUID a vCPU sees: KVM_GET_SUPPORTED_CPUID, with the
 * topology leaves set per vCPU and the hypervisor bit on.
 */
#ifndef TERN_VMM_CPUID_H
#define TERN_VMM_CPUID_H

#include <linux/kvm.h>

#include "vmm/util.h"

/* Reads KVM_GET_SUPPORTED_CPUID (growing the buffer on E2BIG). */
int cpuid_get_supported(int kvm_fd, struct kvm_cpuid2 **out, struct err *e);
/* A malloc'd copy of sup patched for vCPU id of nr_cpus. */
struct kvm_cpuid2 *cpuid_for_vcpu(const struct kvm_cpuid2 *sup, unsigned id, unsigned nr_cpus);
/* Guest physical address bits (CPUID 0x80000008 EAX[7:0]); 36 if absent. */
unsigned cpuid_phys_bits(const struct kvm_cpuid2 *sup);
/* Entry for (function, index), or NULL. */
struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, uint32_t function, uint32_t index);
/* XCR0 with every user state component c advertises (CPUID 0xd.0 EDX:EAX),
 * or 0 when c has no XSAVE (CPUID 1 ECX[26]). */
uint64_t cpuid_xcr0(struct kvm_cpuid2 *c);

#endif
