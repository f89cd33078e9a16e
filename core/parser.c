/* Incremental WebSocket message parser (RFC 6455 5.2-5.6, 8.1): frames in, messages out,
 * over chunks cut at any byte. Unmasks in place in the caller's chunk, delivers a message
 * that is one frame lying wholly in the chunk as a slice of that chunk, and copies only what
 * spans chunks or frames into the reassembly buffer. It does no I/O and keeps no pointer
 * into a chunk after ws_parser_feed returns. */
#include "uringws/parser.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "uringws/mask.h"

/* First reassembly allocation; doubled from there up to max_message. */
#define WS_PARSER_BUF_MIN 256

void ws_parser_init(ws_parser_t *ps, const ws_parser_config_t *cfg)
{
    memset(ps, 0, sizeof(*ps));
    if (cfg) {
        ps->cfg = *cfg;
    } else {
        ps->cfg.frame_flags = WS_FRAME_REQUIRE_MASK;
    }
    if (ps->cfg.max_message == 0)
        ps->cfg.max_message = WS_MAX_MESSAGE_DEFAULT;
    /* The reassembly buffer is addressed with size_t; on 64-bit this changes nothing. */
    if (ps->cfg.max_message > SIZE_MAX)
        ps->cfg.max_message = SIZE_MAX;
    ps->cfg.frame_flags &= ~(unsigned)WS_FRAME_ALLOW_RSV1;
}

void ws_parser_free(ws_parser_t *ps)
{
    free(ps->msg_buf);
    ps->msg_buf = NULL;
    ps->msg_len = ps->msg_cap = 0;
}

unsigned ws_parser_close_reply_code(unsigned code)
{
    if (code == WS_CLOSE_NO_STATUS)
        return WS_CLOSE_NORMAL;
    /* The parser never delivers an invalid code; anything else reaching here is a caller's
     * mistake, and 1002 is the answer the peer would have earned. */
    return ws_frame_close_code_valid(code) ? code : WS_CLOSE_PROTOCOL_ERROR;
}

/* Records a sticky protocol error (the close code to answer with) and returns -EPROTO. */
static int fail(ws_parser_t *ps, unsigned close_code)
{
    ps->close_code = (uint16_t)close_code;
    ps->error = -EPROTO;
    return -EPROTO;
}

/* Records the sticky out-of-memory error (answered with 1011). */
static int fail_nomem(ws_parser_t *ps)
{
    ps->close_code = WS_CLOSE_INTERNAL;
    ps->error = -ENOMEM;
    return -ENOMEM;
}

/* Collects the header at p[*pos..n), joining bytes held from earlier chunks. Returns 0 with
 * ps->frame filled and *pos past the header, WS_INCOMPLETE with every byte kept in hdr_buf
 * (*pos = n), or a sticky error. */
static int read_header(ws_parser_t *ps, const uint8_t *p, size_t n, size_t *pos)
{
    unsigned flags = ps->cfg.frame_flags;
    size_t avail = n - *pos;
    if (ps->hdr_have == 0) {
        int r = ws_frame_header_parse(p + *pos, avail, flags, &ps->frame);
        if (WS_LIKELY(r > 0)) {
            *pos += (size_t)r;
            return 0;
        }
        if (r != WS_INCOMPLETE)
            return fail(ps, WS_CLOSE_PROTOCOL_ERROR);
        assert(avail < WS_FRAME_HEADER_MAX);
        memcpy(ps->hdr_buf, p + *pos, avail);
        ps->hdr_have = (uint8_t)avail;
        *pos = n;
        return WS_INCOMPLETE;
    }
    size_t have = ps->hdr_have;
    size_t take = WS_FRAME_HEADER_MAX - have;
    if (take > avail)
        take = avail;
    memcpy(ps->hdr_buf + have, p + *pos, take);
    int r = ws_frame_header_parse(ps->hdr_buf, have + take, flags, &ps->frame);
    if (r == WS_INCOMPLETE) {
        ps->hdr_have = (uint8_t)(have + take);
        *pos = n;
        return WS_INCOMPLETE;
    }
    if (r < 0)
        return fail(ps, WS_CLOSE_PROTOCOL_ERROR);
    /* The previous attempt on `have` bytes was incomplete, so the header is longer. */
    assert((size_t)r > have);
    *pos += (size_t)r - have;
    ps->hdr_have = 0;
    return 0;
}

