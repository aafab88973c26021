/* SPDX-License-Identifier: MIT */
/*
 * Test guest entry points. Every instruction here runs at CPL0, which this
 * project's development hosts emulate at ~1 M instructions/s, so the code is
 * kept to a few dozen instructions and all tables (GDT, page tables) are
 * built at link time.
 *
 * Image layout (linked at 0x100000, see guest.ld):
 *   +0x000  pvh_entry    32-bit, paging off, EBX = hvm_start_info (PVH)
 *   +0x200  entry64      64-bit Linux boot protocol, RSI = boot_params
 *                        (the bzImage rule: 64-bit entry = load address + 0x200;
 *                        also the ELF e_entry)
 */
#include "guest.h"

#define MSR_EFER 0xc0000080
#define EFER_LME 0x100
#define CR0_PE 0x1
#define CR0_PG 0x80000000
#define CR4_PAE 0x20

/* PAE, our page tables, EFER.LME; the caller then sets CR0.PG (and PE). */
.macro ENABLE_LONG_MODE
	movl	%cr4, %eax
	orl	$CR4_PAE, %eax
	movl	%eax, %cr4
	movl	$pml4, %eax
	movl	%eax, %cr3
	movl	$MSR_EFER, %ecx
	rdmsr
	orl	$EFER_LME, %eax
	wrmsr
.endm

	.section .text.head, "ax"
	.code32
	.globl pvh_entry
pvh_entry:
	cli
	movl	%ebx, boot_info_ptr
	movl	$BOOT_PROTO_PVH, boot_proto
	ENABLE_LONG_MODE
	movl	%cr0, %eax
	orl	$(CR0_PG | CR0_PE), %eax
	movl	%eax, %cr0
	lgdt	gdt_desc
	ljmp	$SEL_KCODE, $common64

	.org 0x200
	.code64
	.globl entry64
entry64:
	cli
	movq	%rsi, boot_info_ptr(%rip)
	movl	$BOOT_PROTO_LINUX64, boot_proto(%rip)
	movq	$pml4, %rax
	movq	%rax, %cr3
	lgdt	gdt_desc(%rip)
	pushq	$SEL_KCODE
	pushq	$common64
	lretq

common64:
	movl	$SEL_KDATA, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %ss
	xorl	%eax, %eax
	movl	%eax, %fs
	movl	%eax, %gs
	movq	$(bsp_kstack + KSTACK_SIZE), %rsp
	xorl	%edi, %edi
	call	cpu_init	/* never returns: drops to CPL3 */
1:	hlt
	jmp	1b

/* Application processors enter here from the trampoline, in 64-bit mode. */
ap_entry64:
	movl	$SEL_KDATA, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %ss
	movl	$1, %eax
	lock xaddl %eax, ap_next_index(%rip)
	movl	%eax, %edi		/* CPU index, 1.. */
	movq	%rdi, %rsp
	shlq	$13, %rsp		/* KSTACK_SIZE == 8192 */
	addq	$(ap_kstacks + KSTACK_SIZE), %rsp
	call	cpu_init
1:	hlt
	jmp	1b

/*
 * AP trampoline: copied to AP_TRAMP_GPA by the BSP and entered in real mode
 * at CS = AP_TRAMP_GPA >> 4, IP = 0 by the SIPI. Addresses inside it are
 * computed from AP_TRAMP_GPA, so it runs only from there.
 */
	.section .rodata.tramp, "a"
	.code16
	.globl ap_tramp_start, ap_tramp_end
ap_tramp_start:
	cli
	movw	%cs, %ax
	movw	%ax, %ds
	lgdtl	(ap_tramp_gdtr - ap_tramp_start)
	movl	%cr0, %eax
	orl	$CR0_PE, %eax
	movl	%eax, %cr0
	ljmpl	$SEL_CODE32, $(AP_TRAMP_GPA + (ap_tramp_pm32 - ap_tramp_start))
	.code32
ap_tramp_pm32:
	ENABLE_LONG_MODE
	movl	%cr0, %eax
	orl	$CR0_PG, %eax
	movl	%eax, %cr0
	ljmp	$SEL_KCODE, $ap_entry64
	.balign 8
