/* SPDX-License-Identifier: MIT */
/*
 * firmware/guest.h - constants shared by the test guest's assembly and C.
 * Safe to include from .S files: preprocessor definitions only.
 */
#ifndef TERN_FIRMWARE_GUEST_H
#define TERN_FIRMWARE_GUEST_H

/* GDT selectors. 0x08 is the 32-bit code segment the PVH and AP paths pass
 * through; 0x10/0x18 match Linux's __BOOT_CS/__BOOT_DS so the 64-bit boot
 * protocol's expectations hold. TSS descriptors (16 bytes) follow per CPU. */
#define SEL_CODE32 0x08
#define SEL_KCODE 0x10
#define SEL_KDATA 0x18
#define SEL_UDATA 0x23 /* 0x20 | RPL 3 */
#define SEL_UCODE 0x2b /* 0x28 | RPL 3 */
#define SEL_TSS0 0x30
#define GDT_FIXED_ENTRIES 6

#define MAX_CPUS 64
#define KSTACK_SIZE 8192
#define USTACK_SIZE 16384

/* Where the AP start-up trampoline is copied: SIPI vector 0x08. */
#define AP_TRAMP_GPA 0x8000
#define AP_SIPI_VECTOR (AP_TRAMP_GPA >> 12)

/* How the guest was entered. */
#define BOOT_PROTO_PVH 1
#define BOOT_PROTO_LINUX64 2

/* System calls from CPL3 (see syscall2()): rax = SYSCALL_TAG | number,
 * rdi/rsi = arguments, result in rax. */
#define SYSCALL_TAG 0x7e57ca1100000000
#define SYS_HALT 0     /* cli; hlt forever */
#define SYS_APIC_ICR 1 /* rdi = destination APIC id, rsi = ICR low word */

/* Exit statuses the guest hands to the test device. */
#define GUEST_EXIT_PASS 0
#define GUEST_EXIT_FAIL 1
#define GUEST_EXIT_FAULT 2
#define GUEST_EXIT_USAGE 3

#endif
