/* SPDX-License-Identifier: MIT */
/*
 * vmm/acpi.c - builds the RSDP, XSDT, FADT, FACS, DSDT and MADT (see
 * vmm/acpi.h for what they describe and why).
 *
 * Layout inside the table area (offsets from ACPI_TABLES_GPA):
 *   0x000  RSDP (36 bytes; the OS scans 16-byte boundaries for it)
 *   0x040  FACS (64 bytes, must be 64-byte aligned)
 *   0x080  DSDT, then FADT, MADT and XSDT, each 8-byte aligned
 */
#include "vmm/acpi.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#define OEM_ID "TERN  "         /* 6 bytes */
#define OEM_TABLE_ID "TERNMVM " /* 8 bytes */
#define CREATOR_ID "TERN"
#define OEM_REVISION 1
#define CREATOR_REVISION 1

/* ACPI 6.5, 5.2.6: the header every system description table starts with. */
struct acpi_header {
	char sig[4];
	uint32_t length; /* whole table, header included */
	uint8_t revision;
	uint8_t checksum; /* all bytes of the table sum to 0 */
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	char creator_id[4];
	uint32_t creator_revision;
} __attribute__((packed));

/* 5.2.5.3: RSDP, ACPI 2.0+ form. */
struct acpi_rsdp {
	char sig[8];      /* "RSD PTR " */
	uint8_t checksum; /* first 20 bytes */
	char oem_id[6];
	uint8_t revision; /* 2 */
	uint32_t rsdt;    /* 0: tern has only an XSDT */
	uint32_t length;  /* 36 */
	uint64_t xsdt;
	uint8_t ext_checksum; /* all 36 bytes */
	uint8_t reserved[3];
} __attribute__((packed));

/* 5.2.3.2: Generic Address Structure. */
struct acpi_gas {
	uint8_t space_id; /* 0 memory, 1 system I/O */
	uint8_t bit_width;
	uint8_t bit_offset;
	uint8_t access_size; /* 1 byte, 2 word, 3 dword, 4 qword */
	uint64_t address;
} __attribute__((packed));

/* 5.2.9: FADT, revision 6 (the ACPI 6.0+ layout, 276 bytes). */
struct acpi_fadt {
	struct acpi_header h;
	uint32_t firmware_ctrl; /* FACS */
	uint32_t dsdt;
	uint8_t reserved0;
	uint8_t preferred_pm_profile;
	uint16_t sci_int;
	uint32_t smi_cmd;
	uint8_t acpi_enable, acpi_disable, s4bios_req, pstate_cnt;
	uint32_t pm1a_evt_blk, pm1b_evt_blk, pm1a_cnt_blk, pm1b_cnt_blk;
	uint32_t pm2_cnt_blk, pm_tmr_blk, gpe0_blk, gpe1_blk;
	uint8_t pm1_evt_len, pm1_cnt_len, pm2_cnt_len, pm_tmr_len;
	uint8_t gpe0_blk_len, gpe1_blk_len, gpe1_base, cst_cnt;
	uint16_t p_lvl2_lat, p_lvl3_lat, flush_size, flush_stride;
	uint8_t duty_offset, duty_width, day_alrm, mon_alrm, century;
	uint16_t iapc_boot_arch;
	uint8_t reserved1;
	uint32_t flags;
	struct acpi_gas reset_reg;
	uint8_t reset_value;
	uint16_t arm_boot_arch;
	uint8_t minor_version;
	uint64_t x_firmware_ctrl;
	uint64_t x_dsdt;
	struct acpi_gas x_pm1a_evt_blk, x_pm1b_evt_blk, x_pm1a_cnt_blk, x_pm1b_cnt_blk;
	struct acpi_gas x_pm2_cnt_blk, x_pm_tmr_blk, x_gpe0_blk, x_gpe1_blk;
	struct acpi_gas sleep_control_reg, sleep_status_reg;
	uint64_t hypervisor_vendor_id;
} __attribute__((packed));

