/* TLS for the fan-out client's connections; see tls.h. */
#include "tls.h"

#include <errno.h>
#include <string.h>

#include <openssl/err.h>

SSL_CTX *ws_fo_tls_ctx_new(void)
{
    static const uint8_t alpn[] = "\x08http/1.1";
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    if (!ctx)
        return NULL;
    /* A benchmark against a self-signed loopback server: nothing to verify against. */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1) != 0) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* TLS input goes through a BIO that reads from the loop's cursor: the worker reads
 * ciphertext from the socket itself, one big read() per readable event, and BoringSSL then
 * takes records from memory. Reading through a socket BIO costs a header read, a body read
 * and a final EAGAIN per record, three system calls per message. The cursor BIO copies
 * nothing it does not hand out and allocates nothing per read. */
static int cursor_read(BIO *b, char *out, int outl)
{
    ws_fo_loop_t *l = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (l->cur_len == 0) {
        BIO_set_retry_read(b);
        return -1;
    }
    size_t n = (size_t)outl < l->cur_len ? (size_t)outl : l->cur_len;
    memcpy(out, l->cur, n);
    l->cur += n;
    l->cur_len -= n;
    return (int)n;
}

static long cursor_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static BIO *cursor_bio_new(ws_fo_loop_t *l)
{
    static BIO_METHOD *method;
    if (!method) {
        method = BIO_meth_new(BIO_TYPE_SOURCE_SINK, "fanout cursor");
        if (!method || !BIO_meth_set_read(method, cursor_read) ||
            !BIO_meth_set_ctrl(method, cursor_ctrl))
            return NULL;
    }
    BIO *b = BIO_new(method);
    if (b) {
        BIO_set_data(b, l);
        BIO_set_init(b, 1);
    }
    return b;
}

SSL *ws_fo_tls_new(ws_fo_loop_t *l, int fd)
{
    SSL *ssl = SSL_new(l->ssl_ctx);
    BIO *rbio = ssl ? cursor_bio_new(l) : NULL;
    BIO *wbio = rbio ? BIO_new_socket(fd, BIO_NOCLOSE) : NULL;
    if (!wbio) {
        BIO_free(rbio);
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_bio(ssl, rbio, wbio);
    SSL_set_connect_state(ssl);
    /* SNI must be a host name (RFC 6066 3), never an address literal. */
    const char *sni = l->cfg->host;
    if (strspn(sni, "0123456789.") == strlen(sni) || sni[0] == '[')
        sni = "localhost";
    SSL_set_tlsext_host_name(ssl, sni);
    return ssl;
}

ssize_t ws_fo_tls_result(SSL *ssl, int r)
{
    if (r > 0)
        return r;
    switch (SSL_get_error(ssl, r)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return -EAGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        return errno ? -errno : 0;
    default:
        ERR_clear_error();
        return -EPROTO;
    }
}
