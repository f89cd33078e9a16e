/* Kernel TLS hand-off: builds the kernel's crypto_info (key, salt, IV, record sequence) for
 * TX and RX from an established BoringSSL server session, installs it on the socket, and
 * probes whether this kernel has kTLS at all. Policy (--ktls auto|off|require, the log line,
 * the metric) belongs to the engine; this module never does record I/O on its own beyond
 * the close_notify helper.
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
 * s_client, by encrypting and decrypting records by hand exactly as net/tls does. The
 * setsockopt path itself only runs on a kernel with kTLS (not the build machine's). */
#ifndef URINGWS_KTLS_H
#define URINGWS_KTLS_H

#include <linux/tls.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "uringws/common.h"
#include "uringws/tls.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct env_md_st EVP_MD;

/* Room for any crypto_info built here; info.cipher_type says which member is valid. */
typedef union ws_ktls_crypto_info {
    struct tls_crypto_info info;
    struct tls12_crypto_info_aes_gcm_128 aes_gcm_128;
    struct tls12_crypto_info_aes_gcm_256 aes_gcm_256;
    struct tls12_crypto_info_chacha20_poly1305 chacha20_poly1305;
} ws_ktls_crypto_info_t;

/* Prepares a context for hand-offs: installs the keylog callback that keeps the TLS 1.3
 * application traffic secrets of each session (freed and wiped with the session or by
 * ws_ktls_forget()) and the message callback that notices TLS 1.3 KeyUpdates (after one,
 * the captured secrets are stale). Called by ws_tls_ctx_new() when cfg.ktls is set.
 * Returns 0 or -ENOMEM. */
int ws_ktls_ctx_init(SSL_CTX *ctx);

/* Builds the crypto_info for one direction (WS_TLS_TX: what the server writes, WS_TLS_RX:
 * what it reads) of an established server session (the roles are fixed: TX uses the
 * server's keys); *out_len receives the size to pass to
 * setsockopt. The caller wipes it with ws_ktls_wipe(). Returns 0, -EINVAL (handshake not
 * done, bad dir), -EOPNOTSUPP (version or cipher the kernel module does not take), -ENOKEY
 * (TLS 1.3 secret not captured: context without ktls), -ESTALE (a KeyUpdate happened since
 * the handshake), -EIO (key derivation failed). */
int ws_ktls_crypto_info(SSL *ssl, unsigned dir, ws_ktls_crypto_info_t *out,
                        size_t *out_len) WS_WARN_UNUSED;
void ws_ktls_wipe(ws_ktls_crypto_info_t *ci);

/* Attaches the "tls" ULP to the connected TCP socket fd and installs TX then RX (the bits in
 * dirs). Returns the mask of directions now in the kernel (TX may succeed and RX fail on
 * kernels without RX for that cipher: the caller keeps RX in userspace), or -errno when
 * nothing was enabled: -ENOENT (no tls module, as on the build machine), -ENOPROTOOPT,
 * -EOPNOTSUPP, -EEXIST (a ULP is already attached), or an error of ws_ktls_crypto_info().
 * When TCP_ULP succeeds but TLS_TX fails, the socket stays a plain TCP socket (the ULP's
 * base mode passes data through) and userspace TLS can go on. Key material is wiped before
 * returning; the captured secrets are forgotten once the socket was tried. The caller must
 * have sent every byte BoringSSL produced and, for RX, fed every byte received. */
int ws_ktls_enable(int fd, SSL *ssl, unsigned dirs) WS_WARN_UNUSED;

/* ws_ktls_enable() for a ws_tls session, with its preconditions checked: handshake done
 * (-ENOTCONN), no pending ciphertext (-EBUSY: send it first), not already handed off
 * (-EALREADY). RX is left out (and stays in userspace) unless the session is on a record
 * boundary. On success marks the session (ws_tls_set_offloaded) so BoringSSL never writes
 * or reads the handed-off directions again, and returns the mask. */
int ws_ktls_offload(ws_tls_conn_t *c, int fd, unsigned dirs) WS_WARN_UNUSED;

/* The TLS 1.3 server application traffic secret captured for ssl (what TX keys derive
 * from), for userspace sealing that must follow KeyUpdates. Returns 0, -ENOKEY (not captured,
 * TLS 1.2) or -ESTALE (a KeyUpdate happened). The caller wipes out. */
int ws_ktls_tx_secret(SSL *ssl, uint8_t out[64], size_t *out_len) WS_WARN_UNUSED;

/* HKDF-Expand-Label(secret, label, "", out_len) of RFC 8446 7.1 with md (an EVP_MD). */
int ws_ktls_hkdf_expand_label(uint8_t *out, size_t out_len, const EVP_MD *md, const uint8_t *secret,
                              size_t secret_len, const char *label) WS_WARN_UNUSED;

/* Forgets (wipes) the TLS 1.3 secrets captured for ssl, for a session that will not be
 * handed off. */
void ws_ktls_forget(SSL *ssl);

/* Whether the kernel accepts TCP_ULP "tls": tried once on a throwaway connected loopback
 * pair, then cached. Returns 0 when supported, else -errno (-ENOENT on the build machine).
 * Socket failures before the probe itself (no loopback, EMFILE) are returned uncached.
 * Success does not promise every cipher: ws_ktls_enable() can still refuse one. */
int ws_ktls_probe(void);
bool ws_ktls_supported(void);

/* The AEAD suites the server offers (TLS 1.2 and 1.3 x AES-128-GCM, AES-256-GCM,
 * ChaCha20-Poly1305), in the kernel's names. */
#define WS_KTLS_NSUITES 6
typedef struct ws_ktls_suite {
    uint16_t version; /* TLS_1_2_VERSION, TLS_1_3_VERSION */
    uint16_t cipher;  /* TLS_CIPHER_* */
    const char *name; /* "TLS 1.3 AES-128-GCM" */
} ws_ktls_suite_t;
extern const ws_ktls_suite_t ws_ktls_suites[WS_KTLS_NSUITES];

/* What the kernel takes, found by real hand-offs: for each suite a fresh loopback pair gets
 * TCP_ULP "tls", then TLS_TX and TLS_RX with zero keys, so the kernel must have (or load)
 * the cipher's crypto modules; a kernel with only tls.ko refuses here, not per session. */
typedef struct ws_ktls_support {
    int ulp;                 /* ws_ktls_probe(): 0 or -errno */
    int tx[WS_KTLS_NSUITES]; /* 0 or -errno of TLS_TX for ws_ktls_suites[i] */
    int rx[WS_KTLS_NSUITES]; /* 0 or -errno of TLS_RX */
} ws_ktls_support_t;
/* Fills out; returns 0, or -errno when the probe could not run or TCP_ULP is refused
 * (out->ulp). Not cached: the server calls it once at start. */
int ws_ktls_probe_suites(ws_ktls_support_t *out) WS_WARN_UNUSED;

/* With TX in the kernel: sends close_notify as a TLS alert record (type 21). 0 or -errno. */
int ws_ktls_send_close_notify(int fd);

/* With RX in the kernel: the TLS record type of what recvmsg() returned (23 application
 * data, 21 alert, 22 handshake), from the TLS_GET_RECORD_TYPE control message; -ENOENT
 * when there is none. Any type but 23 means: close the connection (a KeyUpdate cannot be
 * followed in the kernel on every version, an alert ends the session anyway). */
int ws_ktls_record_type(const struct msghdr *msg);

#endif
