/* Connection tokens (net/token.h): the key file read once at start, and each upgrade's
 * `?token=` verified (core/jwt.c) and turned into a grant. Without --token-key a token in
 * the URL is not looked at; with it, an upgrade without one is admitted only when
 * --require-token is off, and then writes only under --client-publish any. */
#include "token.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "worker.h"
#include "server_internal.h"

/* A key file is small: a secret or one PEM public key. */
#define KEY_FILE_MAX 65536

int ws_token_key_load(const ws_server_config_t *cfg, ws_jwt_key_t **out)
{
    *out = NULL;
    if (!cfg->token_key_file)
        return 0;
    int fd = open(cfg->token_key_file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        ws_log_error("--token-key %s: %s", cfg->token_key_file, strerror(e));
        return -e;
    }
    uint8_t *buf = malloc(KEY_FILE_MAX);
    ssize_t n = buf ? read(fd, buf, KEY_FILE_MAX) : -1;
    int e = n < 0 ? (buf ? errno : ENOMEM) : 0;
    close(fd);
    if (n < 0 || n == KEY_FILE_MAX) {
        ws_log_error("--token-key %s: %s", cfg->token_key_file,
                     n < 0 ? strerror(e) : "larger than 64 KiB, not a key");
        free(buf);
        return n < 0 ? -e : -EINVAL;
    }
    char err[160];
    int rc = ws_jwt_key_new(buf, (size_t)n, out, err, sizeof(err));
    explicit_bzero(buf, KEY_FILE_MAX);
    free(buf);
    if (rc < 0)
        ws_log_error("--token-key %s: %s", cfg->token_key_file,
                     rc == -ENOMEM ? "out of memory" : err);
    else
        ws_log_info("tokens: %s key from %s", ws_jwt_alg_name(ws_jwt_key_alg(*out)),
                    cfg->token_key_file);
    return rc;
}

static int refuse(ws_worker_t *c, unsigned reason, const char *sub, ws_refusal_t *no)
{
    ws_metric_inc(&c->m->token_refusals[reason]);
    no->status = reason == WS_TOKEN_ROOM ? 403 : 401;
    no->why = reason == WS_TOKEN_MISSING ? "token required"
              : reason == WS_TOKEN_ROOM  ? "room not granted by the token"
                                         : "invalid token";
    ws_log_verbose("upgrade refused: token %s%s%s", ws_metrics_token_refusal_name(reason),
                   sub && sub[0] ? ", sub " : "", sub ? sub : "");
    return -EACCES;
}

/* Fills *g from a token present in the request; 0 or a refusal. */
static int verify(ws_worker_t *c, const char *tok, size_t tlen, const char *room, size_t len,
                  ws_token_grant_t *g, ws_refusal_t *no)
{
    const ws_server_config_t *cfg = c->cfg;
    ws_jwt_check_t chk = {
        .now = (int64_t)time(NULL),
        .leeway = cfg->token_leeway_s,
        .issuer = cfg->token_issuer,
        .audience = cfg->token_audience,
    };
    ws_jwt_claims_t cl;
    enum ws_jwt_refusal why;
    int rc = ws_jwt_verify(c->srv->token_key, tok, tlen, &chk, &cl, &why);
    if (rc == -ENOMEM) {
        no->status = 503;
        no->why = "out of memory";
        return rc;
    }
    if (rc < 0)
        return refuse(c, why, NULL, no);
    if (!ws_jwt_grants(&cl, "rooms", room, len)) {
        rc = refuse(c, WS_TOKEN_ROOM, cl.sub, no);
        ws_jwt_claims_free(&cl);
        return rc;
    }
    g->has_token = true;
    g->exp = cl.exp;
    memcpy(g->sub, cl.sub, sizeof(g->sub));
    g->may_publish = cfg->client_publish == WS_CLIENT_PUBLISH_ANY ||
                     (cfg->client_publish == WS_CLIENT_PUBLISH_TOKEN &&
                      ws_jwt_grants(&cl, "publish", room, len));
    ws_jwt_claims_free(&cl);
    return 0;
}

int ws_token_upgrade(ws_worker_t *c, const ws_http_request_t *req, const char *room, size_t len,
                     ws_token_grant_t *g, ws_refusal_t *no)
{
    const ws_server_config_t *cfg = c->cfg;
    memset(g, 0, sizeof(*g));
    g->may_publish = cfg->client_publish == WS_CLIENT_PUBLISH_ANY;
    if (!c->srv->token_key)
        return 0;
    char *tok = malloc(req->target.len + 1);
    if (!tok) {
        no->status = 503;
        no->why = "out of memory";
        return -ENOMEM;
    }
    long tlen = ws_http_query_param(req->target, "token", tok, req->target.len);
    int rc;
    if (tlen < 0)
        rc = refuse(c, WS_JWT_MALFORMED, NULL, no);
    else if (tlen == 0)
        rc = cfg->require_token ? refuse(c, WS_TOKEN_MISSING, NULL, no) : 0;
    else
        rc = verify(c, tok, (size_t)tlen, room, len, g, no);
    explicit_bzero(tok, req->target.len + 1);
    free(tok);
    return rc;
}
