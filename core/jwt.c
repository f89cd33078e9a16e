/* JWT verification (include/uringws/jwt.h): split, base64url-decode (BoringSSL's decoder on a
 * translated copy), header and payload parsed by jansson with duplicate keys refused, the
 * signature checked with the key's one algorithm, then the time and identity claims. The
 * signature is checked before any claim is read, so an unsigned payload never decides a
 * refusal reason. */
#include "uringws/jwt.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/base64.h>
#include <openssl/bn.h>
#include <openssl/bytestring.h>
#include <openssl/digest.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/mem.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A token is read from a request line, so the header limit bounds it long before this. */
#define TOKEN_MAX 16384

struct ws_jwt_key {
    enum ws_jwt_alg alg;
    EVP_PKEY *pkey; /* RS256, ES256, EdDSA */
    size_t secret_len;
    uint8_t secret[]; /* HS256 */
};

static const char *const refusal_names[WS_JWT_REFUSAL_COUNT] = {
    [WS_JWT_OK] = "ok",
    [WS_JWT_MALFORMED] = "malformed",
    [WS_JWT_ALG] = "algorithm",
    [WS_JWT_SIGNATURE] = "signature",
    [WS_JWT_NO_EXP] = "no_exp",
    [WS_JWT_EXPIRED] = "expired",
    [WS_JWT_NOT_YET] = "not_yet_valid",
    [WS_JWT_ISSUER] = "issuer",
    [WS_JWT_AUDIENCE] = "audience",
};

const char *ws_jwt_refusal_name(enum ws_jwt_refusal r)
{
    return (unsigned)r < WS_JWT_REFUSAL_COUNT ? refusal_names[r] : "unknown";
}

const char *ws_jwt_alg_name(enum ws_jwt_alg a)
{
    switch (a) {
    case WS_JWT_HS256:
        return "HS256";
    case WS_JWT_RS256:
        return "RS256";
    case WS_JWT_ES256:
        return "ES256";
    case WS_JWT_EDDSA:
        return "EdDSA";
    }
    return "unknown";
}

enum ws_jwt_alg ws_jwt_key_alg(const ws_jwt_key_t *k)
{
    return k->alg;
}

void ws_jwt_key_free(ws_jwt_key_t *k)
{
    if (!k)
        return;
    EVP_PKEY_free(k->pkey);
    OPENSSL_cleanse(k->secret, k->secret_len);
    free(k);
}

static int key_err(char *err, size_t errlen, const char *why)
{
    snprintf(err, errlen, "%s", why);
    return -EINVAL;
}

/* The algorithm a public key is for, or 0 (with err set) for one we do not take. */
static enum ws_jwt_alg pkey_alg(EVP_PKEY *pk, char *err, size_t errlen)
{
    switch (EVP_PKEY_id(pk)) {
    case EVP_PKEY_RSA:
        if (EVP_PKEY_bits(pk) < 2048) {
            key_err(err, errlen, "RSA key shorter than 2048 bits");
            return 0;
        }
        return WS_JWT_RS256;
    case EVP_PKEY_EC: {
        const EC_KEY *ec = EVP_PKEY_get0_EC_KEY(pk);
        if (!ec || EC_GROUP_get_curve_name(EC_KEY_get0_group(ec)) != NID_X9_62_prime256v1) {
            key_err(err, errlen, "EC key not on P-256 (ES256 needs P-256)");
            return 0;
        }
        return WS_JWT_ES256;
    }
    case EVP_PKEY_ED25519:
        return WS_JWT_EDDSA;
    default:
        key_err(err, errlen, "public key type is not RSA, EC P-256 or Ed25519");
        return 0;
    }
}

static int key_from_pem(const uint8_t *data, size_t len, ws_jwt_key_t **out, char *err,
                        size_t errlen)
{
    BIO *bio = BIO_new_mem_buf(data, len);
    if (!bio)
        return -ENOMEM;
    EVP_PKEY *pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (!pk)
        return key_err(err, errlen, "cannot read the PEM public key");
    enum ws_jwt_alg alg = pkey_alg(pk, err, errlen);
    ws_jwt_key_t *k = alg ? calloc(1, sizeof(*k)) : NULL;
    if (!k) {
        EVP_PKEY_free(pk);
        return alg ? -ENOMEM : -EINVAL;
    }
    k->alg = alg;
    k->pkey = pk;
    *out = k;
    return 0;
}

int ws_jwt_key_new(const uint8_t *data, size_t len, ws_jwt_key_t **out, char *err, size_t errlen)
{
    static const char pem[] = "-----BEGIN PUBLIC KEY-----";
    *out = NULL;
    /* A PEM block anywhere (text before it, a BOM, `openssl -text` output) is a PEM file,
     * never a secret: a public key taken as an HS256 secret would let anyone sign. */
    if (memmem(data, len, pem, sizeof(pem) - 1))
        return key_from_pem(data, len, out, err, errlen);
    if (memmem(data, len, "-----BEGIN", 10))
        return key_err(err, errlen, "a PEM file that is not a PUBLIC KEY (give the public key)");
    if (len && data[len - 1] == '\n')
        len--;
    if (len && data[len - 1] == '\r')
        len--;
    if (len < 32)
        return key_err(err, errlen, "HS256 secret shorter than 32 bytes");
    ws_jwt_key_t *k = calloc(1, sizeof(*k) + len);
    if (!k)
        return -ENOMEM;
    k->alg = WS_JWT_HS256;
    k->secret_len = len;
    memcpy(k->secret, data, len);
    *out = k;
    return 0;
}

