/* Userspace record sealing after the hand-over from BoringSSL; see record.h. */
#include "record.h"

#include <errno.h>
#include <string.h>

#include <openssl/mem.h>
#include <openssl/nid.h>

#include "uringws/keys.h"

static const EVP_AEAD *aead_of(uint16_t cipher_type)
{
    switch (cipher_type) {
    case TLS_CIPHER_AES_GCM_128:
        return EVP_aead_aes_128_gcm();
    case TLS_CIPHER_AES_GCM_256:
        return EVP_aead_aes_256_gcm();
    case TLS_CIPHER_CHACHA20_POLY1305:
        return EVP_aead_chacha20_poly1305();
    default:
        return NULL;
    }
}

/* TLS 1.3 key and IV of a traffic secret (RFC 8446 7.3), into the AEAD context. */
static int set_tls13_keys(ws_tls_rec_t *r, const EVP_AEAD *alg)
{
    uint8_t key[32];
    size_t key_len = EVP_AEAD_key_length(alg);
    int rc = -EIO;
    if (key_len <= sizeof(key) &&
        ws_keys_hkdf_expand_label(key, key_len, r->md, r->secret, r->secret_len, "key") == 0 &&
        ws_keys_hkdf_expand_label(r->iv, sizeof(r->iv), r->md, r->secret, r->secret_len, "iv") ==
            0 &&
        EVP_AEAD_CTX_init(&r->aead, alg, key, key_len, WS_TLS_REC_TAG, NULL))
        rc = 0;
    OPENSSL_cleanse(key, sizeof(key));
    return rc;
}

int ws_tls_rec_init(ws_tls_rec_t *r, SSL *ssl)
{
    ws_keys_crypto_info_t ci;
    size_t ci_len;
    memset(r, 0, sizeof(*r));
    int rc = ws_keys_crypto_info(ssl, WS_TLS_TX, &ci, &ci_len);
    if (rc != 0)
        return rc;
    const EVP_AEAD *alg = aead_of(ci.info.cipher_type);
    const uint8_t *key, *salt, *iv, *rec_seq;
    size_t salt_len = 4;
    switch (ci.info.cipher_type) {
    case TLS_CIPHER_AES_GCM_128:
        key = ci.aes_gcm_128.key, salt = ci.aes_gcm_128.salt, iv = ci.aes_gcm_128.iv;
        rec_seq = ci.aes_gcm_128.rec_seq;
        break;
    case TLS_CIPHER_AES_GCM_256:
        key = ci.aes_gcm_256.key, salt = ci.aes_gcm_256.salt, iv = ci.aes_gcm_256.iv;
        rec_seq = ci.aes_gcm_256.rec_seq;
        break;
    default:
        key = ci.chacha20_poly1305.key, salt = NULL, iv = ci.chacha20_poly1305.iv;
        rec_seq = ci.chacha20_poly1305.rec_seq;
        salt_len = 0;
        break;
    }
    r->version = ci.info.version == TLS_1_3_VERSION ? TLS1_3_VERSION : TLS1_2_VERSION;
    for (int i = 0; i < 8; i++)
        r->seq = r->seq << 8 | rec_seq[i];
    /* The 12-byte nonce base: salt | iv for GCM, the iv for ChaCha20. In TLS 1.2 GCM the
     * last 8 bytes are replaced by each record's explicit nonce. */
    if (salt_len)
        memcpy(r->iv, salt, salt_len);
    memcpy(r->iv + salt_len, iv, sizeof(r->iv) - salt_len);
    r->explicit_len = r->version == TLS1_2_VERSION && salt_len ? 8 : 0;
    rc = -EIO;
    if (alg != NULL &&
        EVP_AEAD_CTX_init(&r->aead, alg, key, EVP_AEAD_key_length(alg), WS_TLS_REC_TAG, NULL))
        rc = 0;
    ws_keys_wipe(&ci);
    if (rc == 0 && r->version == TLS1_3_VERSION) {
        /* Keep the secret: a KeyUpdate derives the next keys from it. */
        const SSL_CIPHER *cipher = SSL_get_current_cipher(ssl);
        r->md = SSL_CIPHER_get_prf_nid(cipher) == NID_sha384 ? EVP_sha384() : EVP_sha256();
        size_t len;
        if ((rc = ws_keys_tx_secret(ssl, r->secret, &len)) == 0)
            r->secret_len = (uint8_t)len;
        else
            EVP_AEAD_CTX_cleanup(&r->aead);
    }
    if (rc != 0)
        OPENSSL_cleanse(r, sizeof(*r));
    return rc;
}

void ws_tls_rec_cleanup(ws_tls_rec_t *r)
{
    EVP_AEAD_CTX_cleanup(&r->aead);
    OPENSSL_cleanse(r, sizeof(*r));
}

