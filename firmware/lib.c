/* SPDX-License-Identifier: MIT */
/* firmware/lib.c - string, formatting, CRC, UART and test-device helpers. */
#include "lib.h"

void *memcpy(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;

	while (n--)
		*d++ = *s++;
	return dst;
}

void *memset(void *dst, int c, size_t n)
{
	unsigned char *d = dst;

	while (n--)
		*d++ = (unsigned char)c;
	return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;

	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x - *y;
	return 0;
}

size_t strlen(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

size_t strnlen(const char *s, size_t max)
{
	size_t n = 0;

	while (n < max && s[n])
		n++;
	return n;
}

int strncmp(const char *a, const char *b, size_t n)
{
	for (; n; n--, a++, b++) {
		if (*a != *b)
			return (unsigned char)*a - (unsigned char)*b;
		if (!*a)
			return 0;
	}
	return 0;
}

/* CRC-32 (IEEE 802.3, reflected 0xEDB88320): what zlib.crc32 computes. */
uint32_t crc32(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1)));
	}
	return ~crc;
}

int cmdline_find(const char *cmdline, const char *key, char *out, size_t size)
{
	size_t klen = strlen(key);
	const char *p = cmdline;

	while (*p) {
		while (*p == ' ')
			p++;
		const char *tok = p;
		while (*p && *p != ' ')
			p++;
		if ((size_t)(p - tok) > klen && !strncmp(tok, key, klen) && tok[klen] == '=') {
			size_t n = (size_t)(p - tok) - klen - 1;
			if (n >= size)
				n = size - 1;
			memcpy(out, tok + klen + 1, n);
			out[n] = '\0';
			return 1;
		}
	}
	return 0;
}

unsigned parse_uint(const char *s)
{
	unsigned v = 0;

	while (*s >= '0' && *s <= '9')
		v = v * 10 + (unsigned)(*s++ - '0');
	return v;
}

/* CMOS RTC seconds (0..59), or -1 if the RTC looks absent. Register A bit 7
 * flags an update in progress, so read until two reads agree. */
static int rtc_seconds(void)
{
	uint8_t a, b;

	for (int i = 0; i < 8; i++) {
		outb(CMOS_INDEX_PORT, 0x00);
		a = inb(CMOS_DATA_PORT);
		outb(CMOS_INDEX_PORT, 0x00);
		b = inb(CMOS_DATA_PORT);
		if (a == b)
			break;
	}
	if (a != b || a == 0xff)
		return -1;
	outb(CMOS_INDEX_PORT, 0x0b);
	if (!(inb(CMOS_DATA_PORT) & 0x04)) /* register B: BCD unless DM is set */
		a = (uint8_t)((a >> 4) * 10 + (a & 0x0f));
	return a < 60 ? a : -1;
}

#define TIMEOUT_RTC_POLL_TSC (1ull << 23)
#define TIMEOUT_TSC_PER_SEC 5000000000ull /* deliberately above any real TSC rate */

void timeout_start(struct timeout *t, unsigned seconds)
{
	t->tsc_start = t->tsc_last = rdtsc();
	t->tsc_limit = (seconds + 2ull) * TIMEOUT_TSC_PER_SEC;
	t->seconds = seconds;
	t->elapsed = 0;
	t->last_sec = rtc_seconds();
}

int timeout_expired(struct timeout *t)
{
	uint64_t now = rdtsc();

	if (now - t->tsc_start >= t->tsc_limit)
		return 1;
	if (now - t->tsc_last < TIMEOUT_RTC_POLL_TSC)
		return 0;
	t->tsc_last = now;
	int s = rtc_seconds();
	if (s >= 0 && t->last_sec >= 0 && s != t->last_sec)
		t->elapsed += (unsigned)((s - t->last_sec + 60) % 60);
	t->last_sec = s;
	/* elapsed counts second boundaries crossed: more than "seconds" of them
	 * means at least "seconds" have passed. */
	return t->elapsed > t->seconds;
}

struct outbuf {
	char *buf;
	size_t size, len;
};

static void put(struct outbuf *o, char c)
{
	if (o->len + 1 < o->size)
		o->buf[o->len] = c;
	o->len++;
}

