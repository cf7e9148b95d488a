/*
 * sha256.h - SHA-256 and HMAC-SHA-256 (FIPS 180-4, RFC 2104), for hashing
 * bearer tokens and signing session cookies. Small and self-contained so the
 * daemon needs no crypto library for it.
 */
#ifndef PARLEY_SHA256_H
#define PARLEY_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct sha256 {
	uint32_t h[8];
	uint64_t len;
	unsigned char buf[64];
	size_t nbuf;
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t n);
void sha256_final(struct sha256 *s, unsigned char out[32]);
/* out: 64 hex characters and a NUL. */
void sha256_hex(const void *data, size_t n, char out[65]);
void hmac_sha256(const void *key, size_t klen, const void *msg, size_t mlen, unsigned char out[32]);
/* Compares n bytes in time that does not depend on where they differ. */
int ct_equal(const void *a, const void *b, size_t n);

#endif