/* Checks a complete header against the message state, before any payload is accepted. */
static int frame_begin(ws_parser_t *ps)
{
    const ws_frame_header_t *f = &ps->frame;
    ps->in_frame = true;
    ps->frame_done = 0;
    if (ws_opcode_is_control(f->opcode)) {
        /* 5.5.1: a close body starts with a 2-byte code, so 1 byte can never be valid. */
        if (f->opcode == WS_OP_CLOSE && f->payload_len == 1)
            return fail(ps, WS_CLOSE_PROTOCOL_ERROR);
        ps->ctl_len = 0;
        return 0;
    }
    uint64_t max = ps->cfg.max_message;
    if (f->opcode == WS_OP_CONT) {
        if (ps->msg_opcode == 0)
            return fail(ps, WS_CLOSE_PROTOCOL_ERROR);
        if (f->payload_len > max - ps->msg_len)
            return fail(ps, WS_CLOSE_TOO_BIG);
        return 0;
    }
    /* 5.4: fragments of one message are not interleaved with another data message. */
    if (ps->msg_opcode != 0)
        return fail(ps, WS_CLOSE_PROTOCOL_ERROR);
    if (f->payload_len > max)
        return fail(ps, WS_CLOSE_TOO_BIG);
    ps->msg_opcode = f->opcode;
    ps->msg_len = 0;
    if (f->opcode == WS_OP_TEXT)
        ws_utf8_init(&ps->utf8);
    return 0;
}

/* Appends to the reassembly buffer, doubling it as bytes arrive rather than reserving the
 * declared length up front: a header alone never costs memory, and the buffer stays under
 * twice the bytes received. frame_begin already bounded msg_len + len by max_message. */
static int buf_append(ws_parser_t *ps, const uint8_t *data, size_t len)
{
    size_t need = ps->msg_len + len;
    size_t max = (size_t)ps->cfg.max_message;
    assert(need <= max);
    if (need > ps->msg_cap) {
        size_t cap = ps->msg_cap ? ps->msg_cap : WS_PARSER_BUF_MIN;
        while (cap < need && cap <= max / 2)
            cap *= 2;
        if (cap < need || cap > max)
            cap = max;
        uint8_t *nb = realloc(ps->msg_buf, cap);
        if (nb == NULL)
            return fail_nomem(ps);
        ps->msg_buf = nb;
        ps->msg_cap = cap;
    }
    memcpy(ps->msg_buf + ps->msg_len, data, len);
    ps->msg_len = need;
    return 0;
}

/* Delivers the data message that just ended. */
static int message_end(ws_parser_t *ps, const uint8_t *payload, size_t len,
                       const ws_parser_callbacks_t *cb, void *ud)
{
    uint8_t op = ps->msg_opcode;
    if (op == WS_OP_TEXT && !ws_utf8_complete(&ps->utf8))
        return fail(ps, WS_CLOSE_INVALID_PAYLOAD);
    ps->msg_opcode = 0;
    ps->msg_len = 0;
    int rc = cb->on_message ? cb->on_message(ud, op, payload, len) : 0;
    /* After the callback: payload may point into the buffer. */
    if (ps->msg_cap > ps->cfg.buf_keep) {
        free(ps->msg_buf);
        ps->msg_buf = NULL;
        ps->msg_cap = 0;
    }
    return rc;
}

/* Takes the next `take` unmasked payload bytes of a data frame; `whole` when they are the
 * frame's entire payload. */
static int data_bytes(ws_parser_t *ps, const uint8_t *data, size_t take, bool whole,
                      const ws_parser_callbacks_t *cb, void *ud)
{
    /* 8.1 fail fast: refuse at the first byte that no valid continuation could follow. */
    if (ps->msg_opcode == WS_OP_TEXT && take && !ws_utf8_feed(&ps->utf8, data, take))
        return fail(ps, WS_CLOSE_INVALID_PAYLOAD);
    if (whole && ps->frame.fin && ps->msg_len == 0) {
        /* Zero copy: the message is exactly this payload, in the caller's chunk. */
        ps->in_frame = false;
        return message_end(ps, data, take, cb, ud);
    }
    if (take) {
        int rc = buf_append(ps, data, take);
        if (rc)
            return rc;
    }
    if (ps->frame_done < ps->frame.payload_len)
        return 0;
    ps->in_frame = false;
    if (!ps->frame.fin)
        return 0;
    return message_end(ps, ps->msg_buf, ps->msg_len, cb, ud);
}

