/* API keys (net/api_auth.c) without a server: the key file's rules (comments, blank lines,
 * surrounding spaces, too short, too many, none) and the Authorization header's (Bearer in
 * any case, exactly one header, the whole key and nothing more). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../net/api_auth.h"
#include "check.h"

static char path[64];

static int load_text(const char *text, ws_api_keys_t **k)
{
    FILE *f = fopen(path, "w");
    REQUIRE(f != NULL);
    fputs(text, f);
    fclose(f);
    return ws_api_keys_load(path, k);
}

static bool allowed(const ws_api_keys_t *k, const char *headers)
{
    static char head[1024];
    snprintf(head, sizeof head, "GET /api/rooms HTTP/1.1\r\n%s\r\n", headers);
    ws_http_request_t req;
    REQUIRE_INT(ws_http_parse_request((const uint8_t *)head, strlen(head), 0, NULL, &req), 0);
    return ws_api_keys_allow(k, &req);
}

int main(void)
{
    snprintf(path, sizeof path, "/tmp/test_api_auth.%d", (int)getpid());
    ws_api_keys_t *k = NULL;
    CHECK_INT(ws_api_keys_load(NULL, &k), 0);
    CHECK(k == NULL);
    CHECK(!allowed(NULL, "Authorization: Bearer anything-at-all-here\r\n"));
    REQUIRE_INT(load_text("# keys\n\n  first-key-0123456789  \r\nsecond-key-0123456789\n", &k), 0);
    REQUIRE(k != NULL);
    CHECK_INT(k->n, 2);
    CHECK(allowed(k, "Authorization: Bearer first-key-0123456789\r\n"));
    CHECK(allowed(k, "authorization: bearer second-key-0123456789\r\n"));
    CHECK(allowed(k, "Authorization: BEARER   second-key-0123456789\r\n"));
    CHECK(!allowed(k, "Authorization: Bearer first-key-012345678\r\n"));   /* one byte short */
    CHECK(!allowed(k, "Authorization: Bearer first-key-0123456789x\r\n")); /* one byte more */
    CHECK(!allowed(k, "Authorization: Basic first-key-0123456789\r\n"));
    CHECK(!allowed(k, "Authorization: first-key-0123456789\r\n"));
    CHECK(!allowed(k, "Authorization: Bearer\r\n"));
    CHECK(!allowed(k, ""));
    CHECK(!allowed(k, "Authorization: Bearer first-key-0123456789\r\n"
                      "Authorization: Bearer first-key-0123456789\r\n"));
    CHECK(!allowed(k, "X-Authorization: Bearer first-key-0123456789\r\n"));
    ws_api_keys_free(k);

    k = (ws_api_keys_t *)1;
    CHECK_INT(load_text("short\n", &k), -EINVAL);
    CHECK(k == NULL);
    CHECK_INT(load_text("# only a comment\n\n", &k), -EINVAL);
    CHECK_INT(load_text("", &k), -EINVAL);
    static char many[65 * 32];
    size_t n = 0;
    for (int i = 0; i < 65; i++)
        n += (size_t)snprintf(many + n, sizeof many - n, "key-number-%04d-xxxxxx\n", i);
    CHECK_INT(load_text(many, &k), -EINVAL);
    unlink(path);
    CHECK_INT(ws_api_keys_load(path, &k), -ENOENT);
    return check_exit_status("test_net_api_auth");
}
