/* core/jwt.c: tokens signed here with BoringSSL's signing calls (the verifier only verifies;
 * tests/integration/tokens.js checks tokens made by npm jose), for every algorithm, and each
 * refusal: bad signature, alg none, algorithm confusion, crit, expired, not yet valid, iat in
 * the future, missing exp, issuer, audience, malformed parts; room patterns. */
#include <openssl/base64.h>
#include <openssl/bn.h>
#include <openssl/bytestring.h>
#include <openssl/curve25519.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "uringws/jwt.h"

#define NOW 1800000000LL

static const char secret[] = "0123456789abcdef0123456789abcdef-test-secret";

static size_t b64url(const uint8_t *in, size_t n, char *out)
{
    size_t len = 0;
    EVP_EncodedLength(&len, n);
    char tmp[8192];
    REQUIRE(len <= sizeof(tmp));
    size_t w = EVP_EncodeBlock((uint8_t *)tmp, in, n);
    size_t k = 0;
    for (size_t i = 0; i < w && tmp[i] != '='; i++)
        out[k++] = tmp[i] == '+' ? '-' : tmp[i] == '/' ? '_' : tmp[i];
    out[k] = '\0';
    return k;
}

typedef struct signer {
    enum ws_jwt_alg alg;
    EVP_PKEY *pk; /* private key, NULL for HS256 */
    const uint8_t *secret;
    size_t secret_len;
} signer_t;