ap_tramp_gdtr:
	.word	gdt_end - gdt - 1
	.long	gdt
ap_tramp_end:

/* Interrupt and exception stubs: push a uniform frame, call trap(). */
	.text
	.code64
.macro ISR_NOERR vec
isr_\vec:
	pushq	$0
	pushq	$\vec
	jmp	isr_common
.endm
.macro ISR_ERR vec
isr_\vec:
	pushq	$\vec
	jmp	isr_common
.endm

	ISR_NOERR 0
	ISR_NOERR 1
	ISR_NOERR 2
	ISR_NOERR 3
	ISR_NOERR 4
	ISR_NOERR 5
	ISR_NOERR 6
	ISR_NOERR 7
	ISR_ERR 8
	ISR_NOERR 9
	ISR_ERR 10
	ISR_ERR 11
	ISR_ERR 12
	ISR_ERR 13
	ISR_ERR 14
	ISR_NOERR 15
	ISR_NOERR 16
	ISR_ERR 17
	ISR_NOERR 18
	ISR_NOERR 19
	ISR_NOERR 20
	ISR_ERR 21
	ISR_NOERR 22
	ISR_NOERR 23
	ISR_NOERR 24
	ISR_NOERR 25
	ISR_NOERR 26
	ISR_NOERR 27
	ISR_NOERR 28
	ISR_ERR 29
	ISR_ERR 30
	ISR_NOERR 31

isr_common:
	pushq	%rax
	pushq	%rcx
	pushq	%rdx
	pushq	%rbx
	pushq	%rbp
	pushq	%rsi
	pushq	%rdi
	pushq	%r8
	pushq	%r9
	pushq	%r10
	pushq	%r11
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	movq	%rsp, %rdi
	call	trap
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%r11
	popq	%r10
	popq	%r9
	popq	%r8
	popq	%rdi
	popq	%rsi
	popq	%rbp
	popq	%rbx
	popq	%rdx
	popq	%rcx
	popq	%rax
	addq	$16, %rsp	/* vector, error code */
	iretq

	.section .rodata
	.globl isr_table
	.balign 8
isr_table:
	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.quad isr_\v
	.endr

/* Link-time tables. */
	.data
	.globl boot_info_ptr, boot_proto, ap_next_index, gdt, gdt_desc
	.balign 8
boot_info_ptr:	.quad 0
boot_proto:	.long 0
ap_next_index:	.long 1

	.balign 16
gdt:
	.quad 0
	.quad 0x00cf9a000000ffff	/* 0x08 code32 */
	.quad 0x00af9a000000ffff	/* 0x10 code64, DPL0 */
	.quad 0x00cf92000000ffff	/* 0x18 data, DPL0 */
	.quad 0x00cff2000000ffff	/* 0x20 data, DPL3 */
	.quad 0x00affa000000ffff	/* 0x28 code64, DPL3 */
	.fill MAX_CPUS * 2, 8, 0	/* TSS descriptors, filled by cpu_init() */
gdt_end:
	.balign 8
	.word 0, 0, 0
gdt_desc:
	.word gdt_end - gdt - 1
	.quad gdt

/*
 * Identity map of the low 4 GiB with 2 MiB pages, user-accessible: the test
 * guest's workloads run at CPL3 and touch guest memory, MMIO and the boot
 * structures directly.
 */
	.balign 4096
	.globl pml4
pml4:
	.quad pdpt + 0x7
	.fill 511, 8, 0
pdpt:
	.quad pd + 0x0000 + 0x7
	.quad pd + 0x1000 + 0x7
	.quad pd + 0x2000 + 0x7
	.quad pd + 0x3000 + 0x7
	.fill 508, 8, 0
pd:
	.set i, 0
	.rept 2048
	.quad (i << 21) | 0x87
	.set i, i + 1
	.endr

	.section .note.Xen, "a", @note
	.balign 4
	.long 4		/* name size */
	.long 8		/* descriptor size */
	.long 18	/* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.quad pvh_entry
	.balign 4

	.bss
	.balign 4096
	.globl bsp_kstack, ap_kstacks
bsp_kstack:	.skip KSTACK_SIZE
ap_kstacks:	.skip KSTACK_SIZE * MAX_CPUS
