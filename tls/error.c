/* Why a session failed: the categories behind ws_tls_error() (one counter each), set once by
 * the first failure, and the mapping from BoringSSL's error queue to them. Knows nothing of
 * records or output; every other unit of the session calls down into it. */
#include <errno.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tls_internal.h"

static const char *const g_err_names[WS_TLS_ERR__COUNT] = {
    [WS_TLS_ERR_NONE] = "none",
    [WS_TLS_ERR_GARBAGE] = "garbage",
    [WS_TLS_ERR_BAD_RECORD] = "bad_record",
    [WS_TLS_ERR_OVERSIZE] = "oversize_record",
    [WS_TLS_ERR_HANDSHAKE] = "handshake",
    [WS_TLS_ERR_RENEGOTIATION] = "renegotiation",
    [WS_TLS_ERR_PEER_ALERT] = "peer_alert",
    [WS_TLS_ERR_TRUNCATED] = "truncated",
    [WS_TLS_ERR_PROTOCOL] = "protocol",
    [WS_TLS_ERR_OFFLOADED] = "offloaded_write",
    [WS_TLS_ERR_INTERNAL] = "internal",
};

const char *ws_tls_err_name(ws_tls_err_t e)
{
    if ((unsigned)e >= WS_TLS_ERR__COUNT)
        return "unknown";
    return g_err_names[e];
}

int ws__tls_error_set(ws_tls_conn_t *c, ws_tls_err_t e, const char *reason)
{
    if (c->flags & WS_TLS_F_FAILED)
        return -EPROTO; /* the first failure is the cause; later ones are its echoes */
    c->flags |= WS_TLS_F_FAILED;
    c->err = e;
    c->reason = reason;
    return -EPROTO;
}

/* Maps BoringSSL's error queue (thread-local, emptied here) to a category. The first error
 * from the SSL library names the cause; errors from libcrypto (e.g. CIPHER_R_BAD_DECRYPT)
 * come before it and are less specific. */
int ws__tls_error_ssl(ws_tls_conn_t *c, int ssl_err)
{
    uint32_t first = 0, first_ssl = 0, e;
    while ((e = ERR_get_error()) != 0) {
        if (first == 0)
            first = e;
        if (first_ssl == 0 && ERR_GET_LIB(e) == ERR_LIB_SSL)
            first_ssl = e;
    }
    uint32_t code = first_ssl != 0 ? first_ssl : first;
    bool done = c->flags & WS_TLS_F_HANDSHAKE_DONE;

    if (code == 0 || ssl_err == SSL_ERROR_SYSCALL) {
        if ((c->flags & WS_TLS_F_WRITE_REFUSED) && !(c->flags & WS_TLS_F_TX_OFFLOADED))
            return ws__tls_error_set(c, WS_TLS_ERR_INTERNAL,
                                     "a record from BoringSSL did not reseal");
        if (c->flags & WS_TLS_F_WRITE_REFUSED)
            return ws__tls_error_set(c, WS_TLS_ERR_OFFLOADED,
                                     "TLS needed to write after TX moved to kTLS");
        if (c->flags & WS_TLS_F_OOM)
            return ws__tls_error_set(c, WS_TLS_ERR_INTERNAL, "out of memory for TLS output");
        if (code == 0)
            return ws__tls_error_set(c, WS_TLS_ERR_INTERNAL, "TLS library failed without a reason");
    }
    const char *reason = ERR_reason_error_string(code);
    if (reason == NULL)
        reason = "unknown TLS error";
    int lib = ERR_GET_LIB(code), r = ERR_GET_REASON(code);
    if (r == ERR_R_MALLOC_FAILURE)
        return ws__tls_error_set(c, WS_TLS_ERR_INTERNAL, reason);
    if (lib != ERR_LIB_SSL)
        return ws__tls_error_set(c, done ? WS_TLS_ERR_PROTOCOL : WS_TLS_ERR_HANDSHAKE, reason);
    if (r >= SSL_AD_REASON_OFFSET)
        return ws__tls_error_set(c, WS_TLS_ERR_PEER_ALERT, reason);
    switch (r) {
    case SSL_R_NO_RENEGOTIATION:
        return ws__tls_error_set(c, WS_TLS_ERR_RENEGOTIATION, reason);
    case SSL_R_ENCRYPTED_LENGTH_TOO_LONG:
    case SSL_R_DATA_LENGTH_TOO_LONG:
    case SSL_R_RECORD_TOO_LARGE:
        return ws__tls_error_set(c, WS_TLS_ERR_OVERSIZE, reason);
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST:
        return ws__tls_error_set(c, WS_TLS_ERR_GARBAGE, reason);
    case SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC:
    case SSL_R_DECRYPTION_FAILED:
    case SSL_R_BAD_PACKET_LENGTH:
    case SSL_R_UNEXPECTED_RECORD:
    case SSL_R_INVALID_OUTER_RECORD_TYPE:
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_TOO_MANY_EMPTY_FRAGMENTS:
    case SSL_R_TOO_MANY_WARNING_ALERTS:
    case SSL_R_BAD_ALERT:
        return ws__tls_error_set(c, WS_TLS_ERR_BAD_RECORD, reason);
    default:
        return ws__tls_error_set(c, done ? WS_TLS_ERR_PROTOCOL : WS_TLS_ERR_HANDSHAKE, reason);
    }
}

ws_tls_err_t ws_tls_error(const ws_tls_conn_t *c, const char **reason)
{
    if (reason != NULL)
        *reason = c->reason != NULL ? c->reason : "";
    return c->err;
}
