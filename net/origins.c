/* The origin allow-list. See origins.h. */
#include "origins.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uringws/http.h"

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t';
}

int ws_origins_parse(const char *list, ws_origins_t *out, char *err, size_t errlen)
{
    ws_origins_t o;
    memset(&o, 0, sizeof(o));
    const char *why = NULL;
    size_t total = strlen(list);
    /* A copy even for a check only: entries are cut out of it in place (NUL-terminated). */
    o.text = malloc(total + 1);
    if (!o.text)
        return -ENOMEM;
    memcpy(o.text, list, total + 1);
    char *base = o.text;
    size_t i = 0;
    for (;;) {
        size_t b = i, e;
        while (b < total && is_space(base[b]))
            b++;
        e = b;
        while (e < total && base[e] != ',')
            e++;
        size_t next = e;
        while (e > b && is_space(base[e - 1]))
            e--;
        if (e == b) {
            why = "origin: empty entry in the list";
            break;
        }
        if (e - b > WS_ORIGIN_LEN) {
            why = "origin: an entry is longer than 256 bytes";
            break;
        }
        for (size_t k = b; k < e && !why; k++) {
            unsigned char ch = (unsigned char)base[k];
            if (ch <= 0x20 || ch == 0x7f)
                why = "origin: an entry holds a space or control character";
        }
        if (why)
            break;
        base[e] = '\0';
        if (strcmp(base + b, "none") == 0) {
            o.allow_none = true;
        } else {
            if (o.n == WS_ORIGINS_MAX) {
                why = "origin: more than 64 entries";
                break;
            }
            o.entry[o.n++] = base + b;
        }
        if (next >= total)
            break;
        i = next + 1;
    }
    if (why) {
        if (err && errlen)
            snprintf(err, errlen, "%s", why);
    }
    if (why || !out) {
        free(o.text);
        return why ? -EINVAL : 0;
    }
    *out = o;
    return 0;
}

void ws_origins_free(ws_origins_t *o)
{
    free(o->text);
    memset(o, 0, sizeof(*o));
}

bool ws_origins_allow(const ws_origins_t *o, ws_slice_t origin)
{
    if (origin.len == 0)
        return o->allow_none;
    for (unsigned i = 0; i < o->n; i++) {
        if (strlen(o->entry[i]) == origin.len && ws_http_eq_ci(origin, o->entry[i]))
            return true;
    }
    return false;
}
