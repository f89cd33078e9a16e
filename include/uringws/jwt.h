/* Connection tokens: JSON Web Tokens (RFC 7519) in compact JWS form (RFC 7515), verified
 * with one key through BoringSSL's libcrypto, claims read with jansson. The key decides the
 * one algorithm a token may use: an HS256 secret, or a PEM public key that is RSA (RS256),
 * EC P-256 (ES256) or Ed25519 (EdDSA). A token naming any other `alg` (`none` included) is
 * refused, so an HS256 token cannot be verified with a public key taken for a secret
 * ("algorithm confusion").
 *
 * No I/O: the caller reads the key file. Refusals come back as -EACCES with the reason in an
 * out-parameter; nothing here logs, and no refusal text quotes the token. */
#ifndef URINGWS_JWT_H
#define URINGWS_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uringws/common.h"

#ifdef __cplusplus
extern "C" {
#endif

enum ws_jwt_alg {
    WS_JWT_HS256 = 1,
    WS_JWT_RS256,
    WS_JWT_ES256,
    WS_JWT_EDDSA,
};

/* Why a token was refused (metrics label, log word: see ws_jwt_refusal_name). */
enum ws_jwt_refusal {
    WS_JWT_OK = 0,
    WS_JWT_MALFORMED, /* not three base64url parts, bad base64, not a JSON object, bad claim type */
    WS_JWT_ALG,       /* alg missing, `none`, or not the key's algorithm; `crit` present */
    WS_JWT_SIGNATURE, /* the signature does not verify */
    WS_JWT_NO_EXP,    /* no numeric `exp` claim */
    WS_JWT_EXPIRED,   /* now >= exp + leeway */
    WS_JWT_NOT_YET,   /* now + leeway < nbf, or iat in the future beyond the leeway */
    WS_JWT_ISSUER,    /* `iss` is not the configured issuer */
    WS_JWT_AUDIENCE,  /* `aud` (string or array) does not hold the configured audience */
    WS_JWT_REFUSAL_COUNT,
};

/* "malformed", "algorithm", "signature", "no_exp", "expired", "not_yet_valid", "issuer",
 * "audience" ("ok" for WS_JWT_OK). */
const char *ws_jwt_refusal_name(enum ws_jwt_refusal r);

typedef struct ws_jwt_key ws_jwt_key_t;

/* Makes a key from a key file's bytes: a "-----BEGIN PUBLIC KEY-----" PEM (RSA of 2048 bits
 * or more, EC on P-256, or Ed25519), else an HS256 secret (the bytes, less one trailing
 * newline; at least 32 bytes, RFC 7518 3.2). 0, -EINVAL with a reason in err (never the
 * key's bytes), or -ENOMEM. */
int ws_jwt_key_new(const uint8_t *data, size_t len, ws_jwt_key_t **out, char *err,
                   size_t errlen) WS_WARN_UNUSED;
void ws_jwt_key_free(ws_jwt_key_t *k);
enum ws_jwt_alg ws_jwt_key_alg(const ws_jwt_key_t *k);
/* "HS256", "RS256", "ES256", "EdDSA" */
const char *ws_jwt_alg_name(enum ws_jwt_alg a);

typedef struct ws_jwt_check {
    int64_t now;          /* seconds since the epoch */
    int64_t leeway;       /* seconds of clock skew allowed on exp, nbf and iat */
    const char *issuer;   /* NULL: `iss` not checked */
    const char *audience; /* NULL: `aud` not checked */
} ws_jwt_check_t;

/* The claims of a verified token that the server acts on. */
typedef struct ws_jwt_claims {
    int64_t exp;    /* seconds since the epoch */
    char sub[129];  /* `sub`, NUL-terminated; empty when absent (longer ones are refused) */
    bool has_rooms; /* a `rooms` claim was present */
    bool has_publish;
    void *json; /* the payload object (jansson), owned: ws_jwt_claims_free */
} ws_jwt_claims_t;

/* Verifies the compact token tok[0..len) with key k under `chk`: 0 with *claims filled (free
 * them with ws_jwt_claims_free), -EACCES with *why set, or -ENOMEM. */
int ws_jwt_verify(const ws_jwt_key_t *k, const char *tok, size_t len, const ws_jwt_check_t *chk,
                  ws_jwt_claims_t *claims, enum ws_jwt_refusal *why) WS_WARN_UNUSED;
void ws_jwt_claims_free(ws_jwt_claims_t *claims);

/* Whether the claim `name` ("rooms" or "publish"), a list of room patterns, grants the room
 * room[0..len). A pattern is an exact name, `*` (every room) or `prefix/` followed by `*`
 * (every room whose name starts with `prefix/`, at any depth). False when the claim is
 * absent. */
bool ws_jwt_grants(const ws_jwt_claims_t *claims, const char *name, const char *room, size_t len);

#ifdef __cplusplus
}
#endif

#endif
