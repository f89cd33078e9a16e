/* Disconnect orders (net/disconnect.h). The order's block holds its close code (2 bytes, big
 * endian), the reason's length (1 byte), the reason and the subject. */
#include "disconnect.h"

#include <errno.h>
#include <string.h>

#include "conn.h"
#include "log.h"
#include "worker.h"
#include "uringws/block.h"
#include "uringws/frame.h"

/* This core's connections of the subject, closed; how many. */
static long close_local(ws_worker_t *c, const uint8_t *sub, size_t len, unsigned code,
                        const char *reason)
{
    long n = 0;
    for (uint32_t i = 0; i < c->nslots; i++) {
        ws_conn_t *conn = c->slots[i].conn;
        if (!conn || conn->state != WS_CONN_OPEN || !conn->sub || strlen(conn->sub) != len ||
            memcmp(conn->sub, sub, len) != 0)
            continue;
        ws_log_verbose("conn %u: disconnected by the API (sub %s), closing with %u", conn->idx,
                       conn->sub, code);
        ws_conn_close(c, conn, code, reason, false);
        n++;
    }
    return n;
}

long ws_disconnect_sub(ws_worker_t *c, const char *sub, size_t len, unsigned code,
                       const char *reason, size_t reason_len)
{
    char why[WS_DISCONNECT_REASON_MAX + 1];
    if (reason_len > WS_DISCONNECT_REASON_MAX)
        reason_len = WS_DISCONNECT_REASON_MAX;
    memcpy(why, reason, reason_len);
    why[reason_len] = '\0';
    if (c->ncores > 1) {
        uint8_t order[3 + WS_DISCONNECT_REASON_MAX + 129];
        if (len > 128)
            return -EINVAL;
        order[0] = (uint8_t)(code >> 8);
        order[1] = (uint8_t)code;
        order[2] = (uint8_t)reason_len;
        memcpy(order + 3, reason, reason_len);
        memcpy(order + 3 + reason_len, sub, len);
        ws_block_t *b = ws_block_frame(WS_OP_BINARY, order, 3 + reason_len + len);
        if (!b)
            return -ENOMEM;
        ws_block_ref(b, c->ncores - 2); /* one per other core */
        for (unsigned d = 0; d < c->ncores; d++) {
            if (d == c->id)
                continue;
            ws_xev_t ev = {.type = WS_XEV_DISCONNECT, .src = (uint16_t)c->id, .block = b};
            ws_worker_xpush(c, d, &ev);
        }
    }
    return close_local(c, (const uint8_t *)sub, len, code, why);
}

void ws_disconnect_on_event(ws_worker_t *c, const ws_xev_t *ev)
{
    const ws_block_t *b = ev->block;
    const uint8_t *p = b->data + b->header_len;
    size_t n = b->len - b->header_len;
    char why[WS_DISCONNECT_REASON_MAX + 1];
    size_t rl = p[2];
    memcpy(why, p + 3, rl);
    why[rl] = '\0';
    close_local(c, p + 3 + rl, n - 3 - rl, (unsigned)p[0] << 8 | p[1], why);
    ws_block_unref(ev->block);
}
