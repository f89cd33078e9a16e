/* One BoringSSL server session: its lifecycle, the record scanner in front of BoringSSL,
 * the handshake and the reads that ws_tls_feed() drives, close_notify, and the state the
 * engine and the kTLS hand-off ask about. Ciphertext is read straight from the caller's
 * receive buffer during ws_tls_feed() through the BIO (bio.c), and ciphertext written by
 * BoringSSL lands in a list of chunks that never move (out.c), so the engine can gather all
 * of it into one send while it keeps writing (write.c). No socket calls here, no blocking,
 * no per-connection buffer at idle. This unit is the top of tls/ (tls_internal.h lists the
 * layers): nothing below calls into it.
 *
 * Idle cost per connection (measured in tests/test_tls.c with mallinfo2, printed there): the
 * SSL object and its established session state (read/write AEAD contexts, SSL_SESSION) plus
 * the session struct. BoringSSL frees its record buffers whenever they are empty, which is
 * why its SSL_MODE_RELEASE_BUFFERS is defined as 0: there is nothing to switch on. We add
 * nothing while idle: pending-output chunks are freed as soon as they are sent, and the
 * handshake configuration (certificate references, cipher lists) is shed once the handshake
 * ends. */
#include <errno.h>
#include <stdlib.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tls_internal.h"

/* Largest record body we accept from a peer. RFC 8446 5.2 caps TLS 1.3 ciphertext at
 * 2^14 + 256. TLS 1.2 would allow 2^14 + 2048, but only for CBC padding and compression,
 * neither of which we negotiate: with AEAD suites a legitimate 1.2 record is at most
 * 2^14 + 8 (explicit nonce) + 16 (tag). So one ceiling serves both versions, and it is
 * checked on the header, before BoringSSL buffers the body. */
#define WS_TLS_MAX_RECORD_BODY (WS_TLS_MAX_PLAIN + 256u)

enum {
    WS_TLS_CT_CHANGE_CIPHER_SPEC = 20,
    WS_TLS_CT_ALERT = 21,
    WS_TLS_CT_HANDSHAKE = 22,
    WS_TLS_CT_APPLICATION_DATA = 23,
};

/* ---- record scanner ---- */

/* Walks the record headers of the incoming stream before BoringSSL sees the bytes. It
 * names the failures BoringSSL would report vaguely or late: bytes that are not TLS at all
 * (plain HTTP to the TLS port), and records longer than any legitimate one, refused on the
 * header instead of after buffering up to 16 KiB of body. It also knows when the stream sits
 * on a record boundary, which the kTLS RX hand-off needs. An SSLv2-format ClientHello (first
 * byte 0x80) counts as garbage: no client able to negotiate TLS 1.2 or later sends one. */
static int scan_records(ws_tls_conn_t *c, const uint8_t *p, size_t n, uint8_t *alert)
{
    size_t i = 0;
    while (i < n) {
        if (c->body_left > 0) {
            size_t k = n - i < c->body_left ? n - i : c->body_left;
            c->body_left -= (uint32_t)k;
            i += k;
            continue;
        }
        c->hdr[c->hdr_have++] = p[i++];
        if (c->hdr_have < sizeof(c->hdr))
            continue;
        c->hdr_have = 0;
        uint8_t type = c->hdr[0];
        uint32_t len = (uint32_t)c->hdr[3] << 8 | c->hdr[4];
        if (!(c->flags & WS_TLS_F_SEEN_RECORD)) {
            /* A ClientHello record: type handshake, legacy version 3.x. */
            if (type != WS_TLS_CT_HANDSHAKE || c->hdr[1] != 3) {
                *alert = 0;
                return ws__tls_error_set(c, WS_TLS_ERR_GARBAGE,
                                         "first bytes are not a TLS handshake record");
            }
            c->flags |= WS_TLS_F_SEEN_RECORD;
        }
        if (type < WS_TLS_CT_CHANGE_CIPHER_SPEC || type > WS_TLS_CT_APPLICATION_DATA ||
            c->hdr[1] != 3) {
            *alert = SSL_AD_UNEXPECTED_MESSAGE;
            return ws__tls_error_set(c, WS_TLS_ERR_BAD_RECORD, "record of unknown type or version");
        }
        if (len > WS_TLS_MAX_RECORD_BODY) {
            *alert = SSL_AD_RECORD_OVERFLOW;
            return ws__tls_error_set(c, WS_TLS_ERR_OVERSIZE, "record length over 2^14+256");
        }
        c->body_left = len;
    }
    return 0;
}

