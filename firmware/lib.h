/* SPDX-License-Identifier: MIT */
/* firmware/lib.h - the test guest's freestanding runtime. */
#ifndef TERN_FIRMWARE_LIB_H
#define TERN_FIRMWARE_LIB_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "abi.h"
#include "guest.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline void outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint16_t inw(uint16_t port)
{
	uint16_t v;
	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;
	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint8_t mmio_read8(uint64_t gpa)
{
	return *(volatile uint8_t *)(uintptr_t)gpa;
}

static inline void mmio_write8(uint64_t gpa, uint8_t v)
{
	*(volatile uint8_t *)(uintptr_t)gpa = v;
}

static inline uint16_t mmio_read16(uint64_t gpa)
{
	return *(volatile uint16_t *)(uintptr_t)gpa;
}

static inline void mmio_write16(uint64_t gpa, uint16_t v)
{
	*(volatile uint16_t *)(uintptr_t)gpa = v;
}

static inline uint32_t mmio_read32(uint64_t gpa)
{
	return *(volatile uint32_t *)(uintptr_t)gpa;
}

static inline void mmio_write32(uint64_t gpa, uint32_t v)
{
	*(volatile uint32_t *)(uintptr_t)gpa = v;
}

static inline void mmio_write64(uint64_t gpa, uint64_t v)
{
	*(volatile uint64_t *)(uintptr_t)gpa = v;
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

static inline void cpu_relax(void)
{
	__asm__ volatile("pause" ::: "memory");
}

static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	__asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

/*
 * A system call into the guest's CPL0 half: ud2 with a tagged number in rax.
 * The #UD handler recognises the tag, runs the call and resumes after the
 * ud2. Neither int $n nor syscall/sysret reach CPL0 on the development
 * hosts' KVM (int $n raises #UD there, syscall stays at CPL3), while
 * exceptions are delivered everywhere.
 */
static inline uint64_t syscall2(uint64_t nr, uint64_t a, uint64_t b)
{
	uint64_t ret = SYSCALL_TAG | nr;
	__asm__ volatile("ud2" : "+a"(ret), "+D"(a), "+S"(b) : : "memory");
	return ret;
}

void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
size_t strnlen(const char *s, size_t max);
int strncmp(const char *a, const char *b, size_t n);

uint32_t crc32(uint32_t crc, const void *buf, size_t len);

/* Copies the value of "key=" from a space-separated command line into out
 * (NUL-terminated, truncated to size); 0 if the key is absent. */
int cmdline_find(const char *cmdline, const char *key, char *out, size_t size);
/* Leading decimal digits of s (0 if none). */
unsigned parse_uint(const char *s);

/*
 * Coarse wall-clock timeouts at CPL3. The guest cannot know the TSC rate, so
 * seconds are counted from the CMOS RTC (ports 0x70/0x71, which the TSS
 * bitmap grants); the RTC is read only every ~2^23 TSC ticks to keep port
 * exits rare. A generous TSC bound ((seconds + 2) * 5e9 ticks) ends the wait
 * should the RTC be absent or stuck.
 */
struct timeout {
	uint64_t tsc_start, tsc_last, tsc_limit;
	unsigned seconds, elapsed;
	int last_sec;
};
void timeout_start(struct timeout *t, unsigned seconds);
int timeout_expired(struct timeout *t); /* 1 once the time is up */

/* Bounded formatter: %s %c %d %u %x %lu %lx %llu %llx %%, widths with 0 pad. */
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Console (COM1) and test device. Callable at CPL3 (ports granted by the
 * TSS I/O bitmap, test device page mapped user-accessible). */
void uart_init(void);
void uart_putc(char c);
int uart_getc_poll(void); /* -1 when nothing is waiting */
void printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

int testdev_present(void);
/* Report one line through the test device and echo it to the console. */
void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void guest_exit(uint32_t status) __attribute__((noreturn));

#endif
