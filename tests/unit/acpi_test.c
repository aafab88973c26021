/* SPDX-License-Identifier: MIT */
/* ACPI tables (vmm/acpi.c) and the ACPI PM device (devices/acpi_pm.c). */
#include <errno.h>
#include <stdlib.h>

#include "devices/acpi_pm.h"
#include "tests/unit/unit.h"
#include "vmm/acpi.h"

#define BASE 0xe0000ull

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static uint16_t get16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

/* The table at guest address gpa, checked: inside the buffer, signature,
 * length, checksum. */
static const uint8_t *table(const uint8_t *buf, size_t size, uint64_t gpa, const char *sig)
{
	assert_true(gpa >= BASE && gpa + 36 <= BASE + size);
	const uint8_t *t = buf + (gpa - BASE);
	uint32_t len = get32(t + 4);
	assert_memory_equal(t, sig, 4);
	assert_true(len >= 36 && gpa + len <= BASE + size);
	assert_int_equal(sum(t, len), 0);
	assert_memory_equal(t + 10, "TERN  ", 6);
	return t;
}

static void check_madt(const uint8_t *m, unsigned ncpus)
{
	uint32_t len = get32(m + 4);
	const uint8_t *p = m + 44, *end = m + len;
	unsigned cpus = 0, ioapics = 0, isos = 0, nmis = 0;

	assert_int_equal(get32(m + 36), 0xfee00000u);
	assert_int_equal(get32(m + 40) & 1, 1); /* PCAT_COMPAT */
	while (p < end) {
		assert_true(p + 2 <= end && p[1] >= 2 && p + p[1] <= end);
		switch (p[0]) {
		case 0:
			assert_int_equal(p[1], 8);
			assert_int_equal(p[2], cpus); /* processor UID */
			assert_int_equal(p[3], cpus); /* APIC id */
			assert_int_equal(get32(p + 4) & 1, 1);
			cpus++;
			break;
		case 1:
			assert_int_equal(p[1], 12);
			assert_int_equal(p[2], ncpus);
			assert_int_equal(get32(p + 4), 0xfec00000u);
			assert_int_equal(get32(p + 8), 0);
			ioapics++;
			break;
		case 2:
			assert_int_equal(p[1], 10);
			assert_int_equal(p[3], ACPI_SCI_IRQ);
			assert_int_equal(get32(p + 4), ACPI_SCI_IRQ);
			assert_int_equal(get16(p + 8), 0xd); /* level, active high */
			isos++;
			break;
		case 4:
			assert_int_equal(p[1], 6);
			assert_int_equal(p[2], 0xff);
			assert_int_equal(p[5], 1); /* LINT1 */
			nmis++;
			break;
		default:
			fail_msg("unexpected MADT entry type %u", p[0]);
		}
		p += p[1];
	}
	assert_ptr_equal(p, end);
	assert_int_equal(cpus, ncpus);
	assert_int_equal(ioapics, 1);
	assert_int_equal(isos, 1);
	assert_int_equal(nmis, 1);
}

/* AML PkgLength (ACPI 6.5, 20.2.4): returns its value, *n its bytes. */
static size_t pkg_length(const uint8_t *p, size_t *n)
{
	size_t follow = p[0] >> 6, v;

	if (!follow) {
		*n = 1;
		return p[0] & 0x3f;
	}
	v = p[0] & 0x0f;
	for (size_t i = 1; i <= follow; i++)
		v |= (size_t)p[i] << (4 + 8 * (i - 1));
	*n = follow + 1;
	return v;
}

static const uint8_t *find(const uint8_t *hay, size_t len, const void *needle, size_t n)
{
	for (size_t i = 0; i + n <= len; i++)
		if (!memcmp(hay + i, needle, n))
			return hay + i;
	return NULL;
}

/* Scope (\_SB) { Device (PCI0) { _HID PNP0A03, _UID 0, _CRS } }, right
 * after \_S5, with every PkgLength ending where its parent does. */
