/* Userspace TLS server sessions over BoringSSL, independent of any transport: ciphertext goes
 * in as byte slices, plaintext comes out through a callback, plaintext goes in and ciphertext
 * comes out as iovecs for one gathered send. This module never touches a socket, never
 * blocks and never allocates per byte of traffic beyond the pending-output chunks.
 *
 * How the engine drives one connection (one thread owns a connection; a context may be
 * shared by every thread):
 *
 *   recv CQE with n bytes      -> ws_tls_feed(c, buf, n, on_plain, arg)
 *                                 (every byte is consumed before it returns: the ring buffer
 *                                 can go back at once; plaintext is handed to on_plain)
 *   frames to send             -> ws_tls_write()/ws_tls_writev(), as many as you like
 *   once per loop iteration    -> if ws_tls_out_bytes(c): ws_tls_pending_out(c, iov, n)
 *                                 and one sendmsg with those iovecs
 *   send CQE with res bytes    -> ws_tls_consume_out(c, res), resubmit the rest if short
 *   peer FIN (recv res == 0)   -> ws_tls_feed_eof(c)
 *   closing                    -> ws_tls_shutdown(c) (queues close_notify), send, close
 *
 * Every call that may produce ciphertext (feed: handshake flights, alerts, key updates;
 * write; shutdown) leaves it in the pending output, so the rule is simply "after calls into
 * this module, if ws_tls_out_bytes() != 0 and no send is in flight, send".
 *
 * Errors: functions return 0 (or a documented positive value) or -errno. A TLS failure is
 * -EPROTO and leaves a category (ws_tls_error(), for a per-category counter) and a reason
 * string for one log line; a fatal alert for the peer may then be pending: send it if that
 * is cheap, then close. After an error every further call fails with -EPROTO. */
#ifndef URINGWS_TLS_H
#define URINGWS_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "uringws/common.h"

typedef struct ws_tls_ctx ws_tls_ctx_t;
typedef struct ws_tls_conn ws_tls_conn_t;
typedef struct ssl_st SSL; /* BoringSSL's SSL, for the kTLS module */

/* Protocol versions, as on the wire. */
enum {
    WS_TLS_V1_2 = 0x0303,
    WS_TLS_V1_3 = 0x0304,
};

/* Directions of a session, as bits: which halves were handed to kernel TLS. */
enum {
    WS_TLS_TX = 1u << 0,
    WS_TLS_RX = 1u << 1,
};

/* TLS 1.2 suites offered by default: ECDHE with AES-GCM or ChaCha20-Poly1305 only (every one
 * of them can be handed to kTLS). The bracketed groups are equal-preference: the client picks
 * between AES-128-GCM and ChaCha20 (phones without AES instructions prefer ChaCha20), and
 * the server's order decides the rest. TLS 1.3 suites are fixed by BoringSSL: AES-128-GCM,
 * AES-256-GCM, ChaCha20-Poly1305. */
#define WS_TLS_DEFAULT_CIPHERS12                                                                   \
    "[ECDHE-ECDSA-AES128-GCM-SHA256|ECDHE-ECDSA-CHACHA20-POLY1305]:"                               \
    "[ECDHE-RSA-AES128-GCM-SHA256|ECDHE-RSA-CHACHA20-POLY1305]:"                                   \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384"

/* Context configuration; ws_tls_config_init() sets the defaults written beside each field. */
typedef struct ws_tls_config {
    const char *cert_file; /* PEM chain, leaf first then intermediates (required) */
    const char *key_file;  /* PEM private key, RSA or ECDSA, matching the leaf (required) */
    uint16_t min_version;  /* WS_TLS_V1_2 (default) or WS_TLS_V1_3; the maximum is 1.3 */
    const char *ciphers12; /* TLS 1.2 cipher list in BoringSSL syntax; default
                              WS_TLS_DEFAULT_CIPHERS12. Unknown names are an error. */
    unsigned num_tickets;  /* session tickets per handshake (stateless resumption, both
                              versions); default 2, 0 disables tickets. There is no server
                              session cache: it would grow with the client count. */
    bool ktls;             /* the kTLS hand-off may be used; default false. With kTLS built
                              in, every context captures what the hand-off and
                              ws_tls_own_tx() need (TLS 1.3 traffic secrets, key updates):
                              one small allocation per TLS 1.3 handshake until the hand-off,
                              ws_tls_own_tx() or the end of the connection. */
    size_t max_out_bytes;  /* cap on pending ciphertext per connection; a write past it fails
                              with -ENOBUFS (treat as a slow consumer); default 4 MiB */
} ws_tls_config_t;

