/* SPDX-License-Identifier: MIT */
/* firmware/cpu.h - the CPL0/CPL3 boundary of the test guest. */
#ifndef TERN_FIRMWARE_CPU_H
#define TERN_FIRMWARE_CPU_H

#include <stdint.h>

/* What isr_common pushes, lowest address first. */
struct trap_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rdi, rsi, rbp, rbx, rdx, rcx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss;
};
_Static_assert(sizeof(struct trap_frame) == 22 * 8, "trap frame layout");

void cpu_init(unsigned idx) __attribute__((noreturn));
void trap(struct trap_frame *f);

/* CPL3 entry points, one per role. */
void bsp_main(void) __attribute__((noreturn));
void ap_main(unsigned idx) __attribute__((noreturn));

extern uint64_t boot_info_ptr;
extern uint32_t boot_proto;

#endif