static void check_pci_root(const uint8_t *aml, size_t len, uint32_t base, uint32_t end)
{
	static const uint8_t hid[] = { 0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x03 };
	static const uint8_t bus[] = { 0x88, 13, 0, 2, 0x0c, 0, 0, 0, 0, 0, 0xff, 0, 0, 0, 0, 1 };
	const uint8_t *p = aml, *dev, *crs;
	size_t n, pl;
	uint8_t mem[26] = { 0x87, 23, 0, 0, 0x0c, 0x01 };

	assert_int_equal(p[0], 0x10); /* ScopeOp */
	pl = pkg_length(p + 1, &n);
	assert_int_equal(1 + pl, len); /* the scope ends with the table */
	assert_memory_equal(p + 1 + n, "\\_SB_", 5);
	dev = p + 1 + n + 5;
	assert_int_equal(dev[0], 0x5b);
	assert_int_equal(dev[1], 0x82); /* DeviceOp */
	pl = pkg_length(dev + 2, &n);
	assert_ptr_equal(dev + 2 + pl, aml + len);
	assert_memory_equal(dev + 2 + n, "PCI0", 4);
	assert_non_null(find(dev, len - (size_t)(dev - aml), hid, sizeof(hid)));
	crs = find(dev, len - (size_t)(dev - aml), "_CRS", 4);
	if (!crs) {
		fail_msg("no _CRS in the PCI root bridge");
		return;
	}
	assert_int_equal(crs[4], 0x11); /* BufferOp */
	pl = pkg_length(crs + 5, &n);
	assert_ptr_equal(crs + 5 + pl, aml + len);
	assert_int_equal(crs[5 + n], 0x0a);
	assert_int_equal(crs[6 + n], sizeof(bus) + sizeof(mem) + 2); /* + end tag */
	assert_memory_equal(crs + 7 + n, bus, sizeof(bus));
	memcpy(mem + 10, &base, 4);
	uint32_t max = end - 1, wlen = end - base;
	memcpy(mem + 14, &max, 4);
	memcpy(mem + 22, &wlen, 4);
	assert_memory_equal(crs + 7 + n + sizeof(bus), mem, sizeof(mem));
	assert_int_equal(crs[7 + n + sizeof(bus) + sizeof(mem)], 0x79); /* end tag */
}

static void check_fadt(const uint8_t *buf, size_t size, const uint8_t *f, bool pci)
{
	static const uint8_t s5[] = { 0x08, '\\', '_', 'S', '5', '_', 0x12, 0x08, 0x04,
				      0x0a, ACPI_SLP_TYP_S5, 0x0a, ACPI_SLP_TYP_S5, 0x00, 0x00 };
	const uint8_t *facs, *dsdt;

	assert_int_equal(get32(f + 4), 276);
	assert_int_equal(f[8], 6);
	/* FACS: 64-byte aligned, given once (ACPICA would install it twice) */
	assert_int_equal(get32(f + 36) % 64, 0);
	assert_int_equal(get64(f + 132), 0);
	facs = buf + (get32(f + 36) - BASE);
	assert_memory_equal(facs, "FACS", 4);
	assert_int_equal(get32(facs + 4), 64);
	/* DSDT: both pointers agree; the AML is exactly the \_S5 package */
	assert_int_equal(get64(f + 140), get32(f + 40));
	dsdt = table(buf, size, get32(f + 40), "DSDT");
	assert_memory_equal(dsdt + 36, s5, sizeof(s5));
	if (pci)
		check_pci_root(dsdt + 36 + sizeof(s5), get32(dsdt + 4) - 36 - sizeof(s5), 0xc0000000u,
			       0xfe000000u);
	else
		assert_int_equal(get32(dsdt + 4), 36 + sizeof(s5));
	/* the PM device's ports and the SCI */
	assert_int_equal(get16(f + 46), ACPI_SCI_IRQ);
	assert_int_equal(get32(f + 48), 0); /* no SMI_CMD: always in ACPI mode */
	assert_int_equal(get32(f + 56), ACPI_PM_PORT + ACPI_PM1_EVT_OFF);
	assert_int_equal(get32(f + 64), ACPI_PM_PORT + ACPI_PM1_CNT_OFF);
	assert_int_equal(f[88], ACPI_PM1_EVT_LEN);
	assert_int_equal(f[89], ACPI_PM1_CNT_LEN);
	assert_int_equal(get32(f + 76), 0); /* no PM timer */
	assert_int_equal(f[148], 1);        /* X_PM1a_EVT: system I/O ... */
	assert_int_equal(f[149], 8 * ACPI_PM1_EVT_LEN);
	assert_int_equal(get64(f + 152), ACPI_PM_PORT + ACPI_PM1_EVT_OFF);
	assert_int_equal(f[173], 8 * ACPI_PM1_CNT_LEN);
	assert_int_equal(get64(f + 176), ACPI_PM_PORT + ACPI_PM1_CNT_OFF);
	/* reset register: I/O byte, value, and the flag that enables it */
	assert_true(get32(f + 112) & (1u << 10));
	assert_int_equal(f[116], 1);
	assert_int_equal(f[117], 8);
	assert_int_equal(get64(f + 120), ACPI_PM_PORT + ACPI_RESET_OFF);
	assert_int_equal(f[128], ACPI_RESET_VALUE);
	/* IA-PC boot flags: legacy devices and an 8042 */
	assert_int_equal(get16(f + 109) & 3, 3);
}

