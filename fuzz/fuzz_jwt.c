/* libFuzzer driver for connection tokens (core/jwt.c) and room grants.
 *
 * The first byte picks what the rest is: a whole compact token (verified as it is: a
 * random signature never verifies, so this reaches the splitting, base64 and header checks),
 * or a header or payload that the driver signs with the HS256 test key, so that the claims
 * parser and the exp/nbf/iat/iss/aud rules run on arbitrary JSON behind a valid signature.
 * Invariants: the result is 0 or -EACCES with a reason in range (-ENOMEM aside); a verified
 * token has its exp and a subject of at most 128 bytes; ws_jwt_grants on a verified token
 * answers for a room taken from the input without reading past it. Any breach aborts. */
#include "uringws/jwt.h"

#include <errno.h>
#include <openssl/base64.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "fuzz_jwt: " __VA_ARGS__);                                                 \
        fputc('\n', stderr);                                                                       \
        abort();                                                                                   \
    } while (0)

static const uint8_t secret[] = "fuzz-jwt-secret-0123456789abcdef";
static ws_jwt_key_t *key;

/* base64url without padding of in[0..n) at out; its length. */
static size_t b64url(const uint8_t *in, size_t n, char *out)
{
    size_t len = 0;
    if (!EVP_EncodedLength(&len, n))
        abort();
    size_t w = EVP_EncodeBlock((uint8_t *)out, in, n);
    for (size_t i = 0; i < w; i++)
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    while (w && out[w - 1] == '=')
        w--;
    return w;
}

/* header.payload signed with the HS256 key, into a malloc'd buffer. */
static char *signed_token(const uint8_t *hdr, size_t hn, const uint8_t *pl, size_t pn, size_t *len)
{
    char *t = malloc(2 * (hn + pn) + 128);
    if (!t)
        abort();
    size_t n = b64url(hdr, hn, t);
    t[n++] = '.';
    n += b64url(pl, pn, t + n);
    uint8_t mac[32];
    unsigned ml = 0;
    if (!HMAC(EVP_sha256(), secret, sizeof secret - 1, (const uint8_t *)t, n, mac, &ml))
        abort();
    t[n++] = '.';
    n += b64url(mac, ml, t + n);
    *len = n;
    return t;
}

static void verify(const char *tok, size_t len, const uint8_t *room, size_t room_len)
{
    char *exact = malloc(len ? len : 1);
    if (!exact)
        abort();
    memcpy(exact, tok, len);
    ws_jwt_check_t chk = {.now = 1700000000,
                          .leeway = 5,
                          .issuer = (len & 1) ? "iss" : NULL,
                          .audience = (len & 2) ? "aud" : NULL};
    ws_jwt_claims_t cl;
    enum ws_jwt_refusal why = WS_JWT_REFUSAL_COUNT;
    int rc = ws_jwt_verify(key, exact, len, &chk, &cl, &why);
    if (rc == 0) {
        if (cl.exp + chk.leeway <= chk.now || strlen(cl.sub) > 128)
            FAIL("verified token with exp %lld, sub of %zu bytes", (long long)cl.exp,
                 strlen(cl.sub));
        char *r = malloc(room_len ? room_len : 1);
        if (!r)
            abort();
        memcpy(r, room, room_len);
        bool a = ws_jwt_grants(&cl, "rooms", r, room_len);
        bool b = ws_jwt_grants(&cl, "publish", r, room_len);
        if ((a && !cl.has_rooms) || (b && !cl.has_publish))
            FAIL("a grant from an absent claim");
        free(r);
        ws_jwt_claims_free(&cl);
    } else if (rc == -EACCES) {
        if (why <= WS_JWT_OK || why >= WS_JWT_REFUSAL_COUNT)
            FAIL("refusal without a reason (%d)", (int)why);
    } else if (rc != -ENOMEM) {
        FAIL("verify returned %d", rc);
    }
    free(exact);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!key) {
        char err[128];
        if (ws_jwt_key_new(secret, sizeof secret - 1, &key, err, sizeof err) < 0)
            FAIL("test key: %s", err);
    }
    if (size < 2)
        return 0;
    size_t room_len = data[1] % 17 < size - 2 ? data[1] % 17 : size - 2;
    const uint8_t *room = data + 2, *rest = data + 2 + room_len;
    size_t n = size - 2 - room_len;
    static const char hs256[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    static const char payload[] = "{\"exp\":1800000000,\"rooms\":[\"a/*\"],\"sub\":\"s\"}";
    size_t len;
    char *t;
    switch (data[0] % 3) {
    case 0:
        verify((const char *)rest, n, room, room_len);
        return 0;
    case 1:
        t = signed_token((const uint8_t *)hs256, sizeof hs256 - 1, rest, n, &len);
        break;
    default:
        t = signed_token(rest, n, (const uint8_t *)payload, sizeof payload - 1, &len);
        break;
    }
    verify(t, len, room, room_len);
    free(t);
    return 0;
}
