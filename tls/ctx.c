/* Contexts: configuration defaults, the checks on a configuration, the shared SSL_CTX with
 * its versions, ciphers, tickets, certificate chain and key, and the ALPN choice. A context
 * is built once and then shared read-only by every thread's sessions (tls.c); nothing here
 * touches a session. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tls_internal.h"

#ifdef WS_WITH_KTLS
#include "uringws/keys.h"
#endif

void ws_tls_config_init(ws_tls_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->min_version = WS_TLS_V1_2;
    cfg->ciphers12 = WS_TLS_DEFAULT_CIPHERS12;
    cfg->num_tickets = 2;
    cfg->ktls = false;
    cfg->max_out_bytes = 4u << 20;
}

static int set_err(char *err, size_t errlen, int r, const char *fmt, const char *arg)
{
    if (err != NULL && errlen > 0) {
        uint32_t e = ERR_peek_last_error();
        const char *why = e != 0 ? ERR_reason_error_string(e) : NULL;
        int k = snprintf(err, errlen, fmt, arg != NULL ? arg : "");
        if (why != NULL && k >= 0 && (size_t)k < errlen)
            snprintf(err + k, errlen - (size_t)k, " (%s)", why);
    }
    ERR_clear_error();
    return r;
}

static int check_readable(const char *path, const char *what, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        int r = -errno;
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "cannot open %s file %s: %s", what, path, strerror(-r));
        return r;
    }
    fclose(f);
    return 0;
}

/* ALPN: a WebSocket over TLS speaks HTTP/1.1 first. A client that offers ALPN without
 * http/1.1 cannot talk to us, and RFC 7301 3.2 says to answer no_application_protocol. A
 * client that offers no ALPN at all is fine (this callback is not called). */