static void check_tables(unsigned ncpus, bool pci)
{
	struct acpi_config cfg = { .nr_cpus = ncpus, .lapic_gpa = 0xfee00000u, .ioapic_gpa = 0xfec00000u,
				   .ioapic_id = (uint8_t)ncpus };
	size_t size;
	uint8_t *buf;
	struct err e = { { 0 } };
	uint64_t rsdp = 0, fadt = 0, madt = 0;
	const uint8_t *r, *x;

	if (pci) {
		cfg.pci_mmio_base = 0xc0000000u;
		cfg.pci_mmio_end = 0xfe000000u;
	}
	size = acpi_size(&cfg);
	buf = malloc(size);
	assert_non_null(buf);
	memset(buf, 0xa5, size); /* acpi_build() must not rely on zeroed memory */
	assert_int_equal(acpi_build(buf, size, BASE, &cfg, &rsdp, &e), 0);
	assert_int_equal(rsdp % 16, 0);
	r = buf + (rsdp - BASE);
	assert_memory_equal(r, "RSD PTR ", 8);
	assert_int_equal(sum(r, 20), 0);
	assert_int_equal(r[15], 2);
	assert_int_equal(get32(r + 20), 36);
	assert_int_equal(sum(r, 36), 0);

	x = table(buf, size, get64(r + 24), "XSDT");
	assert_int_equal((get32(x + 4) - 36) % 8, 0);
	for (uint32_t off = 36; off < get32(x + 4); off += 8) {
		uint64_t gpa = get64(x + off);
		assert_true(gpa >= BASE && gpa < BASE + size);
		if (!memcmp(buf + (gpa - BASE), "FACP", 4))
			fadt = gpa;
		else if (!memcmp(buf + (gpa - BASE), "APIC", 4))
			madt = gpa;
		else
			fail_msg("unexpected table in the XSDT");
	}
	assert_true(fadt && madt);
	check_fadt(buf, size, table(buf, size, fadt, "FACP"), pci);
	check_madt(table(buf, size, madt, "APIC"), ncpus);
	free(buf);
}

static void test_tables(void **state)
{
	(void)state;
	check_tables(1, true);
	check_tables(2, true);
	check_tables(2, false);
	check_tables(64, true);
	check_tables(254, true);
}

static void test_build_errors(void **state)
{
	struct acpi_config cfg = { .nr_cpus = 2, .lapic_gpa = 0xfee00000u, .ioapic_gpa = 0xfec00000u };
	uint8_t buf[4096];
	struct err e = { { 0 } };
	uint64_t rsdp;

	(void)state;
	assert_int_equal(acpi_build(buf, acpi_size(&cfg) - 1, BASE, &cfg, &rsdp, &e), -ENOSPC);
	assert_int_equal(acpi_build(buf, sizeof(buf), BASE + 8, &cfg, &rsdp, &e), -EINVAL);
	assert_int_equal(acpi_build(buf, sizeof(buf), 0xffffff00ull, &cfg, &rsdp, &e), -EINVAL);
	cfg.pci_mmio_base = 0x80000000u; /* a PCI window over RAM */
	cfg.pci_mmio_end = 0x90000000u;
	assert_int_equal(acpi_build(buf, sizeof(buf), BASE, &cfg, &rsdp, &e), -EINVAL);
	cfg.pci_mmio_base = cfg.pci_mmio_end = 0;
	cfg.nr_cpus = 0;
	assert_int_equal(acpi_build(buf, sizeof(buf), BASE, &cfg, &rsdp, &e), -EINVAL);
	cfg.nr_cpus = 255;
	memset(&e, 0, sizeof(e));
	assert_int_equal(acpi_build(buf, sizeof(buf), BASE, &cfg, &rsdp, &e), -EINVAL);
	assert_err_contains(&e, "255 CPUs");
}

/* An OS that is not told where the RSDP is scans 0xe0000-0xfffff on 16-byte
 * boundaries (ACPI 6.5, 5.2.5.1): acpi_write() must put it there. */
