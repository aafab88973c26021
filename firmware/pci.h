/* SPDX-License-Identifier: MIT */
/*
 * firmware/pci.h - PCI bus 0 through configuration mechanism #1 (0xcf8/0xcfc,
 * granted to CPL3 by the TSS I/O bitmap). Each config access costs two port
 * exits, so callers read what they need once.
 */
#ifndef TERN_FIRMWARE_PCI_H
#define TERN_FIRMWARE_PCI_H

#include <stdint.h>

#define PCI_VENDOR_ID 0x00
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0 0x10
#define PCI_CAP_PTR 0x34

#define PCI_CMD_IO 0x0001
#define PCI_CMD_MEM 0x0002
#define PCI_CMD_MASTER 0x0004
#define PCI_CMD_INTX_DISABLE 0x0400
#define PCI_STATUS_CAP_LIST 0x0010

#define PCI_CAP_ID_VNDR 0x09

/* Where BARs found unassigned (or above 4 GiB, which the guest's identity
 * map does not reach) are placed, naturally aligned, growing upward. */
#define PCI_ASSIGN_BASE 0xc0000000ull
#define PCI_ASSIGN_LIMIT 0xfe000000ull /* the test device and APICs start here */

struct pci_bar {
	uint64_t addr; /* memory BAR base (0 for I/O or absent) */
	uint64_t size; /* 0 if absent */
	uint8_t is_io, is_64, reassigned;
};

struct pci_dev {
	uint8_t bus, dev, fn;
	uint16_t vendor, device;
	struct pci_bar bar[6];
};

uint32_t pci_read32(const struct pci_dev *d, unsigned off);
uint16_t pci_read16(const struct pci_dev *d, unsigned off);
uint8_t pci_read8(const struct pci_dev *d, unsigned off);
void pci_write32(const struct pci_dev *d, unsigned off, uint32_t v);
void pci_write16(const struct pci_dev *d, unsigned off, uint16_t v);

/* Finds the index-th (from 0) function on bus 0 with this vendor/device ID.
 * Returns 0 and fills d->bus/dev/fn/vendor/device, or -1. */
int pci_find(uint16_t vendor, uint16_t device, unsigned index, struct pci_dev *d);

/* Sizes and records the BARs (memory decoding off meanwhile), assigns any
 * memory BAR that is unprogrammed or beyond 4 GiB (every memory BAR if
 * reassign is set: a test of that path), then enables memory decoding and
 * bus mastering (and disables INTx: the guest polls).
 * Returns 0, or -1 if a needed assignment did not fit. */
int pci_enable(struct pci_dev *d, int reassign);

/* Offset of the next capability with this ID after config offset "after"
 * (0 to start at the list head), or 0 when there is none. The walk is
 * bounded, so a looping list ends. */
unsigned pci_find_cap(const struct pci_dev *d, uint8_t id, unsigned after);

#endif
