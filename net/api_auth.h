/* API keys (--api-key-file): read once at start and kept only as SHA-256 digests; a request's
 * `Authorization: Bearer <key>` is hashed and compared with every digest in constant time, so
 * neither the comparison's time nor a log line says anything about a key. Needs no ring. */
#ifndef URINGWS_NET_API_AUTH_H
#define URINGWS_NET_API_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "uringws/common.h"
#include "uringws/http.h"

#define WS_API_KEY_MIN  16  /* bytes: shorter keys are refused at start */
#define WS_API_KEY_MAX  256 /* bytes of one key */
#define WS_API_KEYS_MAX 64  /* keys in the file */

typedef struct ws_api_keys {
    unsigned n;
    uint8_t digest[WS_API_KEYS_MAX][32];
} ws_api_keys_t;

/* Reads `path` (NULL: *out NULL, the API is off): one key per line, surrounding spaces and
 * a CR trimmed, blank lines and lines starting with '#' skipped. 0, or -errno after logging
 * why (the path, the line number and what is wrong, never a key): -EINVAL for a key shorter
 * than WS_API_KEY_MIN or longer than WS_API_KEY_MAX, more than WS_API_KEYS_MAX keys, or none. */
int ws_api_keys_load(const char *path, ws_api_keys_t **out) WS_WARN_UNUSED;
void ws_api_keys_free(ws_api_keys_t *k);

/* Whether req carries `Authorization: Bearer <one of the keys>` (the scheme in any case). */
bool ws_api_keys_allow(const ws_api_keys_t *k, const ws_http_request_t *req);

#endif