/* Why a session failed: one counter per value. */
typedef enum ws_tls_err {
    WS_TLS_ERR_NONE = 0,
    WS_TLS_ERR_GARBAGE,       /* the first bytes are not a TLS handshake record (plain HTTP on
                                 the TLS port, a scanner, random bytes) */
    WS_TLS_ERR_BAD_RECORD,    /* malformed record, failed authentication (bad tag), record of
                                 a type not allowed at that point */
    WS_TLS_ERR_OVERSIZE,      /* record length over 2^14 + 256 (or plaintext over 2^14) */
    WS_TLS_ERR_HANDSHAKE,     /* handshake failed: no common version, cipher or ALPN
                                 protocol, malformed handshake message, bad Finished */
    WS_TLS_ERR_RENEGOTIATION, /* a TLS 1.2 client tried to renegotiate: always refused */
    WS_TLS_ERR_PEER_ALERT,    /* the peer sent a fatal alert (e.g. it rejected our cert) */
    WS_TLS_ERR_TRUNCATED,     /* EOF inside a record or before the handshake finished */
    WS_TLS_ERR_PROTOCOL,      /* other violation after the handshake (unexpected message) */
    WS_TLS_ERR_OFFLOADED,     /* BoringSSL had to write after TX moved to kTLS (the peer
                                 asked for a TLS 1.3 key update); the connection must end */
    WS_TLS_ERR_INTERNAL,      /* allocation failure or library error */
    WS_TLS_ERR__COUNT
} ws_tls_err_t;

/* Plaintext sink for ws_tls_feed(): called with each decrypted slice (at most 16 KiB, one
 * record), valid only during the call. The slice is the session's own scratch memory, so the
 * sink may modify it in place (the WebSocket parser unmasks there: no copy). Return 0 to go
 * on; any other value stops the feed,
 * which then returns -ECANCELED and drops the rest of its input (the caller is closing).
 * It may call ws_tls_write(), ws_tls_writev() and ws_tls_shutdown() on the same session
 * (a pong, an echo, a close), but not ws_tls_feed() or ws_tls_conn_free(). */
typedef int (*ws_tls_plain_fn)(void *arg, uint8_t *p, size_t n);

void ws_tls_config_init(ws_tls_config_t *cfg);

/* Creates a context: loads and checks the certificate chain and key. Returns 0, or -ENOENT /
 * -EACCES (a file cannot be opened), -EINVAL (bad PEM, key does not match the certificate,
 * bad cipher list or version), -ENOMEM; err (when not NULL) receives a one-line message. */
int ws_tls_ctx_new(const ws_tls_config_t *cfg, ws_tls_ctx_t **out, char *err,
                   size_t errlen) WS_WARN_UNUSED;
void ws_tls_ctx_free(ws_tls_ctx_t *ctx);

/* A new server session (the handshake starts with the first ws_tls_feed()). NULL when out of
 * memory. The connection holds a reference on the context. */
ws_tls_conn_t *ws_tls_conn_new(ws_tls_ctx_t *ctx) WS_WARN_UNUSED;
/* Frees the session, its pending output and wipes its keys. Pointers returned by
 * ws_tls_pending_out() die with it: no send may be in flight. */
void ws_tls_conn_free(ws_tls_conn_t *c);

/* Hands n bytes of ciphertext received from the peer to the session. Runs the handshake and
 * decrypts application data, calling on_plain for each plaintext slice. Never keeps a
 * pointer into p. Returns:
 *   0           all input consumed; the session is open (handshake maybe not done yet)
 *   1           the peer sent close_notify: bytes after it are ignored; answer with
 *               ws_tls_shutdown() and close
 *  -EPROTO      TLS failure, see ws_tls_error()
 *  -ECANCELED   on_plain returned non-zero
 *  -EOPNOTSUPP  RX was handed to the kernel (kTLS): ciphertext no longer comes through here */
int ws_tls_feed(ws_tls_conn_t *c, const uint8_t *p, size_t n, ws_tls_plain_fn on_plain,
                void *arg) WS_WARN_UNUSED;

/* The peer closed its side of the TCP stream. Returns 0 when that is an orderly end (after
 * close_notify, or between records of an established session: many clients close without
 * close_notify), -EPROTO with WS_TLS_ERR_TRUNCATED when it cut a record or the handshake. */
int ws_tls_feed_eof(ws_tls_conn_t *c) WS_WARN_UNUSED;

/* Encrypts n bytes of plaintext into the pending output: one record per 16 KiB, records
 * appended after whatever is already pending. Returns 0, -ENOTCONN before the handshake is
 * done, -EPIPE after shutdown, -ENOBUFS when max_out_bytes would be exceeded (nothing was
 * written), -EOPNOTSUPP when TX belongs to kTLS (send plaintext on the socket), -EPROTO. */
