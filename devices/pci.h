/* SPDX-License-Identifier: MIT */
/*
 * devices/pci.h - PCI bus 0 behind configuration mechanism #1 (ports
 * 0xcf8/0xcfc), with a host bridge at 00.0 and memory BARs placed by tern in
 * the MMIO window [PCI_MMIO_BASE, PCI_MMIO_END) below the test device and
 * the IOAPIC. Guests may size and move BARs; a device hears about it through
 * its bar_moved() callback (to move its ioeventfds).
 *
 * Locking: config accesses and BAR dispatch take the bus's rwlock (config
 * writes exclusively), so a BAR never moves under an access.
 */
#ifndef TERN_DEVICES_PCI_H
#define TERN_DEVICES_PCI_H

#include <pthread.h>

#include "vmm/bus.h"

#define PCI_MMIO_BASE 0xc0000000ull
#define PCI_MMIO_END 0xfe000000ull
#define PCI_MAX_SLOTS 32
#define PCI_CFG_SIZE 256
#define PCI_NUM_BARS 6

#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_CLASS_REVISION 0x08
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0 0x10
#define PCI_SUBSYSTEM_VENDOR_ID 0x2c
#define PCI_SUBSYSTEM_ID 0x2e
#define PCI_CAPABILITY_LIST 0x34
#define PCI_INTERRUPT_PIN 0x3d
#define PCI_COMMAND_MEMORY 0x2
#define PCI_COMMAND_MASTER 0x4
#define PCI_STATUS_CAP_LIST 0x10

struct pci_dev;
struct pci_bus;

struct pci_dev_ops {
	/* Accesses inside BAR bar, at offset off; len is 1, 2, 4 or 8. */
	void (*bar_read)(struct pci_dev *d, unsigned bar, uint64_t off, void *data, unsigned len);
	void (*bar_write)(struct pci_dev *d, unsigned bar, uint64_t off, const void *data, unsigned len);
	/* The guest-visible address of a BAR changed (0: not decoded). Called
	 * with the bus lock held for writing. May be NULL. */
	void (*bar_moved)(struct pci_dev *d, unsigned bar, uint64_t old_addr, uint64_t new_addr);
	/* After the guest wrote [off, off+len) of config space beyond the
	 * standard header (capabilities). May be NULL. */
	void (*cfg_written)(struct pci_dev *d, unsigned off, unsigned len);
};

struct pci_dev {
	const struct pci_dev_ops *ops;
	const char *name;
	uint8_t cfg[PCI_CFG_SIZE];   /* config space as the guest reads it */
	uint8_t wmask[PCI_CFG_SIZE]; /* bits the guest may write */
	uint64_t bar_size[PCI_NUM_BARS]; /* 0: BAR unused; power of two */
	uint64_t bar_addr[PCI_NUM_BARS]; /* decoded address, 0 when off */
	uint8_t cap_end;             /* next free config offset for capabilities */
	unsigned slot;
	struct pci_bus *bus;
};

struct pci_bus {
	struct bus_dev cfg_dev;  /* ports 0xcf8..0xcff */
	struct bus_dev mmio_dev; /* the BAR window */
	pthread_rwlock_t lock;
	uint32_t cf8;            /* CONFIG_ADDRESS */
	uint64_t next_mmio;      /* next free address for BAR placement */
	struct pci_dev host_bridge;
	struct pci_dev *slots[PCI_MAX_SLOTS];
};

/* Sets up the bus and its host bridge and claims the ports and window. */
int pci_bus_init(struct pci_bus *b, struct bus *pio, struct bus *mmio, struct err *e);
void pci_bus_exit(struct pci_bus *b);

/* Prepares a device's header: ids, class, no INTx. */
void pci_dev_init(struct pci_dev *d, const struct pci_dev_ops *ops, const char *name, uint16_t vendor,
		  uint16_t device, uint32_t class_rev, uint16_t subsys_vendor, uint16_t subsys);
/* Declares a 32-bit (or 64-bit) memory BAR of size bytes (power of two,
 * >= 4 KiB). Before pci_register(). */
void pci_dev_add_bar(struct pci_dev *d, unsigned bar, uint64_t size, bool is64);
/* Reserves len bytes of capability id in config space and links it; returns
 * its offset, or 0 when config space is full. */
unsigned pci_dev_add_cap(struct pci_dev *d, uint8_t id, unsigned len);
/* Places the BARs and puts the device in the first free slot. */
int pci_register(struct pci_bus *b, struct pci_dev *d, struct err *e);
/* Replaces a registered device's config space (a restore) and re-derives
 * its decoded BARs. Only bits the guest may write are taken from cfg. */
void pci_dev_load_config(struct pci_dev *d, const uint8_t cfg[PCI_CFG_SIZE]);

static inline void pci_cfg_set16(struct pci_dev *d, unsigned off, uint16_t v)
{
	d->cfg[off] = (uint8_t)v;
	d->cfg[off + 1] = (uint8_t)(v >> 8);
}

static inline void pci_cfg_set32(struct pci_dev *d, unsigned off, uint32_t v)
{
	pci_cfg_set16(d, off, (uint16_t)v);
	pci_cfg_set16(d, off + 2, (uint16_t)(v >> 16));
}

static inline uint16_t pci_cfg_get16(const struct pci_dev *d, unsigned off)
{
	return (uint16_t)(d->cfg[off] | (d->cfg[off + 1] << 8));
}

static inline uint32_t pci_cfg_get32(const struct pci_dev *d, unsigned off)
{
	return pci_cfg_get16(d, off) | ((uint32_t)pci_cfg_get16(d, off + 2) << 16);
}

#endif
