/* SPDX-License-Identifier: MIT */
/*
 * firmware/smp.c - MP table parsing (Intel MultiProcessor Specification 1.4)
 * and INIT-SIPI-SIPI start-up of the APs. Runs at CPL3; only the ICR writes
 * go through a system call.
 */
#include "smp.h"
#include "cpu.h"
#include "lib.h"

extern const char ap_tramp_start[], ap_tramp_end[];

static volatile unsigned cpus_up = 1;
static volatile uint8_t apic_ids[MAX_CPUS];

static int checksum_ok(const uint8_t *p, unsigned len)
{
	uint8_t s = 0;

	for (unsigned i = 0; i < len; i++)
		s = (uint8_t)(s + p[i]);
	return s == 0;
}

static const uint8_t *find_mpf(uint64_t start, uint64_t len)
{
	for (uint64_t a = start; a + 16 <= start + len; a += 16) {
		const uint8_t *p = (const uint8_t *)(uintptr_t)a;
		if (!memcmp(p, "_MP_", 4) && p[8] == 1 && checksum_ok(p, 16))
			return p;
	}
	return 0;
}

/* Calls fn(apic_id, is_bsp) for each enabled processor entry; returns the
 * count, or 0 when no valid table exists. */
static int mp_for_each_cpu(void (*fn)(uint8_t apic_id, int bsp))
{
	uint64_t ebda = (uint64_t)(*(volatile uint16_t *)(uintptr_t)0x40e) << 4;
	const uint8_t *mpf = 0;

	if (ebda >= 0x80000 && ebda < 0xa0000)
		mpf = find_mpf(ebda, 1024);
	if (!mpf)
		mpf = find_mpf(0x9fc00, 1024); /* last KiB of base memory */
	if (!mpf)
		mpf = find_mpf(0xf0000, 0x10000);
	if (!mpf)
		return 0;
	uint32_t cfg_addr = *(const uint32_t *)(mpf + 4);
	if (!cfg_addr || cfg_addr >= 0x100000)
		return 0;
	const uint8_t *cfg = (const uint8_t *)(uintptr_t)cfg_addr;
	uint16_t cfg_len = *(const uint16_t *)(cfg + 4);
	if (memcmp(cfg, "PCMP", 4) || cfg_len < 44 || !checksum_ok(cfg, cfg_len))
		return 0;
	uint16_t count = *(const uint16_t *)(cfg + 34);
	const uint8_t *e = cfg + 44, *end = cfg + cfg_len;
	int cpus = 0;

	for (unsigned i = 0; i < count && e < end; i++) {
		if (e[0] == 0) {
			if (e + 20 > end)
				break;
			if (e[3] & 1) {
				cpus++;
				if (fn)
					fn(e[1], e[3] & 2);
			}
			e += 20;
		} else {
			e += 8;
		}
	}
	return cpus;
}

int smp_count_cpus(void)
{
	int n = mp_for_each_cpu(0);
	return n ? n : 1;
}

static void start_one(uint8_t apic_id, int bsp)
{
	if (bsp)
		return;
	syscall2(SYS_APIC_ICR, apic_id, 0x4500); /* INIT, level assert */
	syscall2(SYS_APIC_ICR, apic_id, 0x4600 | AP_SIPI_VECTOR);
	syscall2(SYS_APIC_ICR, apic_id, 0x4600 | AP_SIPI_VECTOR);
}

int smp_start_aps(void)
{
	int expect = smp_count_cpus();

	if (expect > MAX_CPUS)
		expect = MAX_CPUS;
	if (expect <= 1)
		return 1;
	memcpy((void *)(uintptr_t)AP_TRAMP_GPA, ap_tramp_start, (size_t)(ap_tramp_end - ap_tramp_start));
	mp_for_each_cpu(start_one);
	/* Emulated real-mode start-up takes milliseconds per AP here; give
	 * them a generous few seconds of TSC before reporting who came. */
	uint64_t t0 = rdtsc();
	while (cpus_up < (unsigned)expect && rdtsc() - t0 < (8ull << 30))
		cpu_relax();
	return (int)cpus_up;
}

void ap_main(unsigned idx)
{
	uint32_t r[4];

	cpuid(1, 0, r);
	if (idx < MAX_CPUS)
		apic_ids[idx] = (uint8_t)(r[1] >> 24);
	__atomic_fetch_add(&cpus_up, 1, __ATOMIC_SEQ_CST);
	for (;;)
		syscall2(SYS_HALT, 0, 0);
}