static void test_rsdp_found_by_scan(void **state)
{
	struct acpi_config cfg = { .nr_cpus = 4, .lapic_gpa = 0xfee00000u, .ioapic_gpa = 0xfec00000u,
				   .ioapic_id = 4 };
	struct guest_mem m = { .fd = -1 };
	struct err e = { { 0 } };
	uint64_t rsdp = 0, found = 0;

	(void)state;
	assert_int_equal(mem_init(&m, 16 * MiB, &e), 0);
	assert_int_equal(acpi_write(&m, &cfg, &rsdp, &e), 0);
	for (uint64_t a = 0xe0000; a < 0x100000 && !found; a += 16) {
		const uint8_t *p = mem_ptr(&m, a, 20);
		if (!memcmp(p, "RSD PTR ", 8) && sum(p, 20) == 0)
			found = a;
	}
	assert_int_equal(found, rsdp);
	mem_destroy(&m);
}

struct events {
	unsigned power_off, reset;
};

static void on_event(struct acpi_pm *pm, enum acpi_pm_event ev, void *opaque)
{
	struct events *c = opaque;

	(void)pm;
	if (ev == ACPI_PM_POWER_OFF)
		c->power_off++;
	else if (ev == ACPI_PM_RESET)
		c->reset++;
}

static uint32_t pm_rd(struct bus_dev *d, unsigned off, unsigned len)
{
	uint32_t v = 0;
	d->ops->read(d, off, &v, len);
	return v;
}

static void pm_wr(struct bus_dev *d, unsigned off, uint32_t v, unsigned len)
{
	d->ops->write(d, off, &v, len);
}

static void test_pm_device(void **state)
{
	struct events c = { 0 };
	struct acpi_pm *pm = acpi_pm_new(on_event, &c);
	struct bus_dev *d = acpi_pm_bus_dev(pm);
	const uint16_t s5 = ACPI_SLP_TYP_S5 << ACPI_PM1_CNT_SLP_TYP_SHIFT;
	const uint16_t s3 = 3 << ACPI_PM1_CNT_SLP_TYP_SHIFT;

	(void)state;
	/* permanently in ACPI mode; nothing pending */
	assert_int_equal(pm_rd(d, ACPI_PM1_CNT_OFF, 2), ACPI_PM1_CNT_SCI_EN);
	assert_int_equal(pm_rd(d, ACPI_PM1_EVT_OFF, 2), 0);
	/* PM1_EN is storage (ACPICA checks GBL_EN sticks), dword access too */
	pm_wr(d, ACPI_PM1_EVT_OFF + 2, 0x0120, 2);
	assert_int_equal(pm_rd(d, ACPI_PM1_EVT_OFF, 4), 0x01200000u);
	pm_wr(d, ACPI_PM1_EVT_OFF, 0xffff, 2); /* write-1-to-clear status: EN intact */
	assert_int_equal(pm_rd(d, ACPI_PM1_EVT_OFF + 2, 2), 0x0120);
	/* SLP_TYP without SLP_EN is kept, and does nothing */
	pm_wr(d, ACPI_PM1_CNT_OFF, s5, 2);
	assert_int_equal(c.power_off, 0);
	assert_int_equal(pm_rd(d, ACPI_PM1_CNT_OFF, 2), s5 | ACPI_PM1_CNT_SCI_EN);
	/* a sleep state tern does not advertise is ignored */
	pm_wr(d, ACPI_PM1_CNT_OFF, s3 | ACPI_PM1_CNT_SLP_EN, 2);
	assert_int_equal(c.power_off, 0);
	/* S5 with SLP_EN powers off; SLP_EN reads back as 0 */
	pm_wr(d, ACPI_PM1_CNT_OFF, s5 | ACPI_PM1_CNT_SLP_EN, 2);
	assert_int_equal(c.power_off, 1);
	assert_int_equal(pm_rd(d, ACPI_PM1_CNT_OFF, 2) & ACPI_PM1_CNT_SLP_EN, 0);
	/* the same request as one byte write of the high half */
	pm_wr(d, ACPI_PM1_CNT_OFF + 1, (s5 | ACPI_PM1_CNT_SLP_EN) >> 8, 1);
	assert_int_equal(c.power_off, 2);
	/* reset register: only the advertised value resets */
	pm_wr(d, ACPI_RESET_OFF, ACPI_RESET_VALUE + 1, 1);
	assert_int_equal(c.reset, 0);
	pm_wr(d, ACPI_RESET_OFF, ACPI_RESET_VALUE, 1);
	assert_int_equal(c.reset, 1);
	assert_int_equal(pm_rd(d, ACPI_RESET_OFF, 1), 0); /* write-only */
	assert_int_equal(c.power_off, 2);
	acpi_pm_free(pm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tables),
		cmocka_unit_test(test_build_errors),
		cmocka_unit_test(test_rsdp_found_by_scan),
		cmocka_unit_test(test_pm_device),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
