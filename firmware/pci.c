/* SPDX-License-Identifier: MIT */
/*
 * firmware/pci.c - bus 0 scan, BAR sizing/assignment and capability walk
 * through configuration mechanism #1. Runs at CPL3: ports 0xcf8..0xcff are
 * granted by the TSS I/O bitmap.
 */
#include "lib.h"
#include "pci.h"

#define PCI_CONFIG_ADDRESS 0xcf8
#define PCI_CONFIG_DATA 0xcfc

static uint32_t cfg_addr(const struct pci_dev *d, unsigned off)
{
	return 0x80000000u | ((uint32_t)d->bus << 16) | ((uint32_t)d->dev << 11) | ((uint32_t)d->fn << 8) |
	       (off & 0xfc);
}

uint32_t pci_read32(const struct pci_dev *d, unsigned off)
{
	outl(PCI_CONFIG_ADDRESS, cfg_addr(d, off));
	return inl(PCI_CONFIG_DATA);
}

uint16_t pci_read16(const struct pci_dev *d, unsigned off)
{
	outl(PCI_CONFIG_ADDRESS, cfg_addr(d, off));
	return inw((uint16_t)(PCI_CONFIG_DATA + (off & 2)));
}

uint8_t pci_read8(const struct pci_dev *d, unsigned off)
{
	outl(PCI_CONFIG_ADDRESS, cfg_addr(d, off));
	return inb((uint16_t)(PCI_CONFIG_DATA + (off & 3)));
}

void pci_write32(const struct pci_dev *d, unsigned off, uint32_t v)
{
	outl(PCI_CONFIG_ADDRESS, cfg_addr(d, off));
	outl(PCI_CONFIG_DATA, v);
}

void pci_write16(const struct pci_dev *d, unsigned off, uint16_t v)
{
	outl(PCI_CONFIG_ADDRESS, cfg_addr(d, off));
	outw((uint16_t)(PCI_CONFIG_DATA + (off & 2)), v);
}

int pci_find(uint16_t vendor, uint16_t device, unsigned index, struct pci_dev *d)
{
	memset(d, 0, sizeof(*d));
	for (unsigned dev = 0; dev < 32; dev++) {
		unsigned nfn = 1;

		for (unsigned fn = 0; fn < nfn; fn++) {
			d->dev = (uint8_t)dev;
			d->fn = (uint8_t)fn;
			uint32_t id = pci_read32(d, PCI_VENDOR_ID);
			if ((id & 0xffff) == 0xffff || (id & 0xffff) == 0) {
				if (fn == 0)
					break; /* no device in this slot */
				continue;
			}
			if (fn == 0 && (pci_read8(d, PCI_HEADER_TYPE) & 0x80))
				nfn = 8; /* multi-function device */
			if ((id & 0xffff) == vendor && (id >> 16) == device && index-- == 0) {
				d->vendor = vendor;
				d->device = device;
				return 0;
			}
		}
	}
	return -1;
}

/* Next free address for BARs we place ourselves. */
static uint64_t assign_next = PCI_ASSIGN_BASE;

static int assign(struct pci_bar *b)
{
	uint64_t a = (assign_next + b->size - 1) & ~(b->size - 1);

	if (b->size > PCI_ASSIGN_LIMIT || a > PCI_ASSIGN_LIMIT - b->size)
		return -1;
	assign_next = a + b->size;
	b->addr = a;
	b->reassigned = 1;
	return 0;
}

/* Writes all-ones to a BAR register, reads back the size mask, restores. */
static uint32_t probe_reg(const struct pci_dev *d, unsigned off, uint32_t orig)
{
	pci_write32(d, off, 0xffffffffu);
	uint32_t v = pci_read32(d, off);
	pci_write32(d, off, orig);
	return v;
}

int pci_enable(struct pci_dev *d, int reassign)
{
	uint16_t cmd = pci_read16(d, PCI_COMMAND);
	int rc = 0;

	/* No decoding while BARs hold all-ones or move. */
	pci_write16(d, PCI_COMMAND, (uint16_t)(cmd & ~(PCI_CMD_IO | PCI_CMD_MEM)));
	memset(d->bar, 0, sizeof(d->bar));
	for (unsigned i = 0; i < 6; i++) {
		unsigned off = PCI_BAR0 + 4 * i;
		struct pci_bar *b = &d->bar[i];
		uint32_t lo = pci_read32(d, off);

		if (lo & 1) { /* I/O BAR: recorded, never moved */
			uint32_t m = probe_reg(d, off, lo) & ~3u & 0xffff;
			b->is_io = 1;
			b->size = m ? (~m + 1) & 0xffff : 0;
			continue;
		}
		int is64 = ((lo >> 1) & 3) == 2 && i < 5;
		uint32_t hi = is64 ? pci_read32(d, off + 4) : 0;
		uint64_t mask = probe_reg(d, off, lo) & ~0xfu;
		mask |= is64 ? (uint64_t)probe_reg(d, off + 4, hi) << 32 : 0xffffffff00000000ull;
		if ((uint32_t)mask == 0 && (!is64 || mask == 0)) {
			if (is64)
				i++;
			continue; /* not implemented */
		}
		b->is_64 = (uint8_t)is64;
		b->size = ~mask + 1;
		b->addr = ((uint64_t)hi << 32) | (lo & ~0xfu);
		/* Our page tables reach only the low 4 GiB: place anything that is
		 * unprogrammed or above it ourselves. */
		if (reassign || b->addr == 0 || b->addr + b->size > (4ull << 30) || b->addr + b->size < b->addr) {
			if (assign(b) < 0) {
				b->addr = 0;
				rc = -1;
			} else {
				pci_write32(d, off, (uint32_t)b->addr | (lo & 0xfu));
				if (is64)
					pci_write32(d, off + 4, 0);
			}
		}
		if (is64)
			i++;
	}
	cmd = (uint16_t)((cmd & PCI_CMD_IO) | PCI_CMD_MEM | PCI_CMD_MASTER | PCI_CMD_INTX_DISABLE);
	pci_write16(d, PCI_COMMAND, cmd);
	return rc;
}

unsigned pci_find_cap(const struct pci_dev *d, uint8_t id, unsigned after)
{
	int seen = after == 0;

	if (!(pci_read16(d, PCI_STATUS) & PCI_STATUS_CAP_LIST))
		return 0;
	unsigned p = pci_read8(d, PCI_CAP_PTR) & 0xfc;
	/* At most 48 capabilities fit in 192 bytes: a longer walk is a loop. */
	for (int n = 0; n < 48 && p >= 0x40; n++) {
		uint16_t hdr = pci_read16(d, p); /* ID, next pointer */
		if (seen && (hdr & 0xff) == id)
			return p;
		if (p == after)
			seen = 1;
		p = (hdr >> 8) & 0xfc;
	}
	return 0;
}
