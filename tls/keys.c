/* TLS session keys: TLS 1.3 secret capture through the keylog and message callbacks, and the
 * crypto_info derivation from a BoringSSL session (see uringws/keys.h for the layout and
 * where each byte comes from). Key material lives on the stack only while a crypto_info is
 * built and is wiped before every return. */
#include "uringws/keys.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/digest.h>
#include <openssl/hkdf.h>
#include <openssl/mem.h>
#include <openssl/nid.h>
#include <openssl/ssl.h>

/* TLS 1.3 application traffic secrets of one session, captured from the keylog callback.
 * Owned by the SSL through ex_data: freed (wiped) by the ex_data destructor when the SSL is
 * freed, or earlier by ws_keys_forget(). */
struct session_secrets {
    uint8_t client[EVP_MAX_MD_SIZE];
    uint8_t server[EVP_MAX_MD_SIZE];
    uint8_t client_len, server_len;
    bool key_updated; /* a KeyUpdate went either way: the secrets above are stale */
};

static int g_ex_index = -1;
static pthread_once_t g_ex_once = PTHREAD_ONCE_INIT;

static void secrets_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int index, long argl,
                         void *argp)
{
    (void)parent;
    (void)ad;
    (void)index;
    (void)argl;
    (void)argp;
    if (ptr != NULL) {
        OPENSSL_cleanse(ptr, sizeof(struct session_secrets));
        free(ptr);
    }
}

static void ex_index_init(void)
{
    g_ex_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, secrets_free);
}

static struct session_secrets *secrets_get(const SSL *ssl)
{
    return g_ex_index >= 0 ? SSL_get_ex_data(ssl, g_ex_index) : NULL;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* NSS key log lines: "<LABEL> <client_random hex> <secret hex>". Only the two application
 * traffic secrets of epoch 0 matter; everything else (handshake secrets, the TLS 1.2
 * CLIENT_RANDOM line, the exporter secret) is ignored. */
static void keylog_cb(const SSL *cssl, const char *line)
{
    static const char client_label[] = "CLIENT_TRAFFIC_SECRET_0 ";
    static const char server_label[] = "SERVER_TRAFFIC_SECRET_0 ";
    bool is_client;
    if (strncmp(line, client_label, sizeof(client_label) - 1) == 0)
        is_client = true;
    else if (strncmp(line, server_label, sizeof(server_label) - 1) == 0)
        is_client = false;
    else
        return;
    const char *hex = strrchr(line, ' ') + 1;
    size_t hex_len = strlen(hex);
    if (hex_len == 0 || hex_len % 2 != 0 || hex_len / 2 > EVP_MAX_MD_SIZE)
        return;
    /* The callback is handed a const SSL, but the object is the caller's own and mutable;
     * ex_data is the only per-session storage BoringSSL offers here. */
    SSL *ssl = (SSL *)cssl;
    struct session_secrets *s = secrets_get(ssl);
    if (s == NULL) {
        s = calloc(1, sizeof(*s));
        if (s == NULL)
            return; /* ws_keys_crypto_info() will report -ENOKEY: no hand-off, no harm */
        if (!SSL_set_ex_data(ssl, g_ex_index, s)) {
            free(s);
            return;
        }
    }
    uint8_t *dst = is_client ? s->client : s->server;
    for (size_t i = 0; i < hex_len / 2; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            OPENSSL_cleanse(dst, EVP_MAX_MD_SIZE);
            return;
        }
        dst[i] = (uint8_t)(hi << 4 | lo);
    }
    if (is_client)
        s->client_len = (uint8_t)(hex_len / 2);
    else
        s->server_len = (uint8_t)(hex_len / 2);
}

/* Notices a TLS 1.3 KeyUpdate in either direction: the traffic secrets captured at the end
 * of the handshake no longer match what is on the wire. */
static void msg_cb(int is_write, int version, int content_type, const void *buf, size_t len,
                   SSL *ssl, void *arg)
{
    (void)is_write;
    (void)version;
    (void)arg;
    if (content_type != SSL3_RT_HANDSHAKE || len < 1 ||
        ((const uint8_t *)buf)[0] != SSL3_MT_KEY_UPDATE)
        return;
    struct session_secrets *s = secrets_get(ssl);
    if (s != NULL)
        s->key_updated = true;
}