/* ---- connection ---- */

ws_tls_conn_t *ws_tls_conn_new(ws_tls_ctx_t *ctx)
{
    ws_tls_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->max_out_bytes = ctx->max_out_bytes;
    c->next_chunk = WS_TLS_CHUNK_MIN;
    c->ssl = SSL_new(ctx->ssl_ctx);
    if (c->ssl == NULL)
        goto err;
    BIO *bio = BIO_new(ctx->bio_method);
    if (bio == NULL)
        goto err;
    BIO_set_data(bio, c);
    BIO_set_init(bio, 1);
    SSL_set_bio(c->ssl, bio, bio); /* one BIO for both directions; the SSL owns it */
    SSL_set_accept_state(c->ssl);
    /* Nothing needs the handshake configuration afterwards (renegotiation is refused), so
     * let BoringSSL free it when the handshake ends. */
    SSL_set_shed_handshake_config(c->ssl, 1);
    return c;
err:
    SSL_free(c->ssl);
    free(c);
    ERR_clear_error();
    return NULL;
}

void ws_tls_conn_free(ws_tls_conn_t *c)
{
    if (c == NULL)
        return;
    SSL_free(c->ssl); /* wipes its keys; the kTLS ex_data destructor wipes captured secrets */
#ifdef WS_WITH_KTLS
    if (c->tx != NULL) {
        ws_tls_rec_cleanup(c->tx);
        free(c->tx);
    }
#endif
    ws__tls_out_free(c);
    free(c);
}

/* Runs the handshake and then reads records until BoringSSL wants more input. BoringSSL
 * reads exactly the bytes of the record it is working on (no read-ahead), so when it asks
 * for more, all of c->in has been consumed: either processed or kept inside BoringSSL as the
 * start of an incomplete record. */
static int drive(ws_tls_conn_t *c, ws_tls_plain_fn on_plain, void *arg)
{
    if (!(c->flags & WS_TLS_F_HANDSHAKE_DONE)) {
        int r = SSL_do_handshake(c->ssl);
        if (r != 1) {
            int e = SSL_get_error(c->ssl, r);
            return e == SSL_ERROR_WANT_READ ? 0 : ws__tls_error_ssl(c, e);
        }
        c->flags |= WS_TLS_F_HANDSHAKE_DONE;
    }
    uint8_t buf[WS_TLS_MAX_PLAIN];
    for (;;) {
        int r = SSL_read(c->ssl, buf, sizeof(buf));
        if (r > 0) {
            if (on_plain(arg, buf, (size_t)r) != 0)
                return -ECANCELED;
            if (c->flags & WS_TLS_F_FAILED)
                return -EPROTO; /* on_plain wrote and that failed */
            continue;
        }
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ)
            return ws__tls_write_flush(c);
        if (e == SSL_ERROR_ZERO_RETURN) {
            c->flags |= WS_TLS_F_PEER_CLOSED;
            return 1;
        }
        return ws__tls_error_ssl(c, e);
    }
}

int ws_tls_feed(ws_tls_conn_t *c, const uint8_t *p, size_t n, ws_tls_plain_fn on_plain, void *arg)
{
    if (c->flags & WS_TLS_F_FAILED)
        return -EPROTO;
    if (c->flags & WS_TLS_F_RX_OFFLOADED)
        return -EOPNOTSUPP;
    if (c->flags & WS_TLS_F_PEER_CLOSED)
        return 1;
    uint8_t alert = 0;
    if (scan_records(c, p, n, &alert) != 0) {
        /* Tell a TLS peer why (plaintext before the handshake, encrypted after); bytes that
         * are not TLS at all get no answer. */
        if (alert != 0) {
            ERR_clear_error();
            SSL_send_fatal_alert(c->ssl, alert);
            ERR_clear_error();
        }
        return -EPROTO;
    }
    ERR_clear_error(); /* SSL_get_error() reads the thread's queue: start it empty */
    c->in = p;
    c->in_len = n;
    int r = drive(c, on_plain, arg);
    c->in = NULL;
    c->in_len = 0;
    return r;
}

