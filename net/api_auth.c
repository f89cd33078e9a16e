/* API keys (net/api_auth.h). */
#include "api_auth.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/mem.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#define KEY_FILE_MAX (1u << 20)

/* The file's bytes (NUL-terminated) into a malloc'd buffer of KEY_FILE_MAX + 1. */
static int read_file(const char *path, char **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char *buf = malloc(KEY_FILE_MAX + 1);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, KEY_FILE_MAX + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            free(buf);
            return -e;
        }
        if (r == 0 || (n += (size_t)r) > KEY_FILE_MAX)
            break;
    }
    close(fd);
    if (n > KEY_FILE_MAX) {
        explicit_bzero(buf, KEY_FILE_MAX + 1);
        free(buf);
        return -EFBIG;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

static bool is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r';
}

/* Each line's key into k; -EINVAL after logging which line is wrong. */
static int parse(const char *path, char *text, size_t len, ws_api_keys_t *k)
{
    unsigned line = 0;
    for (char *p = text, *end = text + len; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *e = nl ? nl : end, *s = p;
        p = e + 1;
        line++;
        while (s < e && is_blank(*s))
            s++;
        while (e > s && is_blank(e[-1]))
            e--;
        if (s == e || *s == '#')
            continue;
        size_t n = (size_t)(e - s);
        const char *why = n < WS_API_KEY_MIN        ? "shorter than 16 bytes"
                          : n > WS_API_KEY_MAX      ? "longer than 256 bytes"
                          : k->n == WS_API_KEYS_MAX ? "more than 64 keys"
                                                    : NULL;
        if (why) {
            ws_log_error("--api-key-file %s: line %u: key %s", path, line, why);
            return -EINVAL;
        }
        SHA256((const uint8_t *)s, n, k->digest[k->n++]);
    }
    if (k->n == 0) {
        ws_log_error("--api-key-file %s: no key in it", path);
        return -EINVAL;
    }
    return 0;
}

int ws_api_keys_load(const char *path, ws_api_keys_t **out)
{
    *out = NULL;
    if (!path)
        return 0;
    char *text = NULL;
    size_t len = 0;
    int rc = read_file(path, &text, &len);
    if (rc < 0) {
        ws_log_error("--api-key-file %s: %s", path,
                     rc == -EFBIG ? "larger than 1 MiB" : strerror(-rc));
        return rc;
    }
    ws_api_keys_t *k = calloc(1, sizeof(*k));
    rc = k ? parse(path, text, len, k) : -ENOMEM;
    explicit_bzero(text, len);
    free(text);
    if (rc < 0) {
        free(k);
        return rc;
    }
    ws_log_info("api: %u key%s from %s", k->n, k->n == 1 ? "" : "s", path);
    *out = k;
    return 0;
}

void ws_api_keys_free(ws_api_keys_t *k)
{
    if (k)
        explicit_bzero(k, sizeof(*k));
    free(k);
}

bool ws_api_keys_allow(const ws_api_keys_t *k, const ws_http_request_t *req)
{
    if (!k || ws_http_count(req, "Authorization") != 1)
        return false;
    ws_slice_t v = ws_http_find(req, "Authorization")->value;
    if (v.len < 8 || !ws_http_eq_ci((ws_slice_t){v.base, 7}, "Bearer "))
        return false;
    const uint8_t *key = v.base + 7;
    size_t n = v.len - 7;
    while (n && (*key == ' ' || *key == '\t')) {
        key++;
        n--;
    }
    uint8_t d[32];
    SHA256(key, n, d);
    /* Every digest is compared, whatever matched: the time says nothing about which. */
    int miss = 1;
    for (unsigned i = 0; i < k->n; i++)
        miss &= CRYPTO_memcmp(d, k->digest[i], sizeof(d)) != 0;
    explicit_bzero(d, sizeof(d));
    return !miss;
}
