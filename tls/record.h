/* Userspace record sealing for the write half of an established session (tls.c's "own TX"
 * mode): the same records BoringSSL's SSL_write would produce, sealed straight into the
 * caller's output buffer with EVP_AEAD, so a frame is copied once (into the record) and
 * encrypted in place instead of going through SSL_write's own buffer (allocated, sealed
 * into, copied out, wiped and freed on every call). The keys come from the kTLS
 * derivation (ws_keys_crypto_info), which tests/test_ktls.c proves against OpenSSL.
 *
 * Record layouts (RFC 5246 6.2.3.3 with RFC 5288 3 and RFC 7905 2; RFC 8446 5.2):
 *   TLS 1.2 AES-GCM: hdr(type, 03 03, len) | explicit nonce = seq (8) | ciphertext | tag
 *                    nonce = salt(4) | seq(8), AAD = seq | type | 03 03 | plaintext length
 *   TLS 1.2 ChaCha:  hdr | ciphertext | tag, nonce = iv ^ seq, AAD as above
 *   TLS 1.3:         hdr(23, 03 03, len) | seal(plaintext | type) | tag
 *                    nonce = iv ^ seq, AAD = hdr
 * Not thread-safe: one session, one thread. */
#ifndef URINGWS_TLS_RECORD_H
#define URINGWS_TLS_RECORD_H

#include <stdint.h>

#include <openssl/aead.h>
#include <openssl/digest.h>
#include <openssl/ssl.h>

#define WS_TLS_REC_HEADER 5u
#define WS_TLS_REC_TAG    16u

typedef struct ws_tls_rec {
    EVP_AEAD_CTX aead;
    uint8_t iv[12];       /* TLS 1.2 GCM: salt in iv[0..4]; otherwise XORed with seq */
    uint64_t seq;         /* sequence number of the next record we seal */
    uint16_t version;     /* TLS1_2_VERSION or TLS1_3_VERSION */
    uint8_t explicit_len; /* 8 for TLS 1.2 AES-GCM, else 0 */
    uint8_t secret_len;   /* TLS 1.3: the server traffic secret, for KeyUpdate */
    const EVP_MD *md;
    uint8_t secret[EVP_MAX_MD_SIZE];
} ws_tls_rec_t;

/* Sets up sealing for what the server writes, continuing at BoringSSL's write sequence.
 * The session must be established with nothing left unwritten inside BoringSSL, and from
 * here on BoringSSL must not seal another record that reaches the wire (see
 * ws_tls_rec_reseal). Returns 0 or an error of ws_keys_crypto_info (-ENOKEY, -ESTALE,
 * -EOPNOTSUPP, ...), or -EIO. */
int ws_tls_rec_init(ws_tls_rec_t *r, SSL *ssl);
void ws_tls_rec_cleanup(ws_tls_rec_t *r);

/* Bytes before the plaintext in a record, and bytes a record adds in all. */
static inline size_t ws_tls_rec_prefix(const ws_tls_rec_t *r)
{
    return WS_TLS_REC_HEADER + r->explicit_len;
}
static inline size_t ws_tls_rec_overhead(const ws_tls_rec_t *r)
{
    return ws_tls_rec_prefix(r) + (r->version == TLS1_3_VERSION ? 1u : 0u) + WS_TLS_REC_TAG;
}

/* Seals one record in place: rec[prefix .. prefix+n) holds the plaintext (n <= 2^14) and
 * rec has room for n + overhead bytes. Returns the record's length, or 0 on failure. */
size_t ws_tls_rec_seal(ws_tls_rec_t *r, uint8_t type, uint8_t *rec, size_t n);

/* Opens one record that BoringSSL sealed with the same keys at sequence *bssl_seq (its own
 * counter, which stops advancing on the wire once we seal) and seals its content again as
 * ours: for the records BoringSSL still writes after the hand-over (alerts, close_notify, a
 * TLS 1.3 KeyUpdate answering the peer's request). A KeyUpdate also moves both key
 * schedules to the next generation (RFC 8446 4.6.3), as BoringSSL did for itself, and
 * resets both counters. in/in_len: exactly one whole record. out: room for in_len bytes.
 * Returns the length written to out, or 0 when the record does not open. */
size_t ws_tls_rec_reseal(ws_tls_rec_t *r, uint64_t *bssl_seq, const uint8_t *in, size_t in_len,
                         uint8_t *out);

#endif
