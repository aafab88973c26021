/* SPDX-License-Identifier: MIT */
/* migrate/tls.c - mutual TLS for migration connections (tls.h), on GnuTLS. */
#include "migrate/tls.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "migrate/migrate.h"
#include "vmm/dynlib.h"

/* TLS 1.3 only, AES-GCM only (the CPU's AES instructions make it cheap),
 * GnuTLS's usual key exchanges and signatures. */
#define PRIORITY "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM"

/* GnuTLS, loaded when a migration uses TLS (vmm/dynlib.h): the process
 * that runs a guest without it never maps the library. */
struct gnutls_fns {
	__typeof__(gnutls_certificate_allocate_credentials) *certificate_allocate_credentials;
	__typeof__(gnutls_certificate_free_credentials) *certificate_free_credentials;
	__typeof__(gnutls_certificate_set_x509_trust_file) *certificate_set_x509_trust_file;
	__typeof__(gnutls_certificate_set_x509_key_file) *certificate_set_x509_key_file;
	__typeof__(gnutls_strerror) *strerror;
	__typeof__(gnutls_session_get_verify_cert_status) *session_get_verify_cert_status;
	__typeof__(gnutls_certificate_verification_status_print) *certificate_verification_status_print;
	__typeof__(gnutls_alert_get) *alert_get;
	__typeof__(gnutls_alert_get_name) *alert_get_name;
	__typeof__(gnutls_init) *init;
	__typeof__(gnutls_priority_set_direct) *priority_set_direct;
	__typeof__(gnutls_credentials_set) *credentials_set;
	__typeof__(gnutls_certificate_server_set_request) *certificate_server_set_request;
	__typeof__(gnutls_server_name_set) *server_name_set;
	__typeof__(gnutls_session_set_verify_cert) *session_set_verify_cert;
	__typeof__(gnutls_transport_set_int2) *transport_set_int2;
	__typeof__(gnutls_handshake_set_timeout) *handshake_set_timeout;
	__typeof__(gnutls_handshake) *handshake;
	__typeof__(gnutls_error_is_fatal) *error_is_fatal;
	__typeof__(gnutls_record_send) *record_send;
	__typeof__(gnutls_record_recv) *record_recv;
	__typeof__(gnutls_record_cork) *record_cork;
	__typeof__(gnutls_record_uncork) *record_uncork;
	__typeof__(gnutls_protocol_get_name) *protocol_get_name;
	__typeof__(gnutls_protocol_get_version) *protocol_get_version;
	__typeof__(gnutls_cipher_get_name) *cipher_get_name;
	__typeof__(gnutls_cipher_get) *cipher_get;
	__typeof__(gnutls_deinit) *deinit;
	__typeof__(gnutls_alert_send_appropriate) *alert_send_appropriate;
	gnutls_free_function *free_var; /* gnutls_free is a variable */
};

#define SYM(n) { "gnutls_" #n, offsetof(struct gnutls_fns, n) }
static const struct dynlib_sym gnutls_syms[] = {
	{ "gnutls_free", offsetof(struct gnutls_fns, free_var) },
	SYM(certificate_allocate_credentials),
	SYM(certificate_free_credentials),
	SYM(certificate_set_x509_trust_file),
	SYM(certificate_set_x509_key_file),
	SYM(strerror),
	SYM(session_get_verify_cert_status),
	SYM(certificate_verification_status_print),
	SYM(alert_get),
	SYM(alert_get_name),
	SYM(init),
	SYM(priority_set_direct),
	SYM(credentials_set),
	SYM(certificate_server_set_request),
	SYM(server_name_set),
	SYM(session_set_verify_cert),
	SYM(transport_set_int2),
	SYM(handshake_set_timeout),
	SYM(handshake),
	SYM(error_is_fatal),
	SYM(record_send),
	SYM(record_recv),
	SYM(record_cork),
	SYM(record_uncork),
	SYM(protocol_get_name),
	SYM(protocol_get_version),
	SYM(cipher_get_name),
	SYM(cipher_get),
	SYM(deinit),
	SYM(alert_send_appropriate),
};

struct mig_tls_creds {
	struct gnutls_fns fn;
	void *lib;
	gnutls_certificate_credentials_t cred;
	bool server;
};