/* 5.2.10: FACS. No checksum; 64-byte aligned. */
struct acpi_facs {
	char sig[4]; /* "FACS" */
	uint32_t length;
	uint32_t hardware_signature;
	uint32_t firmware_waking_vector;
	uint32_t global_lock;
	uint32_t flags;
	uint64_t x_firmware_waking_vector;
	uint8_t version; /* 2 */
	uint8_t reserved0[3];
	uint32_t ospm_flags;
	uint8_t reserved1[24];
} __attribute__((packed));

/* 5.2.12: MADT and the entry types tern uses. */
struct acpi_madt {
	struct acpi_header h;
	uint32_t lapic_addr;
	uint32_t flags; /* PCAT_COMPAT: the 8259 pair exists too */
} __attribute__((packed));

struct acpi_madt_lapic { /* type 0 */
	uint8_t type, length;
	uint8_t processor_uid;
	uint8_t apic_id;
	uint32_t flags; /* bit 0: enabled */
} __attribute__((packed));

struct acpi_madt_ioapic { /* type 1 */
	uint8_t type, length;
	uint8_t ioapic_id;
	uint8_t reserved;
	uint32_t address;
	uint32_t gsi_base;
} __attribute__((packed));

struct acpi_madt_iso { /* type 2: interrupt source override */
	uint8_t type, length;
	uint8_t bus; /* 0: ISA */
	uint8_t source;
	uint32_t gsi;
	uint16_t flags; /* MPS INTI flags: polarity bits 0-1, trigger 2-3 */
} __attribute__((packed));

struct acpi_madt_lapic_nmi { /* type 4 */
	uint8_t type, length;
	uint8_t processor_uid; /* 0xff: all processors */
	uint16_t flags;
	uint8_t lint;
} __attribute__((packed));

_Static_assert(sizeof(struct acpi_header) == 36, "ACPI table header layout");
_Static_assert(sizeof(struct acpi_rsdp) == 36, "RSDP layout");
_Static_assert(offsetof(struct acpi_rsdp, length) == 20, "RSDP v2 fields start at 20");
_Static_assert(sizeof(struct acpi_gas) == 12, "GAS layout");
_Static_assert(offsetof(struct acpi_fadt, sci_int) == 46, "FADT SCI_INT offset");
_Static_assert(offsetof(struct acpi_fadt, pm1a_evt_blk) == 56, "FADT PM1a_EVT_BLK offset");
_Static_assert(offsetof(struct acpi_fadt, pm1_evt_len) == 88, "FADT PM1_EVT_LEN offset");
_Static_assert(offsetof(struct acpi_fadt, iapc_boot_arch) == 109, "FADT IAPC_BOOT_ARCH offset");
_Static_assert(offsetof(struct acpi_fadt, flags) == 112, "FADT flags offset");
_Static_assert(offsetof(struct acpi_fadt, reset_reg) == 116, "FADT RESET_REG offset");
_Static_assert(offsetof(struct acpi_fadt, x_firmware_ctrl) == 132, "FADT X_FIRMWARE_CTRL offset");
_Static_assert(offsetof(struct acpi_fadt, x_pm1a_evt_blk) == 148, "FADT X_PM1a_EVT_BLK offset");
_Static_assert(offsetof(struct acpi_fadt, sleep_control_reg) == 244, "FADT SLEEP_CONTROL_REG offset");
_Static_assert(sizeof(struct acpi_fadt) == 276, "FADT revision 6 layout");
_Static_assert(sizeof(struct acpi_facs) == 64, "FACS layout");
_Static_assert(sizeof(struct acpi_madt) == 44, "MADT header layout");
_Static_assert(sizeof(struct acpi_madt_lapic) == 8, "MADT local APIC entry layout");
_Static_assert(sizeof(struct acpi_madt_ioapic) == 12, "MADT IOAPIC entry layout");
_Static_assert(sizeof(struct acpi_madt_iso) == 10, "MADT interrupt source override layout");
_Static_assert(sizeof(struct acpi_madt_lapic_nmi) == 6, "MADT local APIC NMI layout");

