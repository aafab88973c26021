/* SPDX-License-Identifier: MIT */
#include "vmm/cpuid.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define CPUID1_ECX_XSAVE (1u << 26)
#define CPUID1_ECX_HYPERVISOR (1u << 31)
#define CPUID1_EDX_HTT (1u << 28)

int cpuid_get_supported(int kvm_fd, struct kvm_cpuid2 **out, struct err *e)
{
	for (unsigned n = 64; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
		if (!c)
			return err_set(e, -ENOMEM, "out of memory for CPUID");
		c->nent = n;
		if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			*out = c;
			return 0;
		}
		int r = -errno;
		free(c);
		if (r != -E2BIG)
			return err_errno(e, r, "KVM_GET_SUPPORTED_CPUID");
	}
	return err_set(e, -E2BIG, "KVM_GET_SUPPORTED_CPUID: too many entries");
}

struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, uint32_t function, uint32_t index)
{
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *en = &c->entries[i];
		if (en->function != function)
			continue;
		if ((en->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) && en->index != index)
			continue;
		return en;
	}
	return NULL;
}

uint64_t cpuid_xcr0(struct kvm_cpuid2 *c)
{
	struct kvm_cpuid_entry2 *l1 = cpuid_find(c, 1, 0), *xs = cpuid_find(c, 0xd, 0);

	if (!l1 || !(l1->ecx & CPUID1_ECX_XSAVE) || !xs)
		return 0;
	return ((uint64_t)xs->edx << 32 | xs->eax) | 1; /* x87 is always on */
}

unsigned cpuid_phys_bits(const struct kvm_cpuid2 *sup)
{
	for (uint32_t i = 0; i < sup->nent; i++)
		if (sup->entries[i].function == 0x80000008 && (sup->entries[i].eax & 0xff))
			return sup->entries[i].eax & 0xff;
	return 36;
}

struct kvm_cpuid2 *cpuid_for_vcpu(const struct kvm_cpuid2 *sup, unsigned id, unsigned nr_cpus)
{
	size_t sz = sizeof(*sup) + sup->nent * sizeof(sup->entries[0]);
	struct kvm_cpuid2 *c = malloc(sz);
	struct kvm_cpuid_entry2 *en;

	if (!c)
		return NULL;
	memcpy(c, sup, sz);
	for (uint32_t i = 0; i < c->nent; i++) {
		en = &c->entries[i];
		switch (en->function) {
		case 1:
			/* initial APIC id, logical CPU count, hypervisor present */
			en->ebx = (en->ebx & 0x0000ffffu) | (id << 24) | ((nr_cpus & 0xff) << 16);
			en->ecx |= CPUID1_ECX_HYPERVISOR;
			if (nr_cpus > 1)
				en->edx |= CPUID1_EDX_HTT;
			break;
		case 0xb:
		case 0x1f:
			/* x2APIC topology: one thread per core, all cores in one package */
			en->edx = id;
			if (en->index == 0) {
				en->eax = 0;
				en->ebx = 1;
				en->ecx = (1u << 8) | 0; /* SMT level */
			} else if (en->index == 1) {
				unsigned shift = 0;
				while ((1u << shift) < nr_cpus)
					shift++;
				en->eax = shift;
				en->ebx = nr_cpus;
				en->ecx = (2u << 8) | 1; /* core level */
			} else {
				en->eax = en->ebx = 0;
				en->ecx = en->index;
			}
			break;
		case 0xa:
			/* no architectural PMU: tern does not virtualise perf counters */
			en->eax = en->ebx = en->ecx = en->edx = 0;
			break;
		default:
			break;
		}
	}
	return c;
}