struct mig_tls {
	const struct gnutls_fns *fn;
	gnutls_session_t s;
	char alert[96];    /* the peer's fatal alert, once one came */
};

static int file_in(const char *dir, const char *name, char *out, size_t len, struct err *e)
{
	struct stat st;

	if ((size_t)snprintf(out, len, "%s/%s", dir, name) >= len)
		return err_set(e, -ENAMETOOLONG, "--tls-dir: '%s' is too long", dir);
	if (stat(out, &st) < 0)
		return err_errno(e, -errno, "--tls-dir: '%s'", out);
	if (!S_ISREG(st.st_mode))
		return err_set(e, -EINVAL, "--tls-dir: '%s' is not a regular file", out);
	return 0;
}

int mig_tls_creds_load(struct mig_tls_creds **out, const char *dir, bool server, struct err *e)
{
	char ca[MIG_TLS_DIR_MAX + 32], cert[MIG_TLS_DIR_MAX + 32], key[MIG_TLS_DIR_MAX + 32];
	const char *side = server ? "server" : "client";
	char cert_name[32], key_name[32];
	struct mig_tls_creds *c;
	int r;

	snprintf(cert_name, sizeof(cert_name), "%s-cert.pem", side);
	snprintf(key_name, sizeof(key_name), "%s-key.pem", side);
	if ((r = file_in(dir, "ca-cert.pem", ca, sizeof(ca), e)) < 0 ||
	    (r = file_in(dir, cert_name, cert, sizeof(cert), e)) < 0 ||
	    (r = file_in(dir, key_name, key, sizeof(key), e)) < 0)
		return r;
	c = calloc(1, sizeof(*c));
	if (!c)
		return err_set(e, -ENOMEM, "out of memory for TLS credentials");
	c->lib = dynlib_open("libgnutls.so.30", "libgnutls30", gnutls_syms, ARRAY_SIZE(gnutls_syms), &c->fn, e);
	if (!c->lib) {
		free(c);
		return -ENOENT;
	}
	if (c->fn.certificate_allocate_credentials(&c->cred) < 0) {
		mig_tls_creds_free(c);
		return err_set(e, -ENOMEM, "out of memory for TLS credentials");
	}
	c->server = server;
	r = c->fn.certificate_set_x509_trust_file(c->cred, ca, GNUTLS_X509_FMT_PEM);
	if (r <= 0) {
		err_set(e, -EINVAL, "--tls-dir: '%s' holds no CA certificate (%s)", ca,
			r < 0 ? c->fn.strerror(r) : "none found");
		goto fail;
	}
	r = c->fn.certificate_set_x509_key_file(c->cred, cert, key, GNUTLS_X509_FMT_PEM);
	if (r < 0) {
		err_set(e, -EINVAL, "--tls-dir: '%s' and '%s' are not a certificate and its key: %s", cert, key,
			c->fn.strerror(r));
		goto fail;
	}
	*out = c;
	return 0;
fail:
	mig_tls_creds_free(c);
	return -EINVAL;
}

void mig_tls_creds_free(struct mig_tls_creds *c)
{
	if (!c)
		return;
	if (c->cred)
		c->fn.certificate_free_credentials(c->cred);
	dynlib_close(c->lib);
	free(c);
}

/* Why a handshake failed, in words a user can act on. */
static int handshake_error(const struct gnutls_fns *fn, gnutls_session_t s, int ret, bool server,
			   struct err *e)
{
	const char *peer = server ? "the source" : "the destination";