static int alpn_select(SSL *ssl, const uint8_t **out, uint8_t *outlen, const uint8_t *in,
                       unsigned inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    static const char proto[] = "http/1.1";
    unsigned i = 0;
    while (i < inlen) {
        unsigned len = in[i++];
        if (len == 0 || len > inlen - i)
            return SSL_TLSEXT_ERR_ALERT_FATAL;
        if (len == sizeof(proto) - 1 && memcmp(in + i, proto, len) == 0) {
            *out = in + i;
            *outlen = (uint8_t)len;
            return SSL_TLSEXT_ERR_OK;
        }
        i += len;
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* The checks that need no TLS library: required fields, the version, kTLS built in, and the
 * two files readable (so that the message names the file and errno, not a PEM error). */
static int check_config(const ws_tls_config_t *cfg, char *err, size_t errlen)
{
    int r;
    if (cfg->cert_file == NULL || cfg->key_file == NULL)
        return set_err(err, errlen, -EINVAL, "certificate and key files are required%s", NULL);
    if (cfg->min_version != WS_TLS_V1_2 && cfg->min_version != WS_TLS_V1_3)
        return set_err(err, errlen, -EINVAL, "minimum TLS version must be 1.2 or 1.3%s", NULL);
#ifndef WS_WITH_KTLS
    if (cfg->ktls)
        return set_err(err, errlen, -EOPNOTSUPP, "built without kTLS support%s", NULL);
#endif
    if ((r = check_readable(cfg->cert_file, "certificate", err, errlen)) != 0)
        return r;
    return check_readable(cfg->key_file, "key", err, errlen);
}

/* Versions, the TLS 1.2 cipher list and session resumption. */
static int set_protocol(SSL_CTX *sc, const ws_tls_config_t *cfg, char *err, size_t errlen)
{
    if (!SSL_CTX_set_min_proto_version(sc, cfg->min_version) ||
        !SSL_CTX_set_max_proto_version(sc, TLS1_3_VERSION))
        return set_err(err, errlen, -EINVAL, "cannot set the TLS versions%s", NULL);
    const char *ciphers = cfg->ciphers12 != NULL ? cfg->ciphers12 : WS_TLS_DEFAULT_CIPHERS12;
    if (!SSL_CTX_set_strict_cipher_list(sc, ciphers))
        return set_err(err, errlen, -EINVAL, "bad TLS 1.2 cipher list \"%s\"", ciphers);
    SSL_CTX_set_options(sc, SSL_OP_CIPHER_SERVER_PREFERENCE |
                                (cfg->num_tickets == 0 ? SSL_OP_NO_TICKET : 0));
    SSL_CTX_set_num_tickets(sc, cfg->num_tickets);
    /* Resumption goes through tickets only: a server-side cache grows with the client
     * count and is per process anyway. */
    SSL_CTX_set_session_cache_mode(sc, SSL_SESS_CACHE_OFF);
    return 0;
}

/* The certificate chain and the private key, checked against each other. */
static int load_cert_key(SSL_CTX *sc, const ws_tls_config_t *cfg, char *err, size_t errlen)
{
    if (!SSL_CTX_use_certificate_chain_file(sc, cfg->cert_file))
        return set_err(err, errlen, -EINVAL, "cannot load the certificate chain from %s",
                       cfg->cert_file);
    if (!SSL_CTX_use_PrivateKey_file(sc, cfg->key_file, SSL_FILETYPE_PEM)) {
        /* BoringSSL checks the key against the certificate here already. */
        uint32_t e = ERR_peek_last_error();
        bool mismatch =
            ERR_GET_LIB(e) == ERR_LIB_X509 && (ERR_GET_REASON(e) == X509_R_KEY_TYPE_MISMATCH ||
                                               ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH);
        return set_err(err, errlen, -EINVAL,
                       mismatch ? "the private key in %s does not match the certificate"
                                : "cannot load the private key from %s",
                       cfg->key_file);
    }
    if (!SSL_CTX_check_private_key(sc))
        return set_err(err, errlen, -EINVAL, "the private key in %s does not match the certificate",
                       cfg->key_file);
    return 0;
}

int ws_tls_ctx_new(const ws_tls_config_t *cfg, ws_tls_ctx_t **out, char *err, size_t errlen)
{
    int r;
    *out = NULL;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if ((r = check_config(cfg, err, errlen)) != 0)
        return r;
    const BIO_METHOD *bio = ws__tls_bio_method();
    if (bio == NULL)
        return set_err(err, errlen, -ENOMEM, "cannot create the TLS transport%s", NULL);

    ws_tls_ctx_t *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL)
        return set_err(err, errlen, -ENOMEM, "out of memory%s", NULL);
    ctx->max_out_bytes = cfg->max_out_bytes;
    ctx->bio_method = bio;
    SSL_CTX *sc = ctx->ssl_ctx = SSL_CTX_new(TLS_method());
    if (sc == NULL) {
        r = set_err(err, errlen, -ENOMEM, "cannot create the TLS context%s", NULL);
        goto err;
    }
    if ((r = set_protocol(sc, cfg, err, errlen)) != 0 ||
        (r = load_cert_key(sc, cfg, err, errlen)) != 0)
        goto err;
    SSL_CTX_set_alpn_select_cb(sc, alpn_select, NULL);
#ifdef WS_WITH_KTLS
    /* Always: userspace sealing (ws_tls_own_tx) derives its keys the same way. */
    if ((r = ws_keys_ctx_init(sc)) != 0) {
        r = set_err(err, errlen, r, "cannot prepare the kTLS hand-off%s", NULL);
        goto err;
    }
#endif
    *out = ctx;
    return 0;
err:
    ws_tls_ctx_free(ctx);
    return r;
}

void ws_tls_ctx_free(ws_tls_ctx_t *ctx)
{
    if (ctx == NULL)
        return;
    /* Sessions still alive keep the SSL_CTX through their own reference. */
    SSL_CTX_free(ctx->ssl_ctx);
    free(ctx);
}