static void put_num(struct outbuf *o, unsigned long long v, unsigned base, int width, char pad)
{
	char tmp[24];
	int n = 0;

	do {
		tmp[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	while (width-- > n)
		put(o, pad);
	while (n)
		put(o, tmp[--n]);
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct outbuf o = { buf, size, 0 };

	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			put(&o, *fmt);
			continue;
		}
		fmt++;
		char pad = ' ';
		int width = 0, longs = 0;

		if (*fmt == '0')
			pad = '0';
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		while (*fmt == 'l') {
			longs++;
			fmt++;
		}
		switch (*fmt) {
		case 's': {
			const char *s = va_arg(ap, const char *);
			while (*s)
				put(&o, *s++);
			break;
		}
		case 'c':
			put(&o, (char)va_arg(ap, int));
			break;
		case 'd': {
			long long v = longs ? va_arg(ap, long long) : va_arg(ap, int);
			if (v < 0) {
				put(&o, '-');
				v = -v;
			}
			put_num(&o, (unsigned long long)v, 10, width, pad);
			break;
		}
		case 'u':
		case 'x': {
			unsigned long long v = longs ? va_arg(ap, unsigned long long) : va_arg(ap, unsigned);
			put_num(&o, v, *fmt == 'u' ? 10 : 16, width, pad);
			break;
		}
		case '%':
			put(&o, '%');
			break;
		default:
			put(&o, '?');
			if (!*fmt)
				fmt--;
			break;
		}
	}
	if (size)
		buf[o.len < size ? o.len : size - 1] = '\0';
	return (int)o.len;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

#define UART_THR 0
#define UART_RBR 0
#define UART_IER 1
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define LSR_DR 0x01
#define LSR_THRE 0x20

void uart_init(void)
{
	outb(COM1_PORT + UART_IER, 0x00);
	outb(COM1_PORT + UART_LCR, 0x80); /* DLAB: 115200 baud */
	outb(COM1_PORT + 0, 0x01);
	outb(COM1_PORT + 1, 0x00);
	outb(COM1_PORT + UART_LCR, 0x03); /* 8N1 */
	outb(COM1_PORT + UART_FCR, 0x07);
	outb(COM1_PORT + UART_MCR, 0x03);
}

void uart_putc(char c)
{
	/* Bounded wait: an absent UART reads 0xff and so looks ready. */
	for (int i = 0; i < 100000 && !(inb(COM1_PORT + UART_LSR) & LSR_THRE); i++)
		cpu_relax();
	outb(COM1_PORT + UART_THR, (uint8_t)c);
}

int uart_getc_poll(void)
{
	uint8_t lsr = inb(COM1_PORT + UART_LSR);

	if (lsr == 0xff || !(lsr & LSR_DR))
		return -1;
	return inb(COM1_PORT + UART_RBR);
}

static void uart_puts(const char *s)
{
	for (; *s; s++) {
		if (*s == '\n')
			uart_putc('\r');
		uart_putc(*s);
	}
}

void printf(const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	uart_puts(buf);
}

int testdev_present(void)
{
	return mmio_read32(TESTDEV_GPA + TESTDEV_REG_MAGIC) == TESTDEV_MAGIC;
}

static struct {
	struct testdev_report hdr;
	char text[TESTDEV_REPORT_MAX];
} report_buf __attribute__((aligned(8)));

void report(const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(report_buf.text, sizeof(report_buf.text), fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof(report_buf.text))
		n = sizeof(report_buf.text) - 1;
	printf("report: %s\n", report_buf.text);
	if (!testdev_present())
		return;
	report_buf.hdr.len = (uint32_t)n;
	report_buf.hdr.rsvd = 0;
	mmio_write64(TESTDEV_GPA + TESTDEV_REG_REPORT, (uint64_t)(uintptr_t)&report_buf);
}

void guest_exit(uint32_t status)
{
	if (testdev_present())
		mmio_write32(TESTDEV_GPA + TESTDEV_REG_EXIT, status);
	/* Under QEMU: isa-debug-exit, if configured at its usual port. */
	outb(0xf4, (uint8_t)status);
	for (;;)
		syscall2(SYS_HALT, 0, 0);
}