	if (ret == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR || ret == GNUTLS_E_CERTIFICATE_ERROR) {
		gnutls_datum_t why = { NULL, 0 };
		unsigned st = fn->session_get_verify_cert_status(s);
		if (fn->certificate_verification_status_print(st, GNUTLS_CRT_X509, &why, 0) < 0)
			why.data = NULL;
		err_set(e, -EACCES, "TLS: %s's certificate is refused: %s", peer,
			why.data ? (const char *)why.data : fn->strerror(ret));
		if (why.data)
			(*fn->free_var)(why.data);
		return -EACCES;
	}
	if (ret == GNUTLS_E_NO_CERTIFICATE_FOUND || ret == GNUTLS_E_CERTIFICATE_REQUIRED)
		return err_set(e, -EACCES, "TLS: %s sent no certificate (it has none issued by this side's CA)", peer);
	if (ret == GNUTLS_E_FATAL_ALERT_RECEIVED) {
		gnutls_alert_description_t a = fn->alert_get(s);
		const char *name = fn->alert_get_name(a);
		if (a == GNUTLS_A_BAD_CERTIFICATE || a == GNUTLS_A_UNKNOWN_CA || a == GNUTLS_A_CERTIFICATE_EXPIRED ||
		    a == GNUTLS_A_CERTIFICATE_UNKNOWN || a == GNUTLS_A_CERTIFICATE_REQUIRED ||
		    a == GNUTLS_A_UNSUPPORTED_CERTIFICATE || a == GNUTLS_A_ACCESS_DENIED)
			return err_set(e, -EACCES, "TLS: %s refused this side's certificate (%s)", peer,
				       name ? name : "alert");
		return err_set(e, -EPROTO, "TLS: %s ended the handshake (%s)", peer, name ? name : "alert");
	}
	if (ret == GNUTLS_E_UNEXPECTED_PACKET_LENGTH || ret == GNUTLS_E_UNSUPPORTED_VERSION_PACKET ||
	    ret == GNUTLS_E_UNEXPECTED_PACKET || ret == GNUTLS_E_PREMATURE_TERMINATION)
		return err_set(e, -EPROTO, "TLS: %s does not speak TLS 1.3 (%s: a %s without --tls-dir?)", peer,
			       fn->strerror(ret), server ? "plain tern migrate" : "tern run --incoming");
	if (ret == GNUTLS_E_NO_PRIORITIES_WERE_SET || ret == GNUTLS_E_INSUFFICIENT_CREDENTIALS ||
	    ret == GNUTLS_E_NO_CIPHER_SUITES)
		return err_set(e, -EPROTO, "TLS: %s offers neither TLS 1.3 nor AES-GCM (%s)", peer, fn->strerror(ret));
	if (ret == GNUTLS_E_TIMEDOUT || ret == GNUTLS_E_AGAIN)
		return err_set(e, -ETIMEDOUT, "TLS: %s did not finish the handshake in time", peer);
	return err_set(e, -EPROTO, "TLS handshake with %s failed: %s", peer, fn->strerror(ret));
}

static bool is_address(const char *host)
{
	return strchr(host, ':') || strspn(host, "0123456789.") == strlen(host);
}