int ws_tls_write(ws_tls_conn_t *c, const void *p, size_t n) WS_WARN_UNUSED;
/* Like ws_tls_write() for the concatenation of iov[0..cnt), packed into as few records as
 * possible (up to 16 KiB of plaintext each): many small frames cost one record, not one
 * record each. Pieces of 16 KiB and more are encrypted from the caller's memory directly. */
int ws_tls_writev(ws_tls_conn_t *c, const struct iovec *iov, int cnt) WS_WARN_UNUSED;

/* Pending ciphertext, oldest first: fills up to max iovecs and returns how many (0 when
 * nothing is pending). The memory stays valid and unmoved until ws_tls_consume_out() covers
 * it, whatever is written meanwhile: hand it to an io_uring send and keep writing. */
int ws_tls_pending_out(const ws_tls_conn_t *c, struct iovec *iov, int max);
/* Bytes of pending ciphertext. */
size_t ws_tls_out_bytes(const ws_tls_conn_t *c);
/* Marks the first n pending bytes as sent (n <= ws_tls_out_bytes()); frees drained chunks. */
void ws_tls_consume_out(ws_tls_conn_t *c, size_t n);

/* Queues close_notify (once). Returns 0, -ENOTCONN when the handshake never finished (just
 * close the socket), -EOPNOTSUPP when TX belongs to kTLS (use ws_ktls_send_close_notify()),
 * -EPROTO after a failure. */
int ws_tls_shutdown(ws_tls_conn_t *c);

bool ws_tls_handshake_done(const ws_tls_conn_t *c);
/* WS_TLS_V1_2 / WS_TLS_V1_3 once negotiated, else 0. */
uint16_t ws_tls_version(const ws_tls_conn_t *c);
/* "TLSv1.3" etc., or "" before the handshake. */
const char *ws_tls_version_name(const ws_tls_conn_t *c);
/* Standard (IANA) name, e.g. "TLS_AES_128_GCM_SHA256", or "" before the handshake. */
const char *ws_tls_cipher_name(const ws_tls_conn_t *c);
/* The ALPN protocol chosen ("http/1.1"), empty when the client offered none. */
ws_slice_t ws_tls_alpn(const ws_tls_conn_t *c);
/* Why the session failed (WS_TLS_ERR_NONE if it did not); *reason (when not NULL) gets a
 * static string for a log line, e.g. "NO_RENEGOTIATION" or "record length over 2^14+256". */
ws_tls_err_t ws_tls_error(const ws_tls_conn_t *c, const char **reason);
/* Short stable name of a category for metrics labels ("garbage", "bad_record", ...). */
const char *ws_tls_err_name(ws_tls_err_t e);

/* For the kTLS module: the BoringSSL session, and the hand-off bookkeeping. */
SSL *ws_tls_ssl(ws_tls_conn_t *c);
/* True when no partial record is buffered, i.e. the next byte on the socket starts a record:
 * the condition for handing RX to the kernel. */
bool ws_tls_at_record_boundary(const ws_tls_conn_t *c);
#ifdef WS_WITH_KTLS
/* Takes the write half over from BoringSSL: from here on ws_tls_write()/ws_tls_writev() seal
 * records in place in the pending output (one copy of the plaintext, no SSL_write buffer),
 * continuing BoringSSL's sequence with the keys the kTLS derivation produces; records
 * BoringSSL still writes itself (alerts, close_notify, a TLS 1.3 KeyUpdate answering the
 * peer) are resealed with our sequence, and a KeyUpdate moves our keys on as RFC 8446 4.6.3
 * says. For sessions that stay in userspace: after it, ws_ktls_offload() refuses. Returns 0
 * (also when already done), -ENOTCONN (handshake not done), -EALREADY (TX offloaded or
 * close_notify sent), -EPROTO (failed session), -ENOMEM, or an error of
 * ws_keys_crypto_info() (-ESTALE after a KeyUpdate, -EOPNOTSUPP): the session then simply
 * keeps SSL_write. */
int ws_tls_own_tx(ws_tls_conn_t *c) WS_WARN_UNUSED;
bool ws_tls_tx_owned(const ws_tls_conn_t *c);
#endif

/* Records that TX and/or RX (WS_TLS_TX/WS_TLS_RX bits) now belong to the kernel: BoringSSL
 * must never write (TX) or read (RX) a record again on this session. */
void ws_tls_set_offloaded(ws_tls_conn_t *c, unsigned dirs);
unsigned ws_tls_offloaded(const ws_tls_conn_t *c);

#endif