/* base64url without padding (RFC 7515 2) into out (cap >= len); the decoded length, or -1. */
static long b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
    if (len % 4 == 1 || len > TOKEN_MAX)
        return -1;
    char tmp[TOKEN_MAX + 4];
    for (size_t i = 0; i < len; i++) {
        char ch = in[i];
        if (ch == '-')
            ch = '+';
        else if (ch == '_')
            ch = '/';
        else if (ch == '+' || ch == '/' || ch == '=')
            return -1; /* base64url has neither, nor padding */
        tmp[i] = ch;
    }
    size_t n = len;
    while (n % 4)
        tmp[n++] = '=';
    size_t outlen = 0;
    if (!EVP_DecodeBase64(out, &outlen, cap, (const uint8_t *)tmp, n))
        return -1;
    return (long)outlen;
}

/* A decoded part parsed as a JSON object, or NULL. */
static json_t *part_json(const char *in, size_t len)
{
    uint8_t buf[TOKEN_MAX];
    long n = b64url_decode(in, len, buf, sizeof(buf));
    if (n < 0)
        return NULL;
    json_t *j = json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
    if (j && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* ES256 signatures are r || s (32 bytes each, RFC 7518 3.4). */
static bool verify_es256(EVP_PKEY *pk, const uint8_t *msg, size_t n, const uint8_t *sig,
                         size_t siglen)
{
    if (siglen != 64)
        return false;
    uint8_t digest[SHA256_DIGEST_LENGTH];
    SHA256(msg, n, digest);
    ECDSA_SIG *s = ECDSA_SIG_new();
    bool ok = false;
    if (s && BN_bin2bn(sig, 32, s->r) && BN_bin2bn(sig + 32, 32, s->s))
        ok = ECDSA_do_verify(digest, sizeof(digest), s, EVP_PKEY_get0_EC_KEY(pk)) == 1;
    ECDSA_SIG_free(s);
    return ok;
}

static bool verify_evp(EVP_PKEY *pk, const EVP_MD *md, const uint8_t *msg, size_t n,
                       const uint8_t *sig, size_t siglen)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx && EVP_DigestVerifyInit(ctx, NULL, md, NULL, pk) == 1 &&
              EVP_DigestVerify(ctx, sig, siglen, msg, n) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
}

static bool verify_sig(const ws_jwt_key_t *k, const uint8_t *msg, size_t n, const uint8_t *sig,
                       size_t siglen)
{
    switch (k->alg) {
    case WS_JWT_HS256: {
        uint8_t mac[EVP_MAX_MD_SIZE];
        unsigned maclen = 0;
        if (!HMAC(EVP_sha256(), k->secret, k->secret_len, msg, n, mac, &maclen))
            return false;
        return siglen == maclen && CRYPTO_memcmp(mac, sig, maclen) == 0;
    }
    case WS_JWT_RS256:
        return verify_evp(k->pkey, EVP_sha256(), msg, n, sig, siglen);
    case WS_JWT_ES256:
        return verify_es256(k->pkey, msg, n, sig, siglen);
    case WS_JWT_EDDSA:
        return verify_evp(k->pkey, NULL, msg, n, sig, siglen);
    }
    return false;
}

/* The header names the key's algorithm and asks for no extension we do not know. */
static bool header_ok(const ws_jwt_key_t *k, json_t *hdr)
{
    const char *alg = json_string_value(json_object_get(hdr, "alg"));
    if (!alg || strcmp(alg, ws_jwt_alg_name(k->alg)) != 0)
        return false;
    return json_object_get(hdr, "crit") == NULL; /* RFC 7515 4.1.11 */
}

/* A NumericDate claim: absent (0, *has false), a number, or not (-1). */
static int numeric(json_t *payload, const char *name, int64_t *v, bool *has)
{
    json_t *j = json_object_get(payload, name);
    *has = j != NULL;
    if (!j)
        return 0;
    if (!json_is_number(j))
        return -1;
    double d = json_number_value(j);
    if (!(d > -9.2e18 && d < 9.2e18))
        return -1;
    *v = (int64_t)d;
    return 0;
}

static bool list_of_strings(json_t *j)
{
    if (!json_is_array(j))
        return false;
    size_t i;
    json_t *e;
    json_array_foreach(j, i, e) if (!json_is_string(e)) return false;
    return true;
}

static bool audience_ok(json_t *aud, const char *want)
{
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), want) == 0;
    if (!json_is_array(aud))
        return false;
    size_t i;
    json_t *e;
    json_array_foreach(aud, i, e) if (json_is_string(e) &&
                                      strcmp(json_string_value(e), want) == 0) return true;
    return false;
}

