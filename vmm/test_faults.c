/* SPDX-License-Identifier: MIT */
/* vmm/test_faults.c - the TERN_TEST_FAULTS test interface (test_faults.h). */
#include "vmm/test_faults.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vmm/sandbox.h"

/* "DIR:N", "DIR:each", "DIR:OP" or "DIR:OP#K" */
static int parse_switch(char *val, struct test_faults *f, struct err *e)
{
	char *how = strchr(val, ':');
	uint64_t v;

	if (!how)
		return err_set(e, -EINVAL, "%s: switch=%s is not DIR:N|DIR:OP[#K]|DIR:each", TEST_FAULTS_ENV, val);
	*how++ = '\0';
	if (!strcmp(val, "to-svq"))
		f->switch_dir = FAULT_SWITCH_TO_SVQ;
	else if (!strcmp(val, "to-passthrough"))
		f->switch_dir = FAULT_SWITCH_TO_PASSTHROUGH;
	else
		return err_set(e, -EINVAL, "%s: switch direction '%s' is not to-svq or to-passthrough", TEST_FAULTS_ENV,
			       val);
	if (!strcmp(how, "each")) {
		f->switch_each = true;
		return 0;
	}
	if (parse_u64(how, 0, 1u << 20, &v) == 0) {
		f->switch_at = (int)v;
		return 0;
	}
	char *nth = strchr(how, '#');
	if (nth) {
		*nth++ = '\0';
		if (parse_u64(nth, 0, 1u << 20, &v) < 0)
			return err_set(e, -EINVAL, "%s: switch op count '%s' is not a number", TEST_FAULTS_ENV, nth);
		f->switch_at = (int)v;
	}
	if (!*how || strlen(how) >= sizeof(f->switch_op) || strspn(how, "abcdefghijklmnopqrstuvwxyz_") != strlen(how))
		return err_set(e, -EINVAL, "%s: switch op '%s' is not a vDPA op name", TEST_FAULTS_ENV, how);
	strcpy(f->switch_op, how);
	return 0;
}

static int parse_one(char *key, char *val, struct test_faults *f, struct err *e)
{
	uint64_t v;

	if (!strcmp(key, "switch"))
		return parse_switch(val, f, e);
	if (!strcmp(key, "cvq-nack")) {
		if (parse_u64(val, 1, UINT32_MAX, &v) < 0)
			return err_set(e, -EINVAL, "%s: cvq-nack=%s is not 1..2^32-1", TEST_FAULTS_ENV, val);
		f->cvq_nack = (uint32_t)v;
		return 0;
	}
	if (!strcmp(key, "migrate-stall")) {
		if (!*val || strlen(val) >= sizeof(f->migrate_stall))
			return err_set(e, -EINVAL, "%s: migrate-stall=%s is not a state name", TEST_FAULTS_ENV, val);
		strcpy(f->migrate_stall, val);
		return 0;
	}
	if (!strcmp(key, "replay")) {
		if (strcmp(val, "serial"))
			return err_set(e, -EINVAL, "%s: replay=%s is not serial", TEST_FAULTS_ENV, val);
		f->replay_serial = true;
		return 0;
	}
	if (!strcmp(key, "seccomp-violate")) {
		enum sandbox_kind k;
		if (sandbox_kind_parse(val, &k) < 0)
			return err_set(e, -EINVAL, "%s: seccomp-violate=%s is not a thread kind (main, vcpu, device, "
						   "console, migration, throttle, api)", TEST_FAULTS_ENV, val);
		f->seccomp_violate = (unsigned)k + 1;
		return 0;
	}
	return err_set(e, -EINVAL, "%s: unknown fault '%s' (switch, cvq-nack, migrate-stall, replay, seccomp-violate)",
		       TEST_FAULTS_ENV, key);
}

int test_faults_parse(const char *spec, struct test_faults *f, struct err *e)
{
	char buf[256], *save = NULL;

	memset(f, 0, sizeof(*f));
	if (strlen(spec) >= sizeof(buf))
		return err_set(e, -EINVAL, "%s is too long", TEST_FAULTS_ENV);
	strcpy(buf, spec);
	for (char *tok = strtok_r(buf, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
		char *val = strchr(tok, '=');
		if (!val)
			return err_set(e, -EINVAL, "%s: '%s' is not KEY=VALUE", TEST_FAULTS_ENV, tok);
		*val++ = '\0';
		int r = parse_one(tok, val, f, e);
		if (r < 0)
			return r;
	}
	return 0;
}
