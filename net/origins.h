/* The --origin allow-list: parsed once at start, read by every core at upgrade. */
#ifndef URINGWS_NET_ORIGINS_H
#define URINGWS_NET_ORIGINS_H

#include <stdbool.h>
#include <stddef.h>

#include "uringws/common.h"
#include "uringws/server.h"

typedef struct ws_origins {
    char *text; /* owned copy of the list; entries point into it */
    unsigned n;
    bool allow_none; /* the entry `none`: upgrades without an Origin header pass */
    const char *entry[WS_ORIGINS_MAX]; /* NUL-terminated, inside text */
} ws_origins_t;

/* Parses a comma-separated list (spaces around entries allowed). With out NULL it only
 * checks. Returns 0, -EINVAL with a reason in err (empty entry, more than WS_ORIGINS_MAX,
 * longer than WS_ORIGIN_LEN, control or space characters inside one), or -ENOMEM. */
int ws_origins_parse(const char *list, ws_origins_t *out, char *err, size_t errlen);
void ws_origins_free(ws_origins_t *o);
/* True when `origin` (the header value; len 0 when the header is absent) is allowed. */
bool ws_origins_allow(const ws_origins_t *o, ws_slice_t origin);

#endif
