/* Connection tokens on the upgrade (net/token.c): the server's key from --token-key, the
 * `?token=` of an upgrade verified against it, and what the token grants the connection
 * (its room, writing into it, its subject, its expiry). Refusals come back as a status for
 * the caller to send; nothing here answers or closes a connection, and no log line or
 * refusal holds the token. Needs no ring. */
#ifndef URINGWS_NET_TOKEN_H
#define URINGWS_NET_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "admission.h"
#include "metrics.h"
#include "uringws/http.h"
#include "uringws/jwt.h"
#include "uringws/server.h"

struct ws_worker;

/* What an admitted upgrade may do. */
typedef struct ws_token_grant {
    bool may_publish; /* --client-publish any, or token and the `publish` claim covers it */
    bool has_token;
    int64_t exp; /* the token's exp (seconds since the epoch); 0 without a token */
    char sub[129];
} ws_token_grant_t;

/* Reads the key file named by cfg->token_key_file (NULL: *out NULL, tokens off). 0, or
 * -errno after logging why (the file's path and the reason, never its bytes). */
int ws_token_key_load(const ws_server_config_t *cfg, ws_jwt_key_t **out) WS_WARN_UNUSED;

/* Decides an upgrade into room[0..len) whose request is req: 0 with *g filled, or -EACCES
 * with *no set (401 for a missing or invalid token, 403 for a room the token does not
 * grant), the refusal counted by reason and logged with the token's subject when known. */
int ws_token_upgrade(struct ws_worker *c, const ws_http_request_t *req, const char *room,
                     size_t len, ws_token_grant_t *g, ws_refusal_t *no);

#endif
