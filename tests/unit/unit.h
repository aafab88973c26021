/* SPDX-License-Identifier: MIT */
/* tests/unit/unit.h - what every cmocka unit test includes. */
#ifndef TERN_TESTS_UNIT_H
#define TERN_TESTS_UNIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four above first */
#include <cmocka.h>
#include <string.h>

#define assert_err_contains(e, needle)                                                                 \
	do {                                                                                           \
		if (!strstr((e)->msg, (needle)))                                                       \
			fail_msg("error '%s' does not contain '%s'", (e)->msg, (needle));              \
	} while (0)

#endif