int ws_keys_ctx_init(SSL_CTX *ctx)
{
    pthread_once(&g_ex_once, ex_index_init);
    if (g_ex_index < 0)
        return -ENOMEM;
    SSL_CTX_set_keylog_callback(ctx, keylog_cb);
    SSL_CTX_set_msg_callback(ctx, msg_cb);
    return 0;
}

void ws_keys_forget(SSL *ssl)
{
    struct session_secrets *s = secrets_get(ssl);
    if (s != NULL) {
        SSL_set_ex_data(ssl, g_ex_index, NULL);
        OPENSSL_cleanse(s, sizeof(*s));
        free(s);
    }
}

void ws_keys_wipe(ws_keys_crypto_info_t *ci)
{
    OPENSSL_cleanse(ci, sizeof(*ci));
}

int ws_keys_tx_secret(SSL *ssl, uint8_t out[EVP_MAX_MD_SIZE], size_t *out_len)
{
    const struct session_secrets *s = secrets_get(ssl);
    *out_len = 0;
    if (s == NULL || s->server_len == 0)
        return -ENOKEY;
    if (s->key_updated)
        return -ESTALE;
    memcpy(out, s->server, s->server_len);
    *out_len = s->server_len;
    return 0;
}

/* HKDF-Expand-Label(secret, label, "", len) of RFC 8446 7.1. */
int ws_keys_hkdf_expand_label(uint8_t *out, size_t out_len, const EVP_MD *md, const uint8_t *secret,
                              size_t secret_len, const char *label)
{
    static const char prefix[] = "tls13 ";
    uint8_t info[2 + 1 + 255 + 1];
    size_t plen = sizeof(prefix) - 1, llen = strlen(label);
    if (plen + llen > 255)
        return -EINVAL;
    info[0] = (uint8_t)(out_len >> 8);
    info[1] = (uint8_t)out_len;
    info[2] = (uint8_t)(plen + llen);
    memcpy(info + 3, prefix, plen);
    memcpy(info + 3 + plen, label, llen);
    info[3 + plen + llen] = 0; /* empty context */
    if (!HKDF_expand(out, out_len, md, secret, secret_len, info, 4 + plen + llen))
        return -EIO;
    return 0;
}

/* What differs between the suites the kernel takes, keyed by BoringSSL's cipher NID: the
 * sizes, and where each field sits in the crypto_info. Every layout is info, iv, key, salt,
 * rec_seq; the 12-byte record IV splits into salt (iv[0..salt_len]) and the kernel's iv
 * (the rest). */
struct suite {
    int nid;              /* SSL_CIPHER_get_cipher_nid() */
    uint16_t cipher_type; /* TLS_CIPHER_* */
    uint8_t key_len, salt_len, iv_len;
    uint8_t fixed_iv_len; /* TLS 1.2 key block IV: the 4-byte GCM salt or the 12-byte ChaCha20 IV */
    uint16_t size, key_off, salt_off, iv_off, seq_off; /* of the union member */
};

#define SUITE(nid_, type, member, fixed)                                                           \
    {                                                                                              \
        .nid = nid_, .cipher_type = TLS_CIPHER_##type, .key_len = TLS_CIPHER_##type##_KEY_SIZE,    \
        .salt_len = TLS_CIPHER_##type##_SALT_SIZE, .iv_len = TLS_CIPHER_##type##_IV_SIZE,          \
        .fixed_iv_len = fixed, .size = sizeof(((ws_keys_crypto_info_t *)0)->member),               \
        .key_off = offsetof(ws_keys_crypto_info_t, member.key),                                    \
        .salt_off = offsetof(ws_keys_crypto_info_t, member.salt),                                  \
        .iv_off = offsetof(ws_keys_crypto_info_t, member.iv),                                      \
        .seq_off = offsetof(ws_keys_crypto_info_t, member.rec_seq),                                \
    }
static const struct suite g_suites[] = {
    SUITE(NID_aes_128_gcm, AES_GCM_128, aes_gcm_128, 4),
    SUITE(NID_aes_256_gcm, AES_GCM_256, aes_gcm_256, 4),
    SUITE(NID_chacha20_poly1305, CHACHA20_POLY1305, chacha20_poly1305, 12),
};
#undef SUITE

static const struct suite *suite_of(const SSL_CIPHER *cipher)
{
    int nid = SSL_CIPHER_get_cipher_nid(cipher);
    for (size_t i = 0; i < sizeof(g_suites) / sizeof(g_suites[0]); i++)
        if (g_suites[i].nid == nid)
            return &g_suites[i];
    return NULL;
}