/* FADT flags (5.2.9, table 5.10) and IA-PC boot architecture flags (5.2.9.3). */
#define FADT_WBINVD (1u << 0)
#define FADT_PROC_C1 (1u << 2)
#define FADT_PWR_BUTTON (1u << 4) /* set: no fixed-feature power button */
#define FADT_SLP_BUTTON (1u << 5) /* set: no fixed-feature sleep button */
#define FADT_RESET_REG_SUP (1u << 10)
#define IAPC_LEGACY_DEVICES (1u << 0)
#define IAPC_8042 (1u << 1)
#define IAPC_VGA_NOT_PRESENT (1u << 2)

#define GAS_SYSTEM_IO 1
#define GAS_ACCESS_BYTE 1
#define GAS_ACCESS_WORD 2

#define MADT_PCAT_COMPAT 1u
#define MADT_LAPIC_ENABLED 1u
#define MPS_INTI_ACTIVE_HIGH 0x1
#define MPS_INTI_LEVEL 0xc

/*
 * The DSDT's AML (ACPI 6.5, chapter 20):
 *
 *   Name (\_S5, Package (4) { SLP_TYPa, SLP_TYPb, 0, 0 })
 *
 *   08               NameOp
 *   5c 5f 53 35 5f   "\_S5_"  (RootChar, NameSeg)
 *   12               PackageOp
 *   08               PkgLength: 8 bytes, itself included
 *   04               NumElements
 *   0a xx  0a xx     BytePrefix SLP_TYPa, BytePrefix SLP_TYPb
 *   00 00            ZeroOp, ZeroOp (reserved elements)
 *
 * ACPICA creates \_SB, \_GPE and the other root scopes itself; an OS needs
 * nothing else here to power the machine off. dsdt_build() appends the PCI
 * root bridge.
 */
static const uint8_t dsdt_s5[] = {
	0x08, 0x5c, '_', 'S', '5', '_', 0x12, 0x08, 0x04,
	0x0a, ACPI_SLP_TYP_S5, 0x0a, ACPI_SLP_TYP_S5, 0x00, 0x00,
};
_Static_assert(ACPI_SLP_TYP_S5 < 8, "SLP_TYP is a 3-bit field");

/*
 * Just enough of an AML assembler for the PCI root bridge: named integers,
 * a buffer, and the PkgLength-prefixed Scope and Device (ACPI 6.5, 20.2).
 * Sizes are fixed by the code, so AML_MAX only guards against a mistake.
 */
#define AML_MAX 192

struct aml {
	uint8_t b[AML_MAX];
	size_t n;
	bool overflow;
};

static void aml_put(struct aml *a, const void *p, size_t n)
{
	if (NEVER(a->n + n > AML_MAX)) {
		a->overflow = true;
		return;
	}
	memcpy(a->b + a->n, p, n);
	a->n += n;
}

static void aml_byte(struct aml *a, uint8_t v)
{
	aml_put(a, &v, 1);
}

static void aml_le(struct aml *a, uint64_t v, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++)
		aml_byte(a, (uint8_t)(v >> (8 * i)));
}

/* op, then PkgLength (which counts itself: 1 to 4 bytes, 20.2.4), then
 * body. */
static void aml_pkg(struct aml *a, const uint8_t *op, size_t oplen, const struct aml *body)
{
	size_t k, total = 0;

	for (k = 1; k <= 4; k++) {
		total = body->n + k;
		if (k == 1 ? total < 0x40 : total < (1ul << (4 + 8 * (k - 1))))
			break;
	}
	aml_put(a, op, oplen);
	if (k == 1) {
		aml_byte(a, (uint8_t)total);
	} else {
		aml_byte(a, (uint8_t)(((k - 1) << 6) | (total & 0xf)));
		for (size_t i = 1; i < k; i++)
			aml_byte(a, (uint8_t)(total >> (4 + 8 * (i - 1))));
	}
	aml_put(a, body->b, body->n);
	a->overflow |= body->overflow;
}

/* Name (SEG, value): DWordPrefix, or ZeroOp for 0. */
static void aml_name_int(struct aml *a, const char seg[4], uint32_t v)
{
	aml_byte(a, 0x08);
	aml_put(a, seg, 4);
	if (v) {
		aml_byte(a, 0x0c);
		aml_le(a, v, 4);
	} else {
		aml_byte(a, 0x00);
	}
}

