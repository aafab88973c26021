/* SPDX-License-Identifier: MIT */
/* tests/kvm/stamp_reports.h - reading the page-stamp guest's reports in the
 * C KVM tests (the test device writes them to a file). */
#ifndef TERN_TESTS_KVM_STAMP_REPORTS_H
#define TERN_TESTS_KVM_STAMP_REPORTS_H

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/unit.h"
#include "vmm/util.h"

/* "stamp pass=" reports in the whole file so far, or -1 after a
 * "stamp error" report. */
static inline int stamp_passes(const char *path)
{
	uint8_t *buf;
	size_t len;
	int n = 0;

	if (read_file(path, "reports", 256u << 20, &buf, &len, NULL) < 0)
		return 0;
	char *text = realloc(buf, len + 1);
	if (!text) {
		free(buf);
		return 0;
	}
	text[len] = '\0';
	if (strstr(text, "stamp error"))
		n = -1;
	else
		for (char *p = text; (p = strstr(p, "stamp pass=")); p++)
			n++;
	free(text);
	return n;
}

/* Waits (up to 30 s) until the guest made want passes; fails the cmocka
 * test on a bad page or when it does not. (cmocka) */
static inline void stamp_wait(const char *path, int want)
{
	for (int i = 0; i < 3000; i++) {
		int n = stamp_passes(path);
		if (n < 0)
			fail_msg("the guest found a bad page (%s)", path);
		if (n >= want)
			return;
		usleep(10000);
	}
	fail_msg("the guest did not reach %d passes", want);
}

#endif