/* TLS 1.2: key and IV from the key block. AEAD suites have no MAC keys. */
static int keys_tls12(SSL *ssl, const struct suite *s, bool tx, uint64_t seq, uint8_t key[32],
                      uint8_t iv[12])
{
    uint8_t kb[2 * (32 + 12)];
    size_t key_len = s->key_len, fixed_iv_len = s->fixed_iv_len;
    size_t kb_len = SSL_get_key_block_len(ssl);
    if (kb_len != 2 * (key_len + fixed_iv_len) || kb_len > sizeof(kb))
        return -EOPNOTSUPP;
    int r = -EIO;
    if (SSL_generate_key_block(ssl, kb, kb_len)) {
        memcpy(key, kb + (tx ? key_len : 0), key_len);
        memcpy(iv, kb + 2 * key_len + (tx ? fixed_iv_len : 0), fixed_iv_len);
        if (s->cipher_type != TLS_CIPHER_CHACHA20_POLY1305) {
            /* iv = salt (4 bytes) then the explicit nonce of the next record, which
             * BoringSSL takes from the sequence number. For RX the kernel reads the
             * explicit nonce from each record; we still fill in the same value. */
            ws_store_be64(iv + 4, seq);
        }
        r = 0;
    }
    OPENSSL_cleanse(kb, sizeof(kb));
    return r;
}

/* TLS 1.3: key and IV expanded from the captured traffic secret. */
static int keys_tls13(SSL *ssl, const SSL_CIPHER *cipher, const struct suite *s, bool tx,
                      uint8_t key[32], uint8_t iv[12])
{
    struct session_secrets *sec = secrets_get(ssl);
    if (sec == NULL || (tx ? sec->server_len : sec->client_len) == 0)
        return -ENOKEY;
    if (sec->key_updated)
        return -ESTALE;
    const EVP_MD *md = SSL_CIPHER_get_prf_nid(cipher) == NID_sha384 ? EVP_sha384() : EVP_sha256();
    const uint8_t *secret = tx ? sec->server : sec->client;
    size_t secret_len = tx ? sec->server_len : sec->client_len;
    if (secret_len != EVP_MD_size(md))
        return -EIO;
    int r = ws_keys_hkdf_expand_label(key, s->key_len, md, secret, secret_len, "key");
    if (r == 0)
        r = ws_keys_hkdf_expand_label(iv, 12, md, secret, secret_len, "iv");
    return r;
}

int ws_keys_crypto_info(SSL *ssl, unsigned dir, ws_keys_crypto_info_t *out, size_t *out_len)
{
    uint8_t key[32], iv[12];
    int r;

    memset(out, 0, sizeof(*out));
    *out_len = 0;
    if ((dir != WS_TLS_TX && dir != WS_TLS_RX) || !SSL_is_init_finished(ssl))
        return -EINVAL;
    const SSL_CIPHER *cipher = SSL_get_current_cipher(ssl);
    if (cipher == NULL)
        return -EINVAL;
    const struct suite *s = suite_of(cipher);
    if (s == NULL)
        return -EOPNOTSUPP;
    /* The server writes with the server's keys and reads with the client's. */
    bool tx = dir == WS_TLS_TX;
    uint64_t seq = tx ? SSL_get_write_sequence(ssl) : SSL_get_read_sequence(ssl);
    uint16_t version = (uint16_t)SSL_version(ssl);
    if (version == TLS1_2_VERSION)
        r = keys_tls12(ssl, s, tx, seq, key, iv);
    else if (version == TLS1_3_VERSION)
        r = keys_tls13(ssl, cipher, s, tx, key, iv);
    else
        return -EOPNOTSUPP;

    if (r == 0) {
        uint8_t *base = (uint8_t *)out;
        out->info.version = version; /* TLS_1_2_VERSION / TLS_1_3_VERSION: the wire values */
        out->info.cipher_type = s->cipher_type;
        memcpy(base + s->key_off, key, s->key_len);
        memcpy(base + s->salt_off, iv, s->salt_len);
        memcpy(base + s->iv_off, iv + s->salt_len, s->iv_len);
        ws_store_be64(base + s->seq_off, seq);
        *out_len = s->size;
    }
    OPENSSL_cleanse(key, sizeof(key));
    OPENSSL_cleanse(iv, sizeof(iv));
    if (r != 0)
        ws_keys_wipe(out);
    return r;
}