/* The per-record nonce and additional data; returns the AAD length. */
static size_t nonce_aad(const ws_tls_rec_t *r, uint64_t seq, uint8_t type, size_t plain_len,
                        const uint8_t hdr[WS_TLS_REC_HEADER], uint8_t nonce[12], uint8_t aad[13])
{
    uint8_t s[8];
    ws_store_be64(s, seq);
    memcpy(nonce, r->iv, 12);
    if (r->explicit_len)
        memcpy(nonce + 4, s, 8);
    else
        for (int i = 0; i < 8; i++)
            nonce[4 + i] ^= s[i];
    if (r->version == TLS1_3_VERSION) {
        memcpy(aad, hdr, WS_TLS_REC_HEADER);
        return WS_TLS_REC_HEADER;
    }
    memcpy(aad, s, 8);
    aad[8] = type;
    aad[9] = 3;
    aad[10] = 3;
    aad[11] = (uint8_t)(plain_len >> 8);
    aad[12] = (uint8_t)plain_len;
    return 13;
}

size_t ws_tls_rec_seal(ws_tls_rec_t *r, uint8_t type, uint8_t *rec, size_t n)
{
    size_t prefix = ws_tls_rec_prefix(r);
    size_t inner = n, total = n + ws_tls_rec_overhead(r);
    uint8_t *body = rec + prefix;
    if (r->version == TLS1_3_VERSION) {
        body[inner++] = type; /* TLSInnerPlaintext: content, then the real type */
        type = SSL3_RT_APPLICATION_DATA;
    }
    size_t body_len = total - WS_TLS_REC_HEADER;
    rec[0] = type;
    rec[1] = 3;
    rec[2] = 3;
    rec[3] = (uint8_t)(body_len >> 8);
    rec[4] = (uint8_t)body_len;
    uint8_t nonce[12], aad[13];
    size_t aad_len = nonce_aad(r, r->seq, rec[0], n, rec, nonce, aad);
    if (r->explicit_len)
        memcpy(rec + WS_TLS_REC_HEADER, nonce + 4, 8);
    size_t out_len;
    if (!EVP_AEAD_CTX_seal(&r->aead, body, &out_len, inner + WS_TLS_REC_TAG, nonce, 12, body, inner,
                           aad, aad_len) ||
        out_len != inner + WS_TLS_REC_TAG)
        return 0;
    r->seq++;
    return total;
}

/* RFC 8446 4.6.3: the next application traffic secret, and keys from it. */
static int key_update(ws_tls_rec_t *r)
{
    uint8_t next[EVP_MAX_MD_SIZE];
    const EVP_AEAD *alg = EVP_AEAD_CTX_aead(&r->aead);
    if (ws_keys_hkdf_expand_label(next, r->secret_len, r->md, r->secret, r->secret_len,
                                  "traffic upd") != 0)
        return -EIO;
    memcpy(r->secret, next, r->secret_len);
    OPENSSL_cleanse(next, sizeof(next));
    EVP_AEAD_CTX_cleanup(&r->aead);
    if (set_tls13_keys(r, alg) != 0)
        return -EIO;
    r->seq = 0;
    return 0;
}

/* Whether a TLS 1.3 handshake record's content holds a KeyUpdate message. */
static bool has_key_update(const uint8_t *p, size_t n)
{
    while (n >= 4) {
        size_t len = (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
        if (p[0] == SSL3_MT_KEY_UPDATE)
            return true;
        if (len > n - 4)
            break;
        p += 4 + len;
        n -= 4 + len;
    }
    return false;
}

size_t ws_tls_rec_reseal(ws_tls_rec_t *r, uint64_t *bssl_seq, const uint8_t *in, size_t in_len,
                         uint8_t *out)
{
    size_t prefix = ws_tls_rec_prefix(r), overhead = ws_tls_rec_overhead(r);
    if (in_len < overhead || in_len - WS_TLS_REC_HEADER != ((size_t)in[3] << 8 | in[4]))
        return 0;
    size_t ct_len = in_len - prefix, n = in_len - overhead;
    uint8_t *body = out + prefix;
    uint8_t nonce[12], aad[13];
    size_t aad_len = nonce_aad(r, *bssl_seq, in[0], n, in, nonce, aad);
    if (r->explicit_len)
        memcpy(nonce + 4, in + WS_TLS_REC_HEADER, 8); /* whatever nonce BoringSSL chose */
    size_t plain_len;
    if (!EVP_AEAD_CTX_open(&r->aead, body, &plain_len, ct_len, nonce, 12, in + prefix, ct_len, aad,
                           aad_len))
        return 0;
    (*bssl_seq)++;
    uint8_t type = in[0];
    if (r->version == TLS1_3_VERSION) {
        /* Strip the inner type (and any zero padding before it). */
        while (plain_len > 0 && body[plain_len - 1] == 0)
            plain_len--;
        if (plain_len == 0)
            return 0;
        type = body[--plain_len];
    }
    bool update = r->version == TLS1_3_VERSION && type == SSL3_RT_HANDSHAKE &&
                  has_key_update(body, plain_len);
    size_t len = ws_tls_rec_seal(r, type, out, plain_len);
    if (len != 0 && update) {
        if (key_update(r) != 0)
            return 0;
        *bssl_seq = 0;
    }
    return len;
}
