/* The BIO between BoringSSL and a session's bytes, the only path they take: reads come from
 * the slice ws_tls_feed() is handing over (c->in), writes go to the pending output (out.c),
 * resealed as ours once ws_tls_own_tx() took the write half over, and refused once the
 * kernel holds TX. One method for the whole process, created on first use. No socket calls:
 * the BIO never blocks and never reads ahead of what it was given. */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <openssl/bio.h>

#include "tls_internal.h"

static BIO_METHOD *g_bio_method;
static pthread_once_t g_bio_once = PTHREAD_ONCE_INIT;

static int bio_read(BIO *b, char *out, int len)
{
    ws_tls_conn_t *c = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (c->in_len == 0) {
        /* Retry, not EOF: BoringSSL reports SSL_ERROR_WANT_READ and keeps its state. */
        BIO_set_retry_read(b);
        return -1;
    }
    size_t n = (size_t)len < c->in_len ? (size_t)len : c->in_len;
    memcpy(out, c->in, n);
    c->in += n;
    c->in_len -= n;
    return (int)n;
}

static int bio_write(BIO *b, const char *p, int len)
{
    ws_tls_conn_t *c = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (len <= 0)
        return 0;
    if (c->flags & WS_TLS_F_TX_OFFLOADED) {
        /* The kernel owns the write sequence now; a record from BoringSSL would reuse a
         * nonce and break the stream. Fail the operation instead. */
        c->flags |= WS_TLS_F_WRITE_REFUSED;
        return -1;
    }
#ifdef WS_WITH_KTLS
    if (c->tx != NULL) {
        /* We seal now; BoringSSL's record (an alert, close_notify, a KeyUpdate) is opened
         * and sealed again with our sequence number. */
        int r = ws__tls_out_reseal(c, (const uint8_t *)p, (size_t)len);
        if (r != 0) {
            c->flags |= r == -ENOMEM ? WS_TLS_F_OOM : WS_TLS_F_WRITE_REFUSED;
            return -1;
        }
        return len;
    }
#endif
    if (ws__tls_out_append(c, (const uint8_t *)p, (size_t)len) != 0) {
        c->flags |= WS_TLS_F_OOM;
        return -1;
    }
    return len;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    /* Writes complete at once, so a flush has nothing to do. Everything else is unsupported
     * and BoringSSL does not need it from a transport BIO. */
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static void bio_method_init(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "uringws");
    if (m == NULL)
        return;
    if (!BIO_meth_set_read(m, bio_read) || !BIO_meth_set_write(m, bio_write) ||
        !BIO_meth_set_ctrl(m, bio_ctrl)) {
        BIO_meth_free(m);
        return;
    }
    g_bio_method = m;
}

const BIO_METHOD *ws__tls_bio_method(void)
{
    pthread_once(&g_bio_once, bio_method_init);
    return g_bio_method;
}
