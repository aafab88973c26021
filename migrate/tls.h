/* SPDX-License-Identifier: MIT */
/*
 * migrate/tls.h - mutual TLS for migration connections (GnuTLS;
 * docs/migration.md, "TLS").
 *
 * A credentials directory holds Cloud Hypervisor's file names: ca-cert.pem
 * (the CA both sides trust), server-cert.pem and server-key.pem (the
 * destination's), client-cert.pem and client-key.pem (the source's). Each
 * side proves itself with its own pair and checks the other's certificate
 * against the CA (chain, validity dates, key usage); the source also
 * checks that the destination's certificate names the host it connected
 * to (a DNS name or an IP address in its subject alternative names). Only
 * TLS 1.3 with AES-GCM is offered.
 */
#ifndef TERN_MIGRATE_TLS_H
#define TERN_MIGRATE_TLS_H

#include <sys/types.h>

#include "vmm/util.h"


struct mig_tls_creds;
struct mig_tls;

/* Loads dir's CA and the pair of one side (server: the destination).
 * Errors name the file and what is wrong with it. */
int mig_tls_creds_load(struct mig_tls_creds **out, const char *dir, bool server, struct err *e);
void mig_tls_creds_free(struct mig_tls_creds *c);

/* The handshake on connected socket fd, within timeout_ms; host: the name
 * or address the source connected to (NULL on the destination). -EACCES
 * when the peer's certificate is refused, -EPROTO when the peer does not
 * speak TLS (or not the same version and ciphers), with e saying which. */
int mig_tls_handshake(struct mig_tls **out, int fd, const struct mig_tls_creds *c, const char *host,
		      unsigned timeout_ms, struct err *e);
/* Records both ways: bytes sent or received (> 0), or -errno
 * (-ETIMEDOUT on a socket timeout, -EPIPE when the peer closed, -EBADMSG
 * for a record that fails its authentication). */
ssize_t mig_tls_send(struct mig_tls *t, const void *p, size_t len);
/* The iovecs' concatenation, corked into as few records as it fills. */
struct iovec;
ssize_t mig_tls_sendv(struct mig_tls *t, const struct iovec *iov, int n);
ssize_t mig_tls_recv(struct mig_tls *t, void *p, size_t len);
/* The fatal alert the peer ended the session with, or NULL: a failed
 * send or receive returned -EACCES then. */
const char *mig_tls_alert(const struct mig_tls *t);
/* The negotiated version and cipher, for the log ("TLS1.3 AES-256-GCM"). */
const char *mig_tls_describe(struct mig_tls *t, char *buf, size_t len);
/* Ends the session (no close_notify wait) and frees it; not the socket. */
void mig_tls_free(struct mig_tls *t);

#endif
