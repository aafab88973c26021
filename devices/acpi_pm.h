/* SPDX-License-Identifier: MIT */
/*
 * devices/acpi_pm.h - the ACPI fixed hardware tern's FADT describes
 * (vmm/acpi.h has the ports and bit layout): PM1a status/enable, PM1a
 * control and a reset register. Its only job is to turn a guest's S5 (soft
 * off) request and its ACPI reset into events; it raises no SCI, since it
 * has no event sources (no buttons, no timer, no GPEs).
 */
#ifndef TERN_DEVICES_ACPI_PM_H
#define TERN_DEVICES_ACPI_PM_H

#include "vmm/bus.h"

struct acpi_pm;

enum acpi_pm_event {
	ACPI_PM_POWER_OFF = 1, /* PM1_CNT written with SLP_EN and SLP_TYP = S5 */
	ACPI_PM_RESET,         /* ACPI_RESET_VALUE written to the reset register */
};

/* on_event is called from the vCPU thread that made the request, with no
 * lock of the device held. */
struct acpi_pm *acpi_pm_new(void (*on_event)(struct acpi_pm *pm, enum acpi_pm_event ev, void *opaque),
			    void *opaque);
void acpi_pm_free(struct acpi_pm *pm);
/* The device's bus face: ACPI_PM_PORT_LEN ports at ACPI_PM_PORT. */
struct bus_dev *acpi_pm_bus_dev(struct acpi_pm *pm);

#endif
