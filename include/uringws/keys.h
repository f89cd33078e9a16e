/* TLS session keys: captures the TLS 1.3 traffic secrets of each server session (BoringSSL's
 * keylog callback) and builds the kernel's crypto_info (key, salt, IV, record sequence) for
 * TX or RX from an established session. Both the kTLS hand-off (tls/ktls.c) and the
 * userspace record sealer (tls/record.c) start from it; it does no I/O.
 *
 * Where the keys come from:
 *   TLS 1.2: SSL_generate_key_block() = client MAC | server MAC (both empty for AEAD) |
 *            client key | server key | client IV | server IV, the IVs being 4 bytes (GCM,
 *            the implicit "salt") or 12 bytes (ChaCha20-Poly1305).
 *            GCM: salt = implicit IV, iv = the next explicit nonce. BoringSSL's explicit
 *            nonce is the record sequence number (ssl/ssl_aead_ctx.cc), and the kernel
 *            increments iv once per record just as it does rec_seq, so iv = rec_seq makes
 *            the kernel continue exactly BoringSSL's nonce sequence.
 *            ChaCha20: iv = the 12-byte IV, no salt; the kernel XORs in the sequence.
 *   TLS 1.3: the application traffic secrets (captured from BoringSSL's keylog callback,
 *            CLIENT_TRAFFIC_SECRET_0 / SERVER_TRAFFIC_SECRET_0; the server writes with the
 *            server secret) expanded with HKDF-Expand-Label(secret, "key"/"iv", "", len)
 *            using the suite's hash (SHA-384 for AES-256-GCM, else SHA-256).
 *            GCM: salt = iv[0..4], iv = iv[4..12]. ChaCha20: iv = iv[0..12].
 *   rec_seq: SSL_get_write_sequence() (TX) / SSL_get_read_sequence() (RX), big-endian.
 *
 * Session tickets: we flush them first. BoringSSL seals the TLS 1.3 NewSessionTicket
 * records only on the server's next write (ssl/tls13_server.cc: "the NewSessionTicket isn't
 * flushed until the server performs a write"); ws_tls does a zero-byte write after every
 * feed, so the tickets are in the pending output as soon as the handshake is done, and
 * ws_ktls_offload() refuses while any ciphertext is pending. rec_seq is read after them
 * (tests/test_ktls.c checks the TLS 1.3 write sequence is 1 right after the handshake and
 * that the client accepts the kernel-style records that follow). Turning tickets off per
 * connection is not an option with this BoringSSL: it has SSL_CTX_set_num_tickets but no
 * SSL_set_num_tickets; a context can set ws_tls_config_t.num_tickets = 0 instead.
 *
 * What is verified where: the derivation is proven by tests/test_ktls.c against OpenSSL's
 * s_client, by encrypting and decrypting records by hand exactly as the kernel does. */

#ifndef URINGWS_KEYS_H
#define URINGWS_KEYS_H

#include <linux/tls.h>
#include <stddef.h>
#include <stdint.h>

#include "uringws/common.h"
#include "uringws/tls.h" /* WS_TLS_TX, WS_TLS_RX */

typedef struct ssl_ctx_st SSL_CTX;
typedef struct env_md_st EVP_MD;

/* Room for any crypto_info built here; info.cipher_type says which member is valid. */
typedef union ws_keys_crypto_info {
    struct tls_crypto_info info;
    struct tls12_crypto_info_aes_gcm_128 aes_gcm_128;
    struct tls12_crypto_info_aes_gcm_256 aes_gcm_256;
    struct tls12_crypto_info_chacha20_poly1305 chacha20_poly1305;
} ws_keys_crypto_info_t;

/* Prepares a context for hand-offs: installs the keylog callback that keeps the TLS 1.3
 * application traffic secrets of each session (freed and wiped with the session or by
 * ws_keys_forget()) and the message callback that notices TLS 1.3 KeyUpdates (after one,
 * the captured secrets are stale). Called by ws_tls_ctx_new() when cfg.ktls is set.
 * Returns 0 or -ENOMEM. */
int ws_keys_ctx_init(SSL_CTX *ctx);

/* Builds the crypto_info for one direction (WS_TLS_TX: what the server writes, WS_TLS_RX:
 * what it reads) of an established server session (the roles are fixed: TX uses the
 * server's keys); *out_len receives the size to pass to
 * setsockopt. The caller wipes it with ws_keys_wipe(). Returns 0, -EINVAL (handshake not
 * done, bad dir), -EOPNOTSUPP (version or cipher the kernel module does not take), -ENOKEY
 * (TLS 1.3 secret not captured: context without ktls), -ESTALE (a KeyUpdate happened since
 * the handshake), -EIO (key derivation failed). */
int ws_keys_crypto_info(SSL *ssl, unsigned dir, ws_keys_crypto_info_t *out,
                        size_t *out_len) WS_WARN_UNUSED;
void ws_keys_wipe(ws_keys_crypto_info_t *ci);

/* The TLS 1.3 server application traffic secret captured for ssl (what TX keys derive
 * from), for userspace sealing that must follow KeyUpdates. Returns 0, -ENOKEY (not captured,
 * TLS 1.2) or -ESTALE (a KeyUpdate happened). The caller wipes out. */
int ws_keys_tx_secret(SSL *ssl, uint8_t out[64], size_t *out_len) WS_WARN_UNUSED;

/* HKDF-Expand-Label(secret, label, "", out_len) of RFC 8446 7.1 with md (an EVP_MD). */
int ws_keys_hkdf_expand_label(uint8_t *out, size_t out_len, const EVP_MD *md, const uint8_t *secret,
                              size_t secret_len, const char *label) WS_WARN_UNUSED;

/* Forgets (wipes) the TLS 1.3 secrets captured for ssl, for a session that will not be
 * handed off. */
void ws_keys_forget(SSL *ssl);

#endif