int mig_tls_handshake(struct mig_tls **out, int fd, const struct mig_tls_creds *c, const char *host,
		      unsigned timeout_ms, struct err *e)
{
	struct mig_tls *t = calloc(1, sizeof(*t));
	int r;

	if (!t)
		return err_set(e, -ENOMEM, "out of memory for a TLS session");
	t->fn = &c->fn;
	if (c->fn.init(&t->s, (c->server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_NO_SIGNAL) < 0) {
		free(t);
		return err_set(e, -ENOMEM, "out of memory for a TLS session");
	}
	r = c->fn.priority_set_direct(t->s, PRIORITY, NULL);
	if (r == 0)
		r = c->fn.credentials_set(t->s, GNUTLS_CRD_CERTIFICATE, c->cred);
	if (r < 0) {
		mig_tls_free(t);
		return err_set(e, -EPROTO, "TLS set-up: %s", c->fn.strerror(r));
	}
	if (c->server)
		c->fn.certificate_server_set_request(t->s, GNUTLS_CERT_REQUIRE);
	if (host && !is_address(host))
		c->fn.server_name_set(t->s, GNUTLS_NAME_DNS, host, strlen(host));
	/* the handshake checks the peer's chain against the CA, its dates and
	 * (source) that it names host, and fails on any of it */
	c->fn.session_set_verify_cert(t->s, host, 0);
	c->fn.transport_set_int2(t->s, fd, fd);
	c->fn.handshake_set_timeout(t->s, timeout_ms);
	do
		r = c->fn.handshake(t->s);
	while (r < 0 && !c->fn.error_is_fatal(r) && r != GNUTLS_E_AGAIN);
	if (r < 0) {
		/* the peer learns why too (GnuTLS leaves the alert to us) */
		if (r != GNUTLS_E_FATAL_ALERT_RECEIVED && r != GNUTLS_E_PREMATURE_TERMINATION)
			c->fn.alert_send_appropriate(t->s, r);
		int ret = handshake_error(t->fn, t->s, r, c->server, e);
		mig_tls_free(t);
		return ret;
	}
	*out = t;
	return 0;
}

static ssize_t io_result(ssize_t r);

/* A failed write or read: the peer may have said why first (in TLS 1.3 a
 * destination refuses the source's certificate only after the source's
 * handshake is over, with an alert that arrives instead of an answer). */
static ssize_t io_fail(struct mig_tls *t, ssize_t r)
{
	char b[64];

	if (r != GNUTLS_E_FATAL_ALERT_RECEIVED && !t->alert[0])
		r = t->fn->record_recv(t->s, b, sizeof(b)) == GNUTLS_E_FATAL_ALERT_RECEIVED ? GNUTLS_E_FATAL_ALERT_RECEIVED
											  : r;
	if (r == GNUTLS_E_FATAL_ALERT_RECEIVED && !t->alert[0]) {
		const char *name = t->fn->alert_get_name(t->fn->alert_get(t->s));
		snprintf(t->alert, sizeof(t->alert), "%s", name ? name : "an alert");
	}
	return t->alert[0] ? -EACCES : io_result(r);
}

const char *mig_tls_alert(const struct mig_tls *t)
{
	return t && t->alert[0] ? t->alert : NULL;
}

static ssize_t io_result(ssize_t r)
{
	switch (r) {
	case GNUTLS_E_AGAIN:
	case GNUTLS_E_TIMEDOUT:
		return -ETIMEDOUT;
	case GNUTLS_E_PREMATURE_TERMINATION:
	case GNUTLS_E_SESSION_EOF:
		return -EPIPE;
	case GNUTLS_E_PUSH_ERROR:
	case GNUTLS_E_PULL_ERROR:
		return errno == ECONNRESET ? -ECONNRESET : -EPIPE;
	case GNUTLS_E_DECRYPTION_FAILED:
	case GNUTLS_E_MAC_VERIFY_FAILED:
	case GNUTLS_E_UNEXPECTED_PACKET_LENGTH:
	case GNUTLS_E_RECORD_OVERFLOW:
		return -EBADMSG;
	default:
		return -EPROTO;
	}
}

ssize_t mig_tls_send(struct mig_tls *t, const void *p, size_t len)
{
	ssize_t r;

	do
		r = t->fn->record_send(t->s, p, len);
	while (r == GNUTLS_E_INTERRUPTED);
	return r >= 0 ? r : io_fail(t, r);
}

ssize_t mig_tls_sendv(struct mig_tls *t, const struct iovec *iov, int n)
{
	size_t total = 0;
	ssize_t r;

	t->fn->record_cork(t->s);
	for (int i = 0; i < n; i++) {
		do
			r = t->fn->record_send(t->s, iov[i].iov_base, iov[i].iov_len);
		while (r == GNUTLS_E_INTERRUPTED);
		if (r < 0) {
			t->fn->record_uncork(t->s, 0);
			return io_fail(t, r);
		}
		total += iov[i].iov_len;
	}
	do
		r = t->fn->record_uncork(t->s, GNUTLS_RECORD_WAIT);
	while (r == GNUTLS_E_INTERRUPTED);
	return r < 0 ? io_fail(t, r) : (ssize_t)total;
}

ssize_t mig_tls_recv(struct mig_tls *t, void *p, size_t len)
{
	ssize_t r;

	do
		r = t->fn->record_recv(t->s, p, len);
	while (r == GNUTLS_E_INTERRUPTED);
	if (r == 0)
		return -EPIPE;
	return r > 0 ? r : io_fail(t, r);
}

const char *mig_tls_describe(struct mig_tls *t, char *buf, size_t len)
{
	const char *v = t->fn->protocol_get_name(t->fn->protocol_get_version(t->s));
	const char *c = t->fn->cipher_get_name(t->fn->cipher_get(t->s));

	snprintf(buf, len, "%s %s", v ? v : "?", c ? c : "?");
	return buf;
}

void mig_tls_free(struct mig_tls *t)
{
	if (!t)
		return;
	if (t->s)
		t->fn->deinit(t->s);
	free(t);
}
