/* Plaintext into a session: ws_tls_write() and ws_tls_writev() encrypt into the pending
 * output, through SSL_write, or, once ws_tls_own_tx() took the write half over from
 * BoringSSL, as records sealed in place by record.c. Also the zero-byte write that moves
 * what BoringSSL still owes the peer into the pending output. Never reads ciphertext and
 * never sends: the engine takes the output from out.c. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tls_internal.h"

#ifdef WS_WITH_KTLS
#include "uringws/keys.h"
#endif

/* Upper bound of the record overhead we produce: header 5 + explicit nonce 8 + tag 16, or
 * header 5 + content type 1 + tag 16. Used only to check max_out_bytes before writing. */
#define WS_TLS_RECORD_OVERHEAD 32u

/* BoringSSL seals some TLS 1.3 post-handshake messages only on the next write: the session
 * tickets issued at the end of the handshake, and the KeyUpdate answering a peer's request
 * ("Consumers which don't write data to the client will need to do a zero-byte write if
 * they wish to flush the tickets", ssl/tls13_server.cc). A zero-byte write moves them into
 * the pending output now, so that after every ws_tls_feed() all ciphertext BoringSSL owes
 * the peer is in our chunks. The kTLS hand-off depends on this: it requires the pending
 * output to be empty, and a ticket left inside BoringSSL would never be sent, or worse, be
 * sealed later with a sequence number the kernel already used. With nothing queued it
 * writes nothing (no empty record). With TX in the kernel the same call is how a peer's
 * KeyUpdate request is noticed: BoringSSL tries to answer it, the BIO refuses, and the
 * session fails with WS_TLS_ERR_OFFLOADED instead of silently never answering. */
int ws__tls_write_flush(ws_tls_conn_t *c)
{
    if (c->flags & WS_TLS_F_SENT_CLOSE)
        return 0;
    int r = SSL_write(c->ssl, "", 0);
    return r < 0 ? ws__tls_error_ssl(c, SSL_get_error(c->ssl, r)) : 0;
}

static int write_check(ws_tls_conn_t *c, size_t n)
{
    if (c->flags & WS_TLS_F_FAILED)
        return -EPROTO;
    if (c->flags & WS_TLS_F_TX_OFFLOADED)
        return -EOPNOTSUPP;
    if (!(c->flags & WS_TLS_F_HANDSHAKE_DONE))
        return -ENOTCONN;
    if (c->flags & WS_TLS_F_SENT_CLOSE)
        return -EPIPE;
    size_t records = n / WS_TLS_MAX_PLAIN + 1;
    if (n > c->max_out_bytes || records * WS_TLS_RECORD_OVERHEAD + n > c->max_out_bytes ||
        c->out_bytes > c->max_out_bytes - n - records * WS_TLS_RECORD_OVERHEAD)
        return -ENOBUFS;
    ERR_clear_error();
    return 0;
}