static enum ws_jwt_refusal times(json_t *p, const ws_jwt_check_t *chk, int64_t *exp)
{
    int64_t nbf = 0, iat = 0;
    bool has_exp, has_nbf, has_iat;
    if (numeric(p, "exp", exp, &has_exp) < 0 || numeric(p, "nbf", &nbf, &has_nbf) < 0 ||
        numeric(p, "iat", &iat, &has_iat) < 0)
        return WS_JWT_MALFORMED;
    if (!has_exp)
        return WS_JWT_NO_EXP;
    if (chk->now >= *exp + chk->leeway)
        return WS_JWT_EXPIRED;
    if ((has_nbf && chk->now + chk->leeway < nbf) || (has_iat && chk->now + chk->leeway < iat))
        return WS_JWT_NOT_YET;
    return WS_JWT_OK;
}

static enum ws_jwt_refusal claims_check(json_t *p, const ws_jwt_check_t *chk, ws_jwt_claims_t *cl)
{
    enum ws_jwt_refusal r = times(p, chk, &cl->exp);
    if (r)
        return r;
    json_t *sub = json_object_get(p, "sub");
    json_t *iss = json_object_get(p, "iss");
    json_t *rooms = json_object_get(p, "rooms"), *publish = json_object_get(p, "publish");
    if ((sub && (!json_is_string(sub) || json_string_length(sub) >= sizeof(cl->sub))) ||
        (iss && !json_is_string(iss)) || (rooms && !list_of_strings(rooms)) ||
        (publish && !list_of_strings(publish)))
        return WS_JWT_MALFORMED;
    if (chk->issuer && (!iss || strcmp(json_string_value(iss), chk->issuer) != 0))
        return WS_JWT_ISSUER;
    if (chk->audience && !audience_ok(json_object_get(p, "aud"), chk->audience))
        return WS_JWT_AUDIENCE;
    if (sub)
        memcpy(cl->sub, json_string_value(sub), json_string_length(sub) + 1);
    cl->has_rooms = rooms != NULL;
    cl->has_publish = publish != NULL;
    return WS_JWT_OK;
}

/* Splits at the two dots; false unless there are exactly two. */
static bool split(const char *tok, size_t len, size_t *d1, size_t *d2)
{
    const char *a = memchr(tok, '.', len);
    if (!a)
        return false;
    const char *b = memchr(a + 1, '.', len - (size_t)(a + 1 - tok));
    if (!b || memchr(b + 1, '.', len - (size_t)(b + 1 - tok)))
        return false;
    *d1 = (size_t)(a - tok);
    *d2 = (size_t)(b - tok);
    return true;
}

static enum ws_jwt_refusal verify(const ws_jwt_key_t *k, const char *tok, size_t len,
                                  const ws_jwt_check_t *chk, ws_jwt_claims_t *cl)
{
    size_t d1, d2;
    if (len > TOKEN_MAX || !split(tok, len, &d1, &d2))
        return WS_JWT_MALFORMED;
    json_t *hdr = part_json(tok, d1);
    if (!hdr)
        return WS_JWT_MALFORMED;
    bool alg_ok = header_ok(k, hdr);
    json_decref(hdr);
    if (!alg_ok)
        return WS_JWT_ALG;
    uint8_t sig[1024];
    long siglen = b64url_decode(tok + d2 + 1, len - d2 - 1, sig, sizeof(sig));
    if (siglen < 0)
        return WS_JWT_MALFORMED;
    if (!verify_sig(k, (const uint8_t *)tok, d2, sig, (size_t)siglen))
        return WS_JWT_SIGNATURE;
    json_t *payload = part_json(tok + d1 + 1, d2 - d1 - 1);
    if (!payload)
        return WS_JWT_MALFORMED;
    enum ws_jwt_refusal r = claims_check(payload, chk, cl);
    if (r) {
        json_decref(payload);
        return r;
    }
    cl->json = payload;
    return WS_JWT_OK;
}

int ws_jwt_verify(const ws_jwt_key_t *k, const char *tok, size_t len, const ws_jwt_check_t *chk,
                  ws_jwt_claims_t *claims, enum ws_jwt_refusal *why)
{
    memset(claims, 0, sizeof(*claims));
    *why = verify(k, tok, len, chk, claims);
    return *why == WS_JWT_OK ? 0 : -EACCES;
}

void ws_jwt_claims_free(ws_jwt_claims_t *claims)
{
    json_decref(claims->json);
    claims->json = NULL;
}

static bool pattern_grants(const char *pat, size_t plen, const char *room, size_t len)
{
    if (plen == 1 && pat[0] == '*')
        return true;
    if (plen >= 2 && pat[plen - 1] == '*' && pat[plen - 2] == '/')
        return len > plen - 1 && memcmp(pat, room, plen - 1) == 0;
    return plen == len && memcmp(pat, room, len) == 0;
}

bool ws_jwt_grants(const ws_jwt_claims_t *claims, const char *name, const char *room, size_t len)
{
    json_t *list = claims->json ? json_object_get(claims->json, name) : NULL;
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e) if (pattern_grants(json_string_value(e), json_string_length(e),
                                                      room, len)) return true;
    return false;
}
