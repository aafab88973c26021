/* SPDX-License-Identifier: MIT */
/*
 * firmware/cpu.c - the test guest's CPL0 half: per-CPU descriptor set-up,
 * the drop to CPL3, exceptions and the two system calls. Every instruction
 * here is emulated on the development hosts, so nothing loops over more than
 * a few dozen items.
 */
#include "lib.h"
#include "cpu.h"

struct tss {
	uint32_t rsvd0;
	uint64_t rsp0, rsp1, rsp2;
	uint64_t rsvd1;
	uint64_t ist[7];
	uint64_t rsvd2;
	uint16_t rsvd3;
	uint16_t iomap_base;
	/* I/O permission bitmap for ports 0..0xfff: a clear bit grants the
	 * port to CPL3 (the only way on hosts that ignore IOPL). */
	uint8_t iomap[0x1000 / 8];
} __attribute__((packed));
_Static_assert(__builtin_offsetof(struct tss, iomap_base) == 0x66, "TSS layout");
_Static_assert(__builtin_offsetof(struct tss, iomap) == 0x68, "TSS layout");

struct idt_gate {
	uint16_t off0, sel;
	uint8_t ist, type;
	uint16_t off1;
	uint32_t off2, rsvd;
} __attribute__((packed));
_Static_assert(sizeof(struct idt_gate) == 16, "IDT gate layout");

extern uint64_t gdt[];
extern const uint64_t isr_table[32];
extern char ap_kstacks[], bsp_kstack[];

static struct tss tss[MAX_CPUS] __attribute__((aligned(64)));
static struct idt_gate idt[256] __attribute__((aligned(16)));
static char ustacks[MAX_CPUS][USTACK_SIZE] __attribute__((aligned(16)));

static void set_gate(unsigned vec, uint64_t handler, unsigned dpl)
{
	idt[vec] = (struct idt_gate){
		.off0 = (uint16_t)handler,
		.sel = SEL_KCODE,
		.type = (uint8_t)(0x8e | (dpl << 5)), /* present 64-bit interrupt gate */
		.off1 = (uint16_t)(handler >> 16),
		.off2 = (uint32_t)(handler >> 32),
	};
}

/* Runs at CPL0 on each CPU: TSS, IDT, then iretq into CPL3. */
void cpu_init(unsigned idx)
{
	uint64_t base = (uint64_t)(uintptr_t)&tss[idx];
	uint64_t limit = sizeof(struct tss) - 1;
	unsigned slot = GDT_FIXED_ENTRIES + 2 * idx;
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) idtr = { sizeof(idt) - 1, (uint64_t)(uintptr_t)idt };

	if (idx == 0) {
		for (unsigned v = 0; v < 32; v++)
			set_gate(v, isr_table[v], 0);
	}

	tss[idx].rsp0 = idx ? (uint64_t)(uintptr_t)(ap_kstacks + (idx + 1) * KSTACK_SIZE)
			    : (uint64_t)(uintptr_t)(bsp_kstack + KSTACK_SIZE);
	tss[idx].iomap_base = __builtin_offsetof(struct tss, iomap);
	gdt[slot] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89ull << 40) |
		    ((limit >> 16) << 48) | (((base >> 24) & 0xff) << 56);
	gdt[slot + 1] = base >> 32;
	__asm__ volatile("ltr %w0" : : "r"(SEL_TSS0 + 16 * idx));
	__asm__ volatile("lidt %0" : : "m"(idtr));
	__asm__ volatile("pushq %0\n\t"
			 "pushq %1\n\t"
			 "pushq $0x2\n\t" /* RFLAGS: IF=0, IOPL=0 */
			 "pushq %2\n\t"
			 "pushq %3\n\t"
			 "iretq"
			 :
			 : "i"(SEL_UDATA), "r"((uint64_t)(uintptr_t)(ustacks[idx] + USTACK_SIZE)),
			   "i"(SEL_UCODE), "r"(idx ? (uint64_t)(uintptr_t)ap_main : (uint64_t)(uintptr_t)bsp_main), "D"(idx)
			 : "memory");
	__builtin_unreachable();
}

#define LAPIC_BASE 0xfee00000ull
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310

static uint64_t sys_apic_icr(uint64_t dest, uint64_t lo)
{
	mmio_write32(LAPIC_BASE + LAPIC_ICR_HI, (uint32_t)(dest << 24));
	mmio_write32(LAPIC_BASE + LAPIC_ICR_LO, (uint32_t)lo);
	return 0;
}

static void fault_report(const struct trap_frame *f)
{
	uint64_t cr2;

	__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	report("fault vector=%lu error=0x%lx rip=0x%lx cr2=0x%lx cs=0x%lx", (unsigned long)f->vector,
	       (unsigned long)f->error, (unsigned long)f->rip, (unsigned long)cr2, (unsigned long)f->cs);
	guest_exit(GUEST_EXIT_FAULT);
}

static uint64_t sys_dispatch(uint64_t nr, uint64_t a, uint64_t b)
{
	switch (nr) {
	case SYS_HALT:
		for (;;)
			__asm__ volatile("cli; hlt");
	case SYS_APIC_ICR:
		return sys_apic_icr(a, b);
	default:
		return (uint64_t)-1;
	}
}

void trap(struct trap_frame *f)
{
	/* A system call is a ud2 from CPL3 with the tag in rax. */
	if (f->vector == 6 && (f->cs & 3) == 3 && (f->rax >> 32) == (SYSCALL_TAG >> 32) &&
	    *(const uint16_t *)(uintptr_t)f->rip == 0x0b0f) {
		f->rax = sys_dispatch(f->rax & 0xffffffffu, f->rdi, f->rsi);
		f->rip += 2;
		return;
	}
	fault_report(f);
}
