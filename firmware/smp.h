/* SPDX-License-Identifier: MIT */
/* firmware/smp.h - find the CPUs in the MP table and start them. */
#ifndef TERN_FIRMWARE_SMP_H
#define TERN_FIRMWARE_SMP_H

/* Number of enabled processors the MP table lists (1 if there is none). */
int smp_count_cpus(void);
/* Start every AP the MP table lists; returns how many CPUs (BSP included)
 * reached CPL3 before the timeout. */
int smp_start_aps(void);

#endif