/* Encrypts p[0..n) as whole records; BoringSSL splits at 16 KiB. */
static int seal(ws_tls_conn_t *c, const uint8_t *p, size_t n)
{
    while (n > 0) {
        int k = n > (size_t)INT_MAX ? INT_MAX : (int)n;
        int r = SSL_write(c->ssl, p, k);
        if (r <= 0)
            return ws__tls_error_ssl(c, SSL_get_error(c->ssl, r));
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

#ifdef WS_WITH_KTLS
/* ws_tls_writev() after ws_tls_own_tx(): full 16 KiB records, each gathered straight from
 * the caller's pieces into its place in the pending output and encrypted there. */
static int seal_own(ws_tls_conn_t *c, const struct iovec *iov, size_t total)
{
    size_t prefix = ws_tls_rec_prefix(c->tx), overhead = ws_tls_rec_overhead(c->tx);
    int i = 0;
    size_t off = 0;
    while (total > 0) {
        size_t n = total < WS_TLS_MAX_PLAIN ? total : WS_TLS_MAX_PLAIN;
        uint8_t *rec = ws__tls_out_reserve(c, n + overhead);
        if (rec == NULL)
            return ws__tls_error_set(c, WS_TLS_ERR_INTERNAL, "out of memory for TLS output");
        for (size_t fill = 0; fill < n;) {
            size_t k = iov[i].iov_len - off;
            if (k > n - fill)
                k = n - fill;
            memcpy(rec + prefix + fill, (const uint8_t *)iov[i].iov_base + off, k);
            fill += k;
            off += k;
            if (off == iov[i].iov_len) {
                i++;
                off = 0;
            }
        }
        size_t len = ws_tls_rec_seal(c->tx, SSL3_RT_APPLICATION_DATA, rec, n);
        if (len == 0)
            return ws__tls_error_set(c, WS_TLS_ERR_INTERNAL, "record encryption failed");
        ws__tls_out_commit(c, len);
        total -= n;
    }
    return 0;
}

int ws_tls_own_tx(ws_tls_conn_t *c)
{
    if (c->tx != NULL)
        return 0;
    if (c->flags & WS_TLS_F_FAILED)
        return -EPROTO;
    if (!(c->flags & WS_TLS_F_HANDSHAKE_DONE))
        return -ENOTCONN;
    if (c->flags & (WS_TLS_F_TX_OFFLOADED | WS_TLS_F_SENT_CLOSE))
        return -EALREADY;
    /* Everything BoringSSL owes the peer (tickets) must be sealed by it first: our records
     * continue its sequence. */
    int r = ws__tls_write_flush(c);
    if (r != 0)
        return r;
    ws_tls_rec_t *tx = malloc(sizeof(*tx));
    if (tx == NULL)
        return -ENOMEM;
    if ((r = ws_tls_rec_init(tx, c->ssl)) != 0) {
        free(tx);
        return r;
    }
    c->bssl_seq = tx->seq;
    c->tx = tx;
    ws_keys_forget(c->ssl); /* the secret lives on in tx; kTLS cannot follow from here */
    return 0;
}

bool ws_tls_tx_owned(const ws_tls_conn_t *c)
{
    return c->tx != NULL;
}
#endif

int ws_tls_write(ws_tls_conn_t *c, const void *p, size_t n)
{
    int r = write_check(c, n);
    if (r != 0 || n == 0)
        return r;
#ifdef WS_WITH_KTLS
    if (c->tx != NULL) {
        struct iovec one = {.iov_base = (void *)p, .iov_len = n};
        return seal_own(c, &one, n);
    }
#endif
    return seal(c, p, n);
}

int ws_tls_writev(ws_tls_conn_t *c, const struct iovec *iov, int cnt)
{
    size_t total = 0;
    for (int i = 0; i < cnt; i++) {
        if (iov[i].iov_len > SIZE_MAX - total)
            return -EINVAL;
        total += iov[i].iov_len;
    }
    int r = write_check(c, total);
    if (r != 0 || total == 0)
        return r;
#ifdef WS_WITH_KTLS
    if (c->tx != NULL)
        return seal_own(c, iov, total);
#endif
    /* Gather small pieces into full records; large runs go straight from the caller's
     * memory (no copy) as whole 16 KiB records. */
    uint8_t buf[WS_TLS_MAX_PLAIN];
    size_t fill = 0;
    for (int i = 0; i < cnt; i++) {
        const uint8_t *p = iov[i].iov_base;
        size_t len = iov[i].iov_len;
        while (len > 0) {
            if (fill == 0 && len >= WS_TLS_MAX_PLAIN) {
                size_t k = len - len % WS_TLS_MAX_PLAIN;
                if ((r = seal(c, p, k)) != 0)
                    return r;
                p += k;
                len -= k;
                continue;
            }
            size_t k = WS_TLS_MAX_PLAIN - fill;
            if (k > len)
                k = len;
            memcpy(buf + fill, p, k);
            fill += k;
            p += k;
            len -= k;
            if (fill == WS_TLS_MAX_PLAIN) {
                if ((r = seal(c, buf, fill)) != 0)
                    return r;
                fill = 0;
            }
        }
    }
    return fill > 0 ? seal(c, buf, fill) : 0;
}