static int close_frame(ws_parser_t *ps, const uint8_t *payload, size_t len,
                       const ws_parser_callbacks_t *cb, void *ud)
{
    unsigned code = WS_CLOSE_NO_STATUS;
    const uint8_t *reason = NULL;
    size_t rlen = 0;
    if (len >= 2) {
        code = ((unsigned)payload[0] << 8) | payload[1];
        if (!ws_frame_close_code_valid(code) && !(code && code == ps->sent_close))
            return fail(ps, WS_CLOSE_PROTOCOL_ERROR);
        reason = payload + 2;
        rlen = len - 2;
        if (!ws_utf8_valid(reason, rlen))
            return fail(ps, WS_CLOSE_INVALID_PAYLOAD);
    }
    ps->closed = true;
    ps->close_code = WS_CLOSE_NORMAL;
    ps->error = WS_PARSER_CLOSED;
    return cb->on_close ? cb->on_close(ud, code, reason, rlen) : 0;
}

/* Takes the next `take` unmasked payload bytes of a control frame. A payload wholly in the
 * chunk is delivered in place; one cut across chunks is gathered in ctl_buf (at most 125
 * bytes, checked by the header parser). */
static int control_bytes(ws_parser_t *ps, const uint8_t *data, size_t take, bool whole,
                         const ws_parser_callbacks_t *cb, void *ud)
{
    const uint8_t *payload = data;
    size_t len = take;
    if (!whole) {
        memcpy(ps->ctl_buf + ps->ctl_len, data, take);
        ps->ctl_len = (uint8_t)(ps->ctl_len + take);
        if (ps->frame_done < ps->frame.payload_len)
            return 0;
        payload = ps->ctl_buf;
        len = ps->ctl_len;
    }
    ps->in_frame = false;
    ps->ctl_len = 0;
    if (ps->frame.opcode == WS_OP_CLOSE)
        return close_frame(ps, payload, len, cb, ud);
    return cb->on_control ? cb->on_control(ud, ps->frame.opcode, payload, len) : 0;
}

int ws_parser_feed(ws_parser_t *ps, uint8_t *p, size_t n, size_t *consumed,
                   const ws_parser_callbacks_t *cb, void *ud)
{
    size_t pos = 0;
    int rc = ps->error;
    if (rc || n == 0)
        goto out;
    for (;;) {
        if (!ps->in_frame) {
            if (pos == n)
                break;
            rc = read_header(ps, p, n, &pos);
            if (rc == WS_INCOMPLETE) {
                rc = 0;
                break;
            }
            if (rc)
                break;
            rc = frame_begin(ps);
            if (rc)
                break;
        }
        /* A frame with an empty payload goes through here too, even at the chunk's end,
         * so it is delivered by the feed that completes its header. */
        uint64_t left = ps->frame.payload_len - ps->frame_done;
        size_t take = left < n - pos ? (size_t)left : n - pos;
        bool whole = ps->frame_done == 0 && take == left;
        uint8_t *data = p + pos;
        if (take && ps->frame.masked)
            ws_mask(data, take, ps->frame.mask, ps->frame_done);
        pos += take;
        ps->frame_done += take;
        if (ws_opcode_is_control(ps->frame.opcode))
            rc = control_bytes(ps, data, take, whole, cb, ud);
        else
            rc = data_bytes(ps, data, take, whole, cb, ud);
        /* Negative only as one of our own sticky errors: a callback stops with a positive. */
        assert(rc >= 0 || rc == ps->error);
        if (ps->closed) {
            /* Bytes after a close frame are not parsed (5.5.1: no data after a close). */
            if (rc == 0 && pos < n)
                rc = WS_PARSER_CLOSED;
            break;
        }
        if (rc)
            break;
        if (pos == n && ps->in_frame)
            break;
    }
out:
    if (consumed)
        *consumed = pos;
    return rc;
}