/* EisaId ("PNP0A03"): three 5-bit letters and four hex digits, stored as
 * big-endian 16-bit halves (6.1.5). */
static uint32_t eisa_id(const char id[7])
{
	uint16_t mfg = (uint16_t)(((id[0] - 0x40) & 0x1f) << 10 | ((id[1] - 0x40) & 0x1f) << 5 |
				  ((id[2] - 0x40) & 0x1f));
	uint16_t prod = 0;

	for (int i = 3; i < 7; i++)
		prod = (uint16_t)(prod << 4 | (id[i] <= '9' ? id[i] - '0' : id[i] - 'A' + 10));
	return (uint32_t)(mfg >> 8) | (uint32_t)(mfg & 0xff) << 8 | (uint32_t)(prod >> 8) << 16 |
	       (uint32_t)(prod & 0xff) << 24;
}

/*
 * Scope (\_SB) { Device (PCI0) {
 *     Name (_HID, EisaId ("PNP0A03")), Name (_UID, 0),
 *     Name (_CRS, ResourceTemplate () {
 *         WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode,
 *                        0, 0x00, 0xff, 0, 0x100)
 *         DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed,
 *                      NonCacheable, ReadWrite, 0, base, end - 1, 0, end - base)
 *     })
 * } }
 *
 * With ACPI, Linux enumerates only the PCI roots the namespace declares
 * (no legacy bus scan), so tern's bus 0 must be here. Its devices use MSI-X
 * and no INTx, so there is no _PRT. Resource descriptors: ACPI 6.5, 6.4.3.5.
 */
static void aml_pci_root(struct aml *a, const struct acpi_config *cfg)
{
	static const uint8_t scope_op[] = { 0x10 }, device_op[] = { 0x5b, 0x82 }, buffer_op[] = { 0x11 };
	struct aml crs = { .n = 0 }, buf = { .n = 0 }, dev = { .n = 0 }, scope = { .n = 0 };
	const uint64_t base = cfg->pci_mmio_base, len = cfg->pci_mmio_end - cfg->pci_mmio_base;

	/* WordBusNumber: type 0x88, 13 bytes follow */
	aml_byte(&crs, 0x88);
	aml_le(&crs, 13, 2);
	aml_byte(&crs, 2);    /* bus number range */
	aml_byte(&crs, 0x0c); /* producer, positive decode, min and max fixed */
	aml_byte(&crs, 0);
	aml_le(&crs, 0, 2);     /* granularity */
	aml_le(&crs, 0, 2);     /* min */
	aml_le(&crs, 0xff, 2);  /* max */
	aml_le(&crs, 0, 2);     /* translation */
	aml_le(&crs, 0x100, 2); /* length */
	/* DWordMemory: type 0x87, 23 bytes follow */
	aml_byte(&crs, 0x87);
	aml_le(&crs, 23, 2);
	aml_byte(&crs, 0);    /* memory range */
	aml_byte(&crs, 0x0c); /* producer, positive decode, min and max fixed */
	aml_byte(&crs, 0x01); /* read-write, non-cacheable */
	aml_le(&crs, 0, 4);
	aml_le(&crs, base, 4);
	aml_le(&crs, base + len - 1, 4);
	aml_le(&crs, 0, 4);
	aml_le(&crs, len, 4);
	/* End tag, checksum 0 ("ignore") */
	aml_byte(&crs, 0x79);
	aml_byte(&crs, 0);

	aml_byte(&buf, 0x0a); /* BufferSize: BytePrefix */
	aml_byte(&buf, (uint8_t)crs.n);
	aml_put(&buf, crs.b, crs.n);

	aml_put(&dev, "PCI0", 4);
	aml_name_int(&dev, "_HID", eisa_id("PNP0A03"));
	aml_name_int(&dev, "_UID", 0);
	aml_byte(&dev, 0x08);
	aml_put(&dev, "_CRS", 4);
	aml_pkg(&dev, buffer_op, sizeof(buffer_op), &buf);

	aml_put(&scope, "\\_SB_", 5);
	aml_pkg(&scope, device_op, sizeof(device_op), &dev);
	aml_pkg(a, scope_op, sizeof(scope_op), &scope);
	a->overflow |= crs.overflow | buf.overflow | dev.overflow | scope.overflow;
}