int ws_tls_feed_eof(ws_tls_conn_t *c)
{
    if (c->flags & WS_TLS_F_FAILED)
        return -EPROTO;
    if (c->flags & WS_TLS_F_PEER_CLOSED)
        return 0;
    /* A connect-then-close (health checks, port scanners) sent nothing: not a TLS error. */
    if (!(c->flags & WS_TLS_F_SEEN_RECORD) && c->hdr_have == 0) {
        c->flags |= WS_TLS_F_PEER_CLOSED;
        return 0;
    }
    if (!(c->flags & WS_TLS_F_HANDSHAKE_DONE))
        return ws__tls_error_set(c, WS_TLS_ERR_TRUNCATED, "EOF before the TLS handshake finished");
    if (c->hdr_have != 0 || c->body_left != 0)
        return ws__tls_error_set(c, WS_TLS_ERR_TRUNCATED, "EOF inside a TLS record");
    c->flags |= WS_TLS_F_PEER_CLOSED;
    return 0;
}

int ws_tls_shutdown(ws_tls_conn_t *c)
{
    if (c->flags & WS_TLS_F_FAILED)
        return -EPROTO;
    if (!(c->flags & WS_TLS_F_HANDSHAKE_DONE))
        return -ENOTCONN;
    if (c->flags & WS_TLS_F_TX_OFFLOADED)
        return -EOPNOTSUPP;
    if (c->flags & WS_TLS_F_SENT_CLOSE)
        return 0;
    ERR_clear_error();
    int r = SSL_shutdown(c->ssl); /* 0: close_notify queued, 1: both sides closed */
    if (r < 0)
        return ws__tls_error_ssl(c, SSL_get_error(c->ssl, r));
    c->flags |= WS_TLS_F_SENT_CLOSE;
    return 0;
}

/* ---- state ---- */

bool ws_tls_handshake_done(const ws_tls_conn_t *c)
{
    return c->flags & WS_TLS_F_HANDSHAKE_DONE;
}

uint16_t ws_tls_version(const ws_tls_conn_t *c)
{
    return ws_tls_handshake_done(c) ? (uint16_t)SSL_version(c->ssl) : 0;
}

const char *ws_tls_version_name(const ws_tls_conn_t *c)
{
    return ws_tls_handshake_done(c) ? SSL_get_version(c->ssl) : "";
}

const char *ws_tls_cipher_name(const ws_tls_conn_t *c)
{
    const SSL_CIPHER *cipher = ws_tls_handshake_done(c) ? SSL_get_current_cipher(c->ssl) : NULL;
    return cipher != NULL ? SSL_CIPHER_standard_name(cipher) : "";
}

ws_slice_t ws_tls_alpn(const ws_tls_conn_t *c)
{
    const uint8_t *p = NULL;
    unsigned len = 0;
    SSL_get0_alpn_selected(c->ssl, &p, &len);
    return ws_slice(p, p != NULL ? len : 0);
}

SSL *ws_tls_ssl(ws_tls_conn_t *c)
{
    return c->ssl;
}

bool ws_tls_at_record_boundary(const ws_tls_conn_t *c)
{
    return c->hdr_have == 0 && c->body_left == 0 && !SSL_has_pending(c->ssl);
}

void ws_tls_set_offloaded(ws_tls_conn_t *c, unsigned dirs)
{
    if (dirs & WS_TLS_TX)
        c->flags |= WS_TLS_F_TX_OFFLOADED;
    if (dirs & WS_TLS_RX)
        c->flags |= WS_TLS_F_RX_OFFLOADED;
}

unsigned ws_tls_offloaded(const ws_tls_conn_t *c)
{
    return (c->flags & WS_TLS_F_TX_OFFLOADED ? WS_TLS_TX : 0u) |
           (c->flags & WS_TLS_F_RX_OFFLOADED ? WS_TLS_RX : 0u);
}
