/* What the translation units of the userspace TLS session share: the context and session
 * structs and the few calls between the units. The units, lowest layer first (each calls
 * only the ones before it, never back up; scripts/layers.sh checks this):
 *
 *   error.c  failure categories: the first failure of a session, BoringSSL's queue mapped
 *   out.c    pending ciphertext: chunks that never move, a per-thread chunk pool
 *   bio.c    the BIO between BoringSSL and a session's bytes (reads c->in, writes to out.c)
 *   write.c  plaintext in: SSL_write, or records sealed in place after ws_tls_own_tx()
 *   ctx.c    configuration, certificate and key loading, ALPN: the shared SSL_CTX
 *   tls.c    one session: lifecycle, record scanner, handshake and reads, shutdown, state
 *
 * Nothing here is API: code outside tls/ uses uringws/tls.h. */
#ifndef URINGWS_TLS_INTERNAL_H
#define URINGWS_TLS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/base.h>

#include "uringws/tls.h"

#ifdef WS_WITH_KTLS
#include "record.h"
#endif

/* Largest plaintext per record (RFC 8446 5.1, RFC 5246 6.2.1). */
#define WS_TLS_MAX_PLAIN 16384u
/* Pending-output chunk sizes: small first (most connections have a few small frames
 * pending), doubling while output keeps piling up, back to small once drained. The sizes
 * include the chunk header so allocations land on round malloc sizes. */
#define WS_TLS_CHUNK_MIN 512u
#define WS_TLS_CHUNK_MAX (64u * 1024u)

/* Shared by every thread; freed by ws_tls_ctx_free(). Sessions hold their own reference on
 * the SSL_CTX, so they may outlive this struct. */
struct ws_tls_ctx {
    SSL_CTX *ssl_ctx;
    const BIO_METHOD *bio_method; /* bio.c's, for every session of this context */
    size_t max_out_bytes;
};

struct ws_tls_chunk; /* out.c */

/* Flags owned by ws_tls_conn. */
enum {
    WS_TLS_F_HANDSHAKE_DONE = 1u << 0,
    WS_TLS_F_SEEN_RECORD = 1u << 1, /* a valid first record header arrived */
    WS_TLS_F_PEER_CLOSED = 1u << 2, /* close_notify or orderly EOF */
    WS_TLS_F_SENT_CLOSE = 1u << 3,
    WS_TLS_F_FAILED = 1u << 4,
    WS_TLS_F_TX_OFFLOADED = 1u << 5,
    WS_TLS_F_RX_OFFLOADED = 1u << 6,
    WS_TLS_F_WRITE_REFUSED = 1u << 7, /* the BIO refused a write because TX is offloaded */
    WS_TLS_F_OOM = 1u << 8,           /* the BIO could not allocate an output chunk */
};

/* One server session. Owned by one thread (the connection's core); freed by
 * ws_tls_conn_free(). The SSL object owns the BIO, and the BIO points back here. */
struct ws_tls_conn {
    SSL *ssl;
    /* Ciphertext being fed: only non-empty during ws_tls_feed(). */
    const uint8_t *in;
    size_t in_len;
    /* Pending ciphertext, oldest first. */
    struct ws_tls_chunk *out_head, *out_tail;
    size_t out_bytes;
    size_t max_out_bytes;
    uint32_t next_chunk;
    uint32_t flags;
    /* Record scanner state: where the next record header starts in the input stream. */
    uint32_t body_left;
    uint8_t hdr[5];
    uint8_t hdr_have;
    ws_tls_err_t err;
    const char *reason;
#ifdef WS_WITH_KTLS
    /* Set by ws_tls_own_tx(): records are sealed here, not by SSL_write. bssl_seq is
     * BoringSSL's own write counter, for the records it still writes (reseal in bio_write). */
    ws_tls_rec_t *tx;
    uint64_t bssl_seq;
#endif
};

/* error.c. Both mark the session failed and return -EPROTO; only the first failure is kept
 * (later ones are its echoes). ws__tls_error_ssl() names the category from BoringSSL's error
 * queue (thread-local, emptied) and ssl_err, the SSL_get_error() value. */
int ws__tls_error_set(ws_tls_conn_t *c, ws_tls_err_t e, const char *reason);
int ws__tls_error_ssl(ws_tls_conn_t *c, int ssl_err);

/* out.c. ws__tls_out_append() copies n bytes to the end of the pending output: 0 or
 * -ENOMEM. ws__tls_out_free() gives back every chunk (the session is going away). */
int ws__tls_out_append(ws_tls_conn_t *c, const uint8_t *p, size_t n);
void ws__tls_out_free(ws_tls_conn_t *c);
#ifdef WS_WITH_KTLS
/* Contiguous room for n bytes at the end of the pending output, NULL when out of memory;
 * ws__tls_out_commit() then counts the n bytes written there as pending. */
uint8_t *ws__tls_out_reserve(ws_tls_conn_t *c, size_t n);
void ws__tls_out_commit(ws_tls_conn_t *c, size_t n);
/* Whole records BoringSSL wrote after ws_tls_own_tx(), sealed again as ours into the pending
 * output: 0, -EPROTO (not whole records, or one that does not open) or -ENOMEM. */
int ws__tls_out_reseal(ws_tls_conn_t *c, const uint8_t *p, size_t n);
#endif

/* bio.c: the session BIO method, created once per process; NULL when that failed. */
const BIO_METHOD *ws__tls_bio_method(void);

/* write.c: moves the post-handshake messages BoringSSL seals only on its next write
 * (session tickets, a KeyUpdate answer) into the pending output. 0 or -EPROTO. */
int ws__tls_write_flush(ws_tls_conn_t *c);

#endif