/* The DSDT's AML: \_S5, then the PCI root bridge if the machine has one. */
static void dsdt_build(struct aml *a, const struct acpi_config *cfg)
{
	a->n = 0;
	a->overflow = false;
	aml_put(a, dsdt_s5, sizeof(dsdt_s5));
	if (cfg->pci_mmio_end > cfg->pci_mmio_base)
		aml_pci_root(a, cfg);
}

#define ALIGN_UP(x, a) (((x) + (a) - 1) & ~((size_t)(a) - 1))
#define RSDP_OFF 0x0
#define FACS_OFF 0x40
#define DSDT_OFF 0x80
#define XSDT_ENTRIES 2 /* FADT, MADT */

static uint8_t acpi_checksum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t s = 0;

	while (len--)
		s = (uint8_t)(s + *b++);
	return (uint8_t)(0 - s);
}

static void header_init(struct acpi_header *h, const char sig[4], uint32_t length, uint8_t revision)
{
	memcpy(h->sig, sig, 4);
	h->length = length;
	h->revision = revision;
	memcpy(h->oem_id, OEM_ID, 6);
	memcpy(h->oem_table_id, OEM_TABLE_ID, 8);
	h->oem_revision = OEM_REVISION;
	memcpy(h->creator_id, CREATOR_ID, 4);
	h->creator_revision = CREATOR_REVISION;
}

/* Call last, once the table's bytes are final. */
static void header_seal(struct acpi_header *h)
{
	h->checksum = 0;
	h->checksum = acpi_checksum(h, h->length);
}

static size_t madt_size(unsigned nr_cpus)
{
	return sizeof(struct acpi_madt) + nr_cpus * sizeof(struct acpi_madt_lapic) + sizeof(struct acpi_madt_ioapic) +
	       sizeof(struct acpi_madt_iso) + sizeof(struct acpi_madt_lapic_nmi);
}

static size_t xsdt_size(void)
{
	return sizeof(struct acpi_header) + XSDT_ENTRIES * sizeof(uint64_t);
}

size_t acpi_size(const struct acpi_config *cfg)
{
	struct aml dsdt;
	size_t n;

	dsdt_build(&dsdt, cfg);
	n = DSDT_OFF + sizeof(struct acpi_header) + dsdt.n;
	n = ALIGN_UP(n, 8) + sizeof(struct acpi_fadt);
	n = ALIGN_UP(n, 8) + madt_size(cfg->nr_cpus);
	n = ALIGN_UP(n, 8) + xsdt_size();
	return n;
}

static struct acpi_gas gas_io(uint16_t port, uint8_t bytes, uint8_t access)
{
	return (struct acpi_gas){
		.space_id = GAS_SYSTEM_IO,
		.bit_width = (uint8_t)(bytes * 8),
		.access_size = access,
		.address = port,
	};
}