static size_t sign(const signer_t *s, const uint8_t *msg, size_t n, uint8_t *sig)
{
    size_t len = 1024;
    if (s->alg == WS_JWT_HS256) {
        unsigned l = 0;
        REQUIRE(HMAC(EVP_sha256(), s->secret, s->secret_len, msg, n, sig, &l));
        return l;
    }
    if (s->alg == WS_JWT_ES256) {
        uint8_t d[32];
        SHA256(msg, n, d);
        ECDSA_SIG *es = ECDSA_do_sign(d, sizeof(d), EVP_PKEY_get0_EC_KEY(s->pk));
        REQUIRE(es);
        REQUIRE(BN_bn2bin_padded(sig, 32, es->r) && BN_bn2bin_padded(sig + 32, 32, es->s));
        ECDSA_SIG_free(es);
        return 64;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    REQUIRE(EVP_DigestSignInit(ctx, NULL, s->alg == WS_JWT_EDDSA ? NULL : EVP_sha256(), NULL,
                               s->pk) == 1);
    REQUIRE(EVP_DigestSign(ctx, sig, &len, msg, n) == 1);
    EVP_MD_CTX_free(ctx);
    return len;
}

/* header and payload are JSON texts; the token goes into out. */
static size_t make(const signer_t *s, const char *header, const char *payload, char *out)
{
    size_t k = b64url((const uint8_t *)header, strlen(header), out);
    out[k++] = '.';
    k += b64url((const uint8_t *)payload, strlen(payload), out + k);
    uint8_t sig[1024];
    size_t sl = sign(s, (const uint8_t *)out, k, sig);
    out[k++] = '.';
    k += b64url(sig, sl, out + k);
    return k;
}

static char *pem_public(EVP_PKEY *pk)
{
    BIO *b = BIO_new(BIO_s_mem());
    REQUIRE(PEM_write_bio_PUBKEY(b, pk));
    const uint8_t *data;
    size_t len;
    REQUIRE(BIO_mem_contents(b, &data, &len));
    char *s = strndup((const char *)data, len);
    BIO_free(b);
    return s;
}

static ws_jwt_key_t *key_of(const char *data)
{
    ws_jwt_key_t *k = NULL;
    char err[200];
    int rc = ws_jwt_key_new((const uint8_t *)data, strlen(data), &k, err, sizeof(err));
    REQUIRE_MSG(rc == 0, "key: %s", err);
    return k;
}

static enum ws_jwt_refusal check_tok(const ws_jwt_key_t *k, const char *tok,
                                     const ws_jwt_check_t *chk, ws_jwt_claims_t *cl)
{
    enum ws_jwt_refusal why = WS_JWT_OK;
    int rc = ws_jwt_verify(k, tok, strlen(tok), chk, cl, &why);
    CHECK_INT(rc, why == WS_JWT_OK ? 0 : -EACCES);
    return why;
}

static const char *alg_header(enum ws_jwt_alg a)
{
    static char h[64];
    snprintf(h, sizeof(h), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", ws_jwt_alg_name(a));
    return h;
}

/* Every refusal and acceptance that does not depend on the algorithm, with signer s. */
static void common_cases(const signer_t *s, const ws_jwt_key_t *k)
{
    ws_jwt_check_t chk = {.now = NOW, .leeway = 5};
    ws_jwt_claims_t cl;
    char tok[8192], pay[512];
    const char *hdr = alg_header(s->alg);

    snprintf(pay, sizeof(pay),
             "{\"sub\":\"alice\",\"exp\":%lld,\"rooms\":[\"lobby\",\"prices/*\"],"
             "\"publish\":[\"lobby\"]}",
             NOW + 60);
    make(s, hdr, pay, tok);
    REQUIRE_INT(check_tok(k, tok, &chk, &cl), WS_JWT_OK);
    CHECK(strcmp(cl.sub, "alice") == 0);
    CHECK_INT(cl.exp, NOW + 60);
    CHECK(cl.has_rooms && cl.has_publish);
    CHECK(ws_jwt_grants(&cl, "rooms", "lobby", 5));
    CHECK(ws_jwt_grants(&cl, "rooms", "prices/eur", 10));
    CHECK(ws_jwt_grants(&cl, "rooms", "prices/eur/usd", 14));
    CHECK(!ws_jwt_grants(&cl, "rooms", "prices", 6));
    CHECK(!ws_jwt_grants(&cl, "rooms", "prices/", 7));
    CHECK(!ws_jwt_grants(&cl, "rooms", "lobby2", 6));
    CHECK(ws_jwt_grants(&cl, "publish", "lobby", 5));
    CHECK(!ws_jwt_grants(&cl, "publish", "prices/eur", 10));
    ws_jwt_claims_free(&cl);

    /* A flipped signature bit, a truncated signature. */
    size_t n = strlen(tok);
    tok[n - 2] = tok[n - 2] == 'A' ? 'B' : 'A';
    CHECK_INT(check_tok(k, tok, &chk, &cl), WS_JWT_SIGNATURE);
    tok[n - 6] = '\0';
    CHECK(check_tok(k, tok, &chk, &cl) != WS_JWT_OK);

    /* The times: expired (exactly at exp + leeway), not yet valid, iat ahead, inside leeway. */
    snprintf(pay, sizeof(pay), "{\"exp\":%lld}", NOW - 5);
    make(s, hdr, pay, tok);
    CHECK_INT(check_tok(k, tok, &chk, &cl), WS_JWT_EXPIRED);
    snprintf(pay, sizeof(pay), "{\"exp\":%lld}", NOW - 4);
    make(s, hdr, pay, tok);
    CHECK_INT(check_tok(k, tok, &chk, &cl), WS_JWT_OK);
    ws_jwt_claims_free(&cl);
    snprintf(pay, sizeof(pay), "{\"exp\":%lld,\"nbf\":%lld}", NOW + 60, NOW + 6);
    make(s, hdr, pay, tok);
    CHECK_INT(check_tok(k, tok, &chk, &cl), WS_JWT_NOT_YET);
    snprintf(pay, sizeof(pay), "{\"exp\":%lld,\"nbf\":%lld,\"iat\":%lld}", NOW + 60, NOW + 5, NOW);
    make(s, hdr, pay, tok);
    CHECK_INT(check_tok(k, tok, &chk, &cl), WS_JWT_OK);
    ws_jwt_claims_free(&cl);
    snprintf(pay, sizeof(pay), "{\"exp\":%lld,\"iat\":%lld}", NOW + 60, NOW + 100);
    make(s, hdr, pay, tok);
    CHECK_INT(check_tok(k, tok, &chk, &cl), WS_JWT_NOT_YET);
    make(s, hdr, "{\"sub\":\"x\"}", tok);
    CHECK_INT(check_tok(k, tok, &chk, &cl), WS_JWT_NO_EXP);
    make(s, hdr, "{\"exp\":\"soon\"}", tok);
    CHECK_INT(check_tok(k, tok, &chk, &cl), WS_JWT_MALFORMED);

    /* Issuer and audience, when configured. */
    ws_jwt_check_t strict = {.now = NOW, .issuer = "https://app", .audience = "uringws"};
    snprintf(pay, sizeof(pay), "{\"exp\":%lld,\"iss\":\"https://app\",\"aud\":[\"x\",\"uringws\"]}",
             NOW + 60);
    make(s, hdr, pay, tok);
    CHECK_INT(check_tok(k, tok, &strict, &cl), WS_JWT_OK);
    ws_jwt_claims_free(&cl);
    snprintf(pay, sizeof(pay), "{\"exp\":%lld,\"iss\":\"https://app\",\"aud\":\"other\"}",
             NOW + 60);
    make(s, hdr, pay, tok);
    CHECK_INT(check_tok(k, tok, &strict, &cl), WS_JWT_AUDIENCE);
    snprintf(pay, sizeof(pay), "{\"exp\":%lld,\"iss\":\"https://evil\",\"aud\":\"uringws\"}",
             NOW + 60);
    make(s, hdr, pay, tok);
    CHECK_INT(check_tok(k, tok, &strict, &cl), WS_JWT_ISSUER);
    snprintf(pay, sizeof(pay), "{\"exp\":%lld,\"iss\":\"https://app\"}", NOW + 60);
    make(s, hdr, pay, tok);
    CHECK_INT(check_tok(k, tok, &strict, &cl), WS_JWT_AUDIENCE);

    /* Claims of the wrong type, duplicate keys, a payload that is not an object. */
    snprintf(pay, sizeof(pay), "{\"exp\":%lld,\"rooms\":\"lobby\"}", NOW + 60);
    make(s, hdr, pay, tok);
    CHECK_INT(check_tok(k, tok, &chk, &cl), WS_JWT_MALFORMED);
    snprintf(pay, sizeof(pay), "{\"exp\":%lld,\"exp\":%lld}", NOW + 60, NOW + 90);
    make(s, hdr, pay, tok);
    CHECK_INT(check_tok(k, tok, &chk, &cl), WS_JWT_MALFORMED);
    make(s, hdr, "[1,2]", tok);
    CHECK_INT(check_tok(k, tok, &chk, &cl), WS_JWT_MALFORMED);
    make(s, hdr, "{\"exp\":", tok);
    CHECK_INT(check_tok(k, tok, &chk, &cl), WS_JWT_MALFORMED);

    /* Header: crit, alg none (an empty signature), alg missing. */
    char h2[128];
    snprintf(h2, sizeof(h2), "{\"alg\":\"%s\",\"crit\":[\"b64\"],\"b64\":false}",
             ws_jwt_alg_name(s->alg));
    snprintf(pay, sizeof(pay), "{\"exp\":%lld}", NOW + 60);
    make(s, h2, pay, tok);
    CHECK_INT(check_tok(k, tok, &chk, &cl), WS_JWT_ALG);
    make(s, "{\"typ\":\"JWT\"}", pay, tok);
    CHECK_INT(check_tok(k, tok, &chk, &cl), WS_JWT_ALG);
    n = b64url((const uint8_t *)"{\"alg\":\"none\"}", 14, tok);
    tok[n++] = '.';
    n += b64url((const uint8_t *)pay, strlen(pay), tok + n);
    tok[n++] = '.';
    tok[n] = '\0';
    CHECK_INT(check_tok(k, tok, &chk, &cl), WS_JWT_ALG);

    /* Malformed: two parts, four parts, padding, bad characters, empty. */
    static const char *const bad[] = {
        "", "abc", "a.b", "a.b.c.d", "eyJhbGciOiJIUzI1NiJ9=.e30.AAAA", "eyJhbGci.e30.AA",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_INT(check_tok(k, bad[i], &chk, &cl), WS_JWT_MALFORMED);
    /* A signature holding characters of plain base64 or none at all. */
    for (const char *c = "+/*="; *c; c++) {
        n = make(s, hdr, pay, tok);
        tok[n - 3] = *c;
        CHECK_INT(check_tok(k, tok, &chk, &cl), WS_JWT_MALFORMED);
    }
}

static void test_hs256(void)
{
    signer_t s = {WS_JWT_HS256, NULL, (const uint8_t *)secret, strlen(secret)};
    char file[128];
    snprintf(file, sizeof(file), "%s\n", secret); /* a trailing newline is not key */
    ws_jwt_key_t *k = key_of(file);
    CHECK_INT(ws_jwt_key_alg(k), WS_JWT_HS256);
    common_cases(&s, k);
    ws_jwt_key_free(k);
    /* A short secret is refused. */
    char err[200];
    CHECK_INT(ws_jwt_key_new((const uint8_t *)"short", 5, &k, err, sizeof(err)), -EINVAL);
}

static EVP_PKEY *gen_rsa(void)
{
    RSA *rsa = RSA_new();
    BIGNUM *e = BN_new();
    REQUIRE(BN_set_word(e, RSA_F4) && RSA_generate_key_ex(rsa, 2048, e, NULL));
    BN_free(e);
    EVP_PKEY *pk = EVP_PKEY_new();
    REQUIRE(EVP_PKEY_assign_RSA(pk, rsa));
    return pk;
}

static EVP_PKEY *gen_ec(int nid)
{
    EC_KEY *ec = EC_KEY_new_by_curve_name(nid);
    REQUIRE(ec && EC_KEY_generate_key(ec));
    EVP_PKEY *pk = EVP_PKEY_new();
    REQUIRE(EVP_PKEY_assign_EC_KEY(pk, ec));
    return pk;
}

static EVP_PKEY *gen_ed25519(void)
{
    uint8_t pub[32], priv[64];
    ED25519_keypair(pub, priv);
    EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, priv, 32);
    REQUIRE(pk);
    return pk;
}

/* Public-key algorithms, and the confusion attack: an HS256 token whose secret is the PEM
 * text of the public key the server holds. */
static void test_public(enum ws_jwt_alg alg, EVP_PKEY *pk)
{
    char *pem = pem_public(pk);
    ws_jwt_key_t *k = key_of(pem);
    CHECK_INT(ws_jwt_key_alg(k), alg);
    signer_t s = {alg, pk, NULL, 0};
    common_cases(&s, k);

    signer_t confused = {WS_JWT_HS256, NULL, (const uint8_t *)pem, strlen(pem)};
    char tok[8192], pay[128];
    snprintf(pay, sizeof(pay), "{\"exp\":%lld}", NOW + 60);
    make(&confused, alg_header(WS_JWT_HS256), pay, tok);
    ws_jwt_check_t chk = {.now = NOW};
    ws_jwt_claims_t cl;
    CHECK_INT(check_tok(k, tok, &chk, &cl), WS_JWT_ALG);
    /* A token of this algorithm signed by another key of the same kind. */
    EVP_PKEY *other = alg == WS_JWT_RS256   ? gen_rsa()
                      : alg == WS_JWT_ES256 ? gen_ec(NID_X9_62_prime256v1)
                                            : gen_ed25519();
    signer_t s2 = {alg, other, NULL, 0};
    make(&s2, alg_header(alg), pay, tok);
    CHECK_INT(check_tok(k, tok, &chk, &cl), WS_JWT_SIGNATURE);
    EVP_PKEY_free(other);
    ws_jwt_key_free(k);
    free(pem);
}

static void test_keys_refused(void)
{
    char err[200];
    ws_jwt_key_t *k = NULL;
    EVP_PKEY *p384 = gen_ec(NID_secp384r1);
    char *pem = pem_public(p384);
    CHECK_INT(ws_jwt_key_new((const uint8_t *)pem, strlen(pem), &k, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "P-256") != NULL);
    free(pem);
    EVP_PKEY_free(p384);
    static const char priv[] =
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI\n-----END PRIVATE KEY-----\n";
    CHECK_INT(ws_jwt_key_new((const uint8_t *)priv, strlen(priv), &k, err, sizeof(err)), -EINVAL);
    static const char junk[] = "-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n";
    CHECK_INT(ws_jwt_key_new((const uint8_t *)junk, strlen(junk), &k, err, sizeof(err)), -EINVAL);
    CHECK(k == NULL);
}

/* A key file holding a PEM block behind other text is read as PEM, and a secret holding a
 * PEM header is refused: a public key must never become an HS256 secret. */
static void pem_anywhere(void)
{
    static const char secret_with_pem[] =
        "0123456789abcdef0123456789abcdef -----BEGIN CERTIFICATE-----";
    ws_jwt_key_t *k = NULL;
    char err[128];
    CHECK_INT(ws_jwt_key_new((const uint8_t *)secret_with_pem, sizeof secret_with_pem - 1, &k, err,
                             sizeof err),
              -EINVAL);
    static const char text_then_pem[] =
        "\n-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n";
    CHECK_INT(ws_jwt_key_new((const uint8_t *)text_then_pem, sizeof text_then_pem - 1, &k, err,
                             sizeof err),
              -EINVAL);
    CHECK(strstr(err, "PEM") != NULL);
}

int main(void)
{
    pem_anywhere();
    test_hs256();
    EVP_PKEY *rsa = gen_rsa(), *ec = gen_ec(NID_X9_62_prime256v1), *ed = gen_ed25519();
    test_public(WS_JWT_RS256, rsa);
    test_public(WS_JWT_ES256, ec);
    test_public(WS_JWT_EDDSA, ed);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(ed);
    test_keys_refused();
    CHECK(strcmp(ws_jwt_refusal_name(WS_JWT_EXPIRED), "expired") == 0);
    return check_exit_status("test_jwt");
}