static void build_fadt(struct acpi_fadt *f, uint32_t facs, uint32_t dsdt)
{
	const uint16_t evt = ACPI_PM_PORT + ACPI_PM1_EVT_OFF;
	const uint16_t cnt = ACPI_PM_PORT + ACPI_PM1_CNT_OFF;

	header_init(&f->h, "FACP", sizeof(*f), 6);
	f->firmware_ctrl = facs;
	f->dsdt = dsdt;
	f->sci_int = ACPI_SCI_IRQ;
	/* smi_cmd = 0: no SMM handshake, the hardware is always in ACPI mode. */
	f->pm1a_evt_blk = evt;
	f->pm1a_cnt_blk = cnt;
	f->pm1_evt_len = ACPI_PM1_EVT_LEN;
	f->pm1_cnt_len = ACPI_PM1_CNT_LEN;
	/* No C2/C3: latencies above 100/1000 us tell the OS they do not exist. */
	f->p_lvl2_lat = 101;
	f->p_lvl3_lat = 1001;
	f->iapc_boot_arch = IAPC_LEGACY_DEVICES | IAPC_8042 | IAPC_VGA_NOT_PRESENT;
	f->flags = FADT_WBINVD | FADT_PROC_C1 | FADT_PWR_BUTTON | FADT_SLP_BUTTON | FADT_RESET_REG_SUP;
	f->reset_reg = gas_io(ACPI_PM_PORT + ACPI_RESET_OFF, 1, GAS_ACCESS_BYTE);
	f->reset_value = ACPI_RESET_VALUE;
	f->minor_version = 5; /* ACPI 6.5 */
	/* The 64-bit forms repeat the 32-bit ones exactly: ACPICA complains
	 * about any mismatch between the two. The FACS is the exception:
	 * ACPICA installs it once per non-zero pointer, so only the 32-bit
	 * one is set. */
	f->x_dsdt = dsdt;
	f->x_pm1a_evt_blk = gas_io(evt, ACPI_PM1_EVT_LEN, GAS_ACCESS_WORD);
	f->x_pm1a_cnt_blk = gas_io(cnt, ACPI_PM1_CNT_LEN, GAS_ACCESS_WORD);
	memcpy(&f->hypervisor_vendor_id, "TERN\0\0\0\0", 8);
	header_seal(&f->h);
}

static void build_madt(struct acpi_madt *m, const struct acpi_config *cfg)
{
	uint8_t *p = (uint8_t *)(m + 1);

	header_init(&m->h, "APIC", (uint32_t)madt_size(cfg->nr_cpus), 5);
	m->lapic_addr = cfg->lapic_gpa;
	m->flags = MADT_PCAT_COMPAT;
	for (unsigned i = 0; i < cfg->nr_cpus; i++, p += sizeof(struct acpi_madt_lapic))
		*(struct acpi_madt_lapic *)p = (struct acpi_madt_lapic){
			.type = 0,
			.length = sizeof(struct acpi_madt_lapic),
			.processor_uid = (uint8_t)i,
			.apic_id = (uint8_t)i,
			.flags = MADT_LAPIC_ENABLED,
		};
	*(struct acpi_madt_ioapic *)p = (struct acpi_madt_ioapic){
		.type = 1,
		.length = sizeof(struct acpi_madt_ioapic),
		.ioapic_id = cfg->ioapic_id,
		.address = cfg->ioapic_gpa,
		.gsi_base = 0,
	};
	p += sizeof(struct acpi_madt_ioapic);
	/* ISA IRQ n is GSI n (KVM's default routing, the PIT's IRQ 0
	 * included), so only the SCI needs an override: ACPI's default for it
	 * is active low, and tern drives its lines active high. */
	*(struct acpi_madt_iso *)p = (struct acpi_madt_iso){
		.type = 2,
		.length = sizeof(struct acpi_madt_iso),
		.bus = 0,
		.source = ACPI_SCI_IRQ,
		.gsi = ACPI_SCI_IRQ,
		.flags = MPS_INTI_ACTIVE_HIGH | MPS_INTI_LEVEL,
	};
	p += sizeof(struct acpi_madt_iso);
	/* LINT1 of every local APIC is NMI, as vcpu.c programs it. */
	*(struct acpi_madt_lapic_nmi *)p = (struct acpi_madt_lapic_nmi){
		.type = 4,
		.length = sizeof(struct acpi_madt_lapic_nmi),
		.processor_uid = 0xff,
		.flags = 0,
		.lint = 1,
	};
	header_seal(&m->h);
}

int acpi_build(uint8_t *buf, size_t size, gpa_t gpa, const struct acpi_config *cfg, gpa_t *rsdp, struct err *e)
{
	size_t dsdt_off = DSDT_OFF, fadt_off, madt_off, xsdt_off, need;
	struct acpi_header *dsdt, *xsdt;
	struct acpi_facs *facs;
	struct acpi_rsdp *r;
	uint64_t xsdt_entries[XSDT_ENTRIES];
	struct aml aml;
	gpa_t end;

	if (!cfg->nr_cpus || cfg->nr_cpus > 254)
		return err_set(e, -EINVAL, "ACPI: %u CPUs is out of range (1..254)", cfg->nr_cpus);
	if (cfg->pci_mmio_end > cfg->pci_mmio_base &&
	    (cfg->pci_mmio_end > 0x100000000ull || cfg->pci_mmio_base < MEM_HOLE_START))
		return err_set(e, -EINVAL, "ACPI: PCI window 0x%llx-0x%llx is not inside the 32-bit hole",
			       (unsigned long long)cfg->pci_mmio_base, (unsigned long long)cfg->pci_mmio_end);
	dsdt_build(&aml, cfg);
	if (NEVER(aml.overflow))
		return err_set(e, -E2BIG, "ACPI: DSDT larger than its %d-byte buffer", AML_MAX);
	need = acpi_size(cfg);
	if (need > size)
		return err_set(e, -ENOSPC, "ACPI tables for %u CPUs need %zu bytes, %zu available", cfg->nr_cpus,
			       need, size);
	/* 32-bit table pointers (RSDP's, FADT's) must reach every table. */
	if ((gpa & 0xf) || add_overflows(gpa, need, &end) || end > 0x100000000ull)
		return err_set(e, -EINVAL, "ACPI tables at 0x%llx: not 16-byte aligned or beyond 4 GiB",
			       (unsigned long long)gpa);
	fadt_off = ALIGN_UP(dsdt_off + sizeof(struct acpi_header) + aml.n, 8);
	madt_off = ALIGN_UP(fadt_off + sizeof(struct acpi_fadt), 8);
	xsdt_off = ALIGN_UP(madt_off + madt_size(cfg->nr_cpus), 8);
	memset(buf, 0, need);

	facs = (struct acpi_facs *)(buf + FACS_OFF);
	memcpy(facs->sig, "FACS", 4);
	facs->length = sizeof(*facs);
	facs->version = 2;

	dsdt = (struct acpi_header *)(buf + dsdt_off);
	header_init(dsdt, "DSDT", (uint32_t)(sizeof(*dsdt) + aml.n), 2);
	memcpy(dsdt + 1, aml.b, aml.n);
	header_seal(dsdt);

	build_fadt((struct acpi_fadt *)(buf + fadt_off), (uint32_t)(gpa + FACS_OFF), (uint32_t)(gpa + dsdt_off));
	build_madt((struct acpi_madt *)(buf + madt_off), cfg);

	xsdt = (struct acpi_header *)(buf + xsdt_off);
	header_init(xsdt, "XSDT", (uint32_t)xsdt_size(), 1);
	xsdt_entries[0] = gpa + fadt_off;
	xsdt_entries[1] = gpa + madt_off;
	/* The entries are 8 bytes at offset 36: unaligned, hence memcpy. */
	memcpy(xsdt + 1, xsdt_entries, sizeof(xsdt_entries));
	header_seal(xsdt);

	r = (struct acpi_rsdp *)(buf + RSDP_OFF);
	memcpy(r->sig, "RSD PTR ", 8);
	memcpy(r->oem_id, OEM_ID, 6);
	r->revision = 2;
	r->length = sizeof(*r);
	r->xsdt = gpa + xsdt_off;
	r->checksum = acpi_checksum(r, 20);
	r->ext_checksum = acpi_checksum(r, sizeof(*r));
	*rsdp = gpa + RSDP_OFF;
	return 0;
}

int acpi_write(struct guest_mem *mem, const struct acpi_config *cfg, gpa_t *rsdp, struct err *e)
{
	uint8_t *buf = mem_ptr(mem, ACPI_TABLES_GPA, ACPI_TABLES_SIZE);

	if (!buf)
		return err_set(e, -EFAULT, "guest memory too small for the ACPI tables");
	return acpi_build(buf, ACPI_TABLES_SIZE, ACPI_TABLES_GPA, cfg, rsdp, e);
}
