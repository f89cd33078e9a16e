/* Unit test for core/parser.c: the RFC 6455 5.7 examples, every rejection with its close
 * code, zero copy and in-place unmasking, callback stop and resume, and the property that
 * any way of cutting a stream into chunks (every single cut, random 3-way cuts, byte by
 * byte) gives exactly the callbacks and result of feeding it at once. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uringws/frame.h"
#include "uringws/mask.h"
#include "uringws/parser.h"

#include "check.h"

/* How a stream ended: what ws_parser_feed returned and, after an error or a close, the close
 * code it left in ps.close_code. Both are compared. */
typedef struct result {
    int rc;
    unsigned close_code;
} result_t;

#define OK      ((result_t){0, 0})
#define PROTO   ((result_t){-EPROTO, WS_CLOSE_PROTOCOL_ERROR})
#define INVALID ((result_t){-EPROTO, WS_CLOSE_INVALID_PAYLOAD})
#define TOOBIG  ((result_t){-EPROTO, WS_CLOSE_TOO_BIG})
#define CLOSED  ((result_t){WS_PARSER_CLOSED, WS_CLOSE_NORMAL})

static bool same_result(result_t a, result_t b)
{
    return a.rc == b.rc && a.close_code == b.close_code;
}

#define CHECK_RESULT(got, want)                                                                    \
    do {                                                                                           \
        CHECK_INT((got).rc, (want).rc);                                                            \
        CHECK_INT((got).close_code, (want).close_code);                                            \
    } while (0)

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

/* A growable byte string, for streams and for serialized callback sequences. */
typedef struct buf {
    uint8_t *p;
    size_t len, cap;
} buf_t;

static void buf_put(buf_t *b, const void *d, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        REQUIRE(b->p != NULL);
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, d, n);
    b->len += n;
}

static void buf_reset(buf_t *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

/* Appends one frame: b0 is the whole first byte (FIN, RSV, opcode); key NULL means
 * unmasked. Uses the library's header writer and masking, as a client does. */
static void put_frame(buf_t *s, uint8_t b0, const void *payload, size_t len, const uint8_t *key)
{
    uint8_t hdr[WS_FRAME_HEADER_MAX];
    size_t hl = key ? ws_frame_header_write_masked(hdr, b0 & 0x0f, true, len, key)
                    : ws_frame_header_write(hdr, b0 & 0x0f, true, len);
    hdr[0] = b0;
    buf_put(s, hdr, hl);
    size_t at = s->len;
    buf_put(s, payload, len);
    if (key)
        ws_mask(s->p + at, len, key, 0);
}

static const uint8_t KEY[4] = {0x37, 0xfa, 0x21, 0x3d};

/* Records callbacks as a byte string: kind, opcode or code, length, payload. */
typedef struct rec {
    buf_t log;
    unsigned events;
    int stop;                 /* what every callback returns */
    const uint8_t *last_data; /* payload pointer of the latest callback */
} rec_t;

static void rec_event(rec_t *r, char kind, unsigned code, const uint8_t *p, size_t len)
{
    uint64_t l = len;
    buf_put(&r->log, &kind, 1);
    buf_put(&r->log, &code, sizeof(code));
    buf_put(&r->log, &l, sizeof(l));
    buf_put(&r->log, p, len);
    r->events++;
    r->last_data = p;
}

static int on_message(void *ud, uint8_t op, const uint8_t *p, size_t len)
{
    rec_t *r = ud;
    rec_event(r, 'M', op, p, len);
    return r->stop;
}

static int on_control(void *ud, uint8_t op, const uint8_t *p, size_t len)
{
    rec_t *r = ud;
    CHECK(len <= WS_CONTROL_MAX);
    rec_event(r, 'C', op, p, len);
    return r->stop;
}

static int on_close(void *ud, unsigned code, const uint8_t *p, size_t len)
{
    rec_t *r = ud;
    rec_event(r, 'X', code, p, len);
    return r->stop;
}

static const ws_parser_callbacks_t CB = {on_message, on_control, on_close};

static const ws_parser_config_t SERVER = {0, WS_FRAME_REQUIRE_MASK, 0};
static const ws_parser_config_t CLIENT = {0, 0, 0};

/* Feeds s[0..n) cut at cuts[0..k) (ascending), each piece in its own exact allocation so a
 * sanitizer build sees any access outside it. Resumes after a stop. Returns the first
 * result other than the stop value (OK when every byte was taken), and checks that the
 * result is sticky. */
static result_t feed_cuts(const ws_parser_config_t *cfg, const uint8_t *s, size_t n,
                          const size_t *cuts, size_t k, rec_t *r)
{
    ws_parser_t ps;
    ws_parser_init(&ps, cfg);
    int result = 0;
    size_t start = 0;
    for (size_t i = 0; i <= k && result == 0; i++) {
        size_t end = i < k ? cuts[i] : n;
        REQUIRE(end >= start && end <= n);
        size_t len = end - start;
        /* An empty chunk is a no-op (0) on an open parser, and after a close or error it
         * returns the sticky value, which a one-shot feed never asks for; test_empty
         * covers it. */
        if (len == 0)
            continue;
        uint8_t *piece = malloc(len);
        REQUIRE(piece != NULL);
        memcpy(piece, s + start, len);
        size_t off = 0;
        for (;;) {
            size_t used = SIZE_MAX;
            int rc = ws_parser_feed(&ps, piece + off, len - off, &used, &CB, r);
            REQUIRE(used <= len - off);
            if (rc == 0) {
                CHECK(used == len - off);
                break;
            }
            if (r->stop && rc == r->stop) {
                REQUIRE(used > 0);
                off += used;
                if (off == len)
                    break;
                continue;
            }
            result = rc;
            break;
        }
        free(piece);
        start = end;
    }
    /* A stop is positive and every error negative, so a stop is never taken for an error. */
    CHECK(result <= 0);
    result_t res = {result, result < 0 ? ps.close_code : 0};
    if (result) {
        uint8_t more[2] = {0x81, 0x80};
        size_t used = SIZE_MAX;
        CHECK_INT(ws_parser_feed(&ps, more, sizeof(more), &used, &CB, r), result);
        CHECK_INT(used, 0);
        CHECK_INT(ws_parser_feed(&ps, more, 0, &used, &CB, r), result);
        CHECK_INT(ps.close_code, res.close_code);
    }
    ws_parser_free(&ps);
    return res;
}

static result_t feed_once(const ws_parser_config_t *cfg, const uint8_t *s, size_t n, rec_t *r)
{
    return feed_cuts(cfg, s, n, NULL, 0, r);
}

static void check_same(const rec_t *a, result_t rca, const rec_t *b, result_t rcb, const char *how,
                       size_t where)
{
    if (!same_result(rca, rcb) || a->events != b->events || a->log.len != b->log.len ||
        (a->log.len && memcmp(a->log.p, b->log.p, a->log.len) != 0)) {
        fprintf(stderr,
                "split mismatch (%s at %zu): rc %d vs %d, close code %u vs %u, events %u vs %u\n",
                how, where, rca.rc, rcb.rc, rca.close_code, rcb.close_code, a->events, b->events);
        exit(1);
    }
}

/* The chunking property: every single cut, 300 random 3-way cuts, byte by byte, and all of
 * those again with callbacks that stop the parser each time. Returns the one-shot result;
 * the one-shot events are left in *ref. */
static result_t check_splits(const ws_parser_config_t *cfg, const uint8_t *s, size_t n, rec_t *ref)
{
    memset(ref, 0, sizeof(*ref));
    result_t rc = feed_once(cfg, s, n, ref);
    for (int stop = 0; stop <= 1; stop++) {
        rec_t r = {0};
        r.stop = stop ? 77 : 0;
        result_t rc2 = feed_once(cfg, s, n, &r);
        check_same(ref, rc, &r, rc2, "stop one-shot", 0);
        buf_reset(&r.log);
        for (size_t cut = 0; cut <= n; cut++) {
            memset(&r, 0, sizeof(r));
            r.stop = stop ? 77 : 0;
            rc2 = feed_cuts(cfg, s, n, &cut, 1, &r);
            check_same(ref, rc, &r, rc2, "one cut", cut);
            buf_reset(&r.log);
        }
        for (int iter = 0; iter < 300; iter++) {
            size_t cuts[2] = {(size_t)(rng() % (n + 1)), (size_t)(rng() % (n + 1))};
            if (cuts[0] > cuts[1]) {
                size_t t = cuts[0];
                cuts[0] = cuts[1], cuts[1] = t;
            }
            memset(&r, 0, sizeof(r));
            r.stop = stop ? 77 : 0;
            rc2 = feed_cuts(cfg, s, n, cuts, 2, &r);
            check_same(ref, rc, &r, rc2, "three pieces", cuts[0]);
            buf_reset(&r.log);
        }
        if (n <= 100000) {
            size_t *cuts = malloc((n + 1) * sizeof(*cuts));
            REQUIRE(cuts != NULL);
            for (size_t i = 0; i + 1 < n; i++)
                cuts[i] = i + 1;
            memset(&r, 0, sizeof(r));
            r.stop = stop ? 77 : 0;
            rc2 = feed_cuts(cfg, s, n, cuts, n ? n - 1 : 0, &r);
            check_same(ref, rc, &r, rc2, "byte by byte", 0);
            buf_reset(&r.log);
            free(cuts);
        }
    }
    return rc;
}

/* Expected-event builder. */
static void expect(rec_t *e, char kind, unsigned code, const void *p, size_t len)
{
    rec_event(e, kind, code, p, len);
}

static void check_events(const rec_t *got, const rec_t *want)
{
    if (got->events != want->events || got->log.len != want->log.len ||
        (got->log.len && memcmp(got->log.p, want->log.p, got->log.len) != 0)) {
        fprintf(stderr, "events differ: got %u, want %u\n", got->events, want->events);
        exit(1);
    }
}

/* Runs a stream through check_splits and compares with the expected events and result. */
static void check_stream(const ws_parser_config_t *cfg, const buf_t *s, const rec_t *want,
                         result_t want_rc)
{
    rec_t got;
    result_t rc = check_splits(cfg, s->p, s->len, &got);
    CHECK_RESULT(rc, want_rc);
    check_events(&got, want);
    buf_reset(&got.log);
}

static void test_rfc_examples(void)
{
    uint8_t *b64k = malloc(65536), b256[256];
    REQUIRE(b64k != NULL);
    for (size_t i = 0; i < 65536; i++)
        b64k[i] = (uint8_t)(i ^ (i >> 8));
    for (size_t i = 0; i < 256; i++)
        b256[i] = (uint8_t)(255 - i);

    /* The exact bytes of 5.7, unmasked ones parsed as a client would. */
    const uint8_t hello[] = {0x81, 0x05, 'H', 'e', 'l', 'l', 'o'};
    const uint8_t mhello[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    const uint8_t frag[] = {0x01, 0x03, 'H', 'e', 'l', 0x80, 0x02, 'l', 'o'};
    const uint8_t ping[] = {0x89, 0x05, 'H', 'e', 'l', 'l', 'o'};
    const uint8_t mpong[] = {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    const uint8_t h256[] = {0x82, 0x7e, 0x01, 0x00};
    const uint8_t h64k[] = {0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0};

    buf_t s = {0};
    rec_t want = {0};
    buf_put(&s, hello, sizeof(hello));
    expect(&want, 'M', WS_OP_TEXT, "Hello", 5);
    check_stream(&CLIENT, &s, &want, OK);
    /* A server refuses the unmasked frame. */
    rec_t none = {0};
    check_stream(&SERVER, &s, &none, PROTO);

    s.len = 0;
    buf_put(&s, mhello, sizeof(mhello));
    check_stream(&SERVER, &s, &want, OK);
    check_stream(&CLIENT, &s, &want, OK);

    s.len = 0;
    buf_put(&s, frag, sizeof(frag));
    check_stream(&CLIENT, &s, &want, OK);

    buf_reset(&want.log), want.events = 0;
    s.len = 0;
    buf_put(&s, ping, sizeof(ping));
    buf_put(&s, mpong, sizeof(mpong));
    expect(&want, 'C', WS_OP_PING, "Hello", 5);
    expect(&want, 'C', WS_OP_PONG, "Hello", 5);
    check_stream(&CLIENT, &s, &want, OK);

    buf_reset(&want.log), want.events = 0;
    s.len = 0;
    buf_put(&s, h256, sizeof(h256));
    buf_put(&s, b256, sizeof(b256));
    buf_put(&s, h64k, sizeof(h64k));
    buf_put(&s, b64k, 65536);
    expect(&want, 'M', WS_OP_BINARY, b256, 256);
    expect(&want, 'M', WS_OP_BINARY, b64k, 65536);
    check_stream(&CLIENT, &s, &want, OK);

    /* The same two, masked, through a server parser. */
    s.len = 0;
    put_frame(&s, 0x82, b256, 256, KEY);
    put_frame(&s, 0x82, b64k, 65536, KEY);
    CHECK(memcmp(s.p, "\x82\xfe\x01\x00", 4) == 0);
    CHECK(memcmp(s.p + 8 + 256, "\x82\xff\0\0\0\0\0\x01\0\0", 10) == 0);
    check_stream(&SERVER, &s, &want, OK);

    buf_reset(&s);
    buf_reset(&want.log);
    free(b64k);
}

/* Multi-frame streams exercising fragmentation, interleaved control frames, empty frames,
 * 7/16/64-bit lengths, multi-byte UTF-8 cut between fragments, and the close handshake. */
static void test_streams(void)
{
    uint8_t bin[300];
    for (size_t i = 0; i < sizeof(bin); i++)
        bin[i] = (uint8_t)(i * 13);
    buf_t s = {0};
    rec_t want = {0};

    /* Fragmented text with an interleaved ping, then more messages, then a close. */
    put_frame(&s, 0x01, "Hel", 3, KEY);
    put_frame(&s, 0x89, "ping!", 5, KEY);
    put_frame(&s, 0x80, "lo", 2, KEY);
    put_frame(&s, 0x82, bin, 256, KEY);
    put_frame(&s, 0x8a, "", 0, KEY);
    put_frame(&s, 0x81, "", 0, KEY);
    put_frame(&s, 0x02, "", 0, KEY);
    put_frame(&s, 0x00, bin, 130, KEY);
    put_frame(&s, 0x89, "", 0, KEY);
    put_frame(&s, 0x80, "", 0, KEY);
    put_frame(&s, 0x88,
              "\x03\xe8"
              "bye",
              5, KEY);
    expect(&want, 'C', WS_OP_PING, "ping!", 5);
    expect(&want, 'M', WS_OP_TEXT, "Hello", 5);
    expect(&want, 'M', WS_OP_BINARY, bin, 256);
    expect(&want, 'C', WS_OP_PONG, "", 0);
    expect(&want, 'M', WS_OP_TEXT, "", 0);
    expect(&want, 'C', WS_OP_PING, "", 0);
    expect(&want, 'M', WS_OP_BINARY, bin, 130);
    expect(&want, 'X', 1000, "bye", 3);
    check_stream(&SERVER, &s, &want, OK);

    /* Bytes after the close are refused, with *consumed ending at the close frame. */
    size_t close_end = s.len;
    put_frame(&s, 0x81, "late", 4, KEY);
    check_stream(&SERVER, &s, &want, CLOSED);
    {
        ws_parser_t ps;
        ws_parser_init(&ps, &SERVER);
        rec_t r = {0};
        uint8_t *copy = malloc(s.len);
        memcpy(copy, s.p, s.len);
        size_t used = 0;
        CHECK_INT(ws_parser_feed(&ps, copy, s.len, &used, &CB, &r), WS_PARSER_CLOSED);
        CHECK_INT(used, close_end);
        CHECK(ps.closed);
        CHECK_INT(ps.close_code, WS_CLOSE_NORMAL);
        ws_parser_free(&ps);
        buf_reset(&r.log);
        free(copy);
    }

    /* UTF-8 cut inside code points across fragments; a close with no code. */
    const char *text = "h\xc3\xa9llo w\xc3\xb6rld \xe2\x82\xac \xf0\x9d\x84\x9e!";
    size_t tl = strlen(text);
    s.len = 0, buf_reset(&want.log), want.events = 0;
    put_frame(&s, 0x01, text, 2, KEY);      /* ends after the lead byte of é */
    put_frame(&s, 0x00, text + 2, 15, KEY); /* ends inside € */
    put_frame(&s, 0x8a, "pong", 4, KEY);
    put_frame(&s, 0x00, text + 17, 5, KEY); /* ends inside the 4-byte G clef */
    put_frame(&s, 0x80, text + 22, tl - 22, KEY);
    put_frame(&s, 0x88, "", 0, KEY);
    expect(&want, 'C', WS_OP_PONG, "pong", 4);
    expect(&want, 'M', WS_OP_TEXT, text, tl);
    expect(&want, 'X', WS_CLOSE_NO_STATUS, "", 0);
    check_stream(&SERVER, &s, &want, OK);

    buf_reset(&s);
    buf_reset(&want.log);
}

/* One rejection: the stream is a valid text message, a ping, then the bad frame(s), so the
 * events before the error are checked too. */
static void check_reject(const ws_parser_config_t *cfg, const buf_t *bad, result_t code)
{
    buf_t s = {0};
    rec_t want = {0};
    put_frame(&s, 0x81, "ok", 2, cfg->frame_flags ? KEY : NULL);
    put_frame(&s, 0x89, "p", 1, cfg->frame_flags ? KEY : NULL);
    buf_put(&s, bad->p, bad->len);
    expect(&want, 'M', WS_OP_TEXT, "ok", 2);
    expect(&want, 'C', WS_OP_PING, "p", 1);
    check_stream(cfg, &s, &want, code);
    buf_reset(&s);
    buf_reset(&want.log);
}

static void reject_frame(uint8_t b0, const void *payload, size_t len, const uint8_t *key,
                         result_t code)
{
    buf_t bad = {0};
    put_frame(&bad, b0, payload, len, key);
    check_reject(&SERVER, &bad, code);
    buf_reset(&bad);
}

static void test_rejections(void)
{
    uint8_t big[300] = {0};
    buf_t bad = {0};

    /* RSV bits without an extension, on data and control frames. RSV1 is refused even when
     * the configuration asks to allow it, since the parser does not inflate. */
    for (uint8_t rsv = 1; rsv < 8; rsv++) {
        reject_frame((uint8_t)(0x81 | rsv << 4), "x", 1, KEY, PROTO);
        reject_frame((uint8_t)(0x89 | rsv << 4), "x", 1, KEY, PROTO);
    }
    {
        ws_parser_config_t rsv1 = {0, WS_FRAME_REQUIRE_MASK | WS_FRAME_ALLOW_RSV1, 0};
        put_frame(&bad, 0xc1, "x", 1, KEY);
        check_reject(&rsv1, &bad, PROTO);
        bad.len = 0;
    }
    /* Reserved opcodes. */
    for (uint8_t op = 3; op <= 0xf; op++) {
        if (op >= 8 && op <= 0xa)
            continue;
        reject_frame((uint8_t)(0x80 | op), "x", 1, KEY, PROTO);
    }
    /* Control frames over 125 bytes or not FIN. */
    reject_frame(0x89, big, 126, KEY, PROTO);
    reject_frame(0x8a, big, 300, KEY, PROTO);
    reject_frame(0x88, big, 126, KEY, PROTO);
    reject_frame(0x09, "x", 1, KEY, PROTO);
    reject_frame(0x0a, "x", 1, KEY, PROTO);
    reject_frame(0x08, "\x03\xe8", 2, KEY, PROTO);
    /* Unmasked client frame. */
    reject_frame(0x81, "x", 1, NULL, PROTO);
    reject_frame(0x89, "", 0, NULL, PROTO);
    /* 64-bit length with the top bit set. */
    {
        const uint8_t top[] = {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4, 'x'};
        buf_put(&bad, top, sizeof(top));
        check_reject(&SERVER, &bad, PROTO);
        bad.len = 0;
    }
    /* Continuation with no message open, also right after a complete message. */
    reject_frame(0x80, "x", 1, KEY, PROTO);
    reject_frame(0x00, "x", 1, KEY, PROTO);
    /* A new data message while one is open. */
    put_frame(&bad, 0x01, "ab", 2, KEY);
    put_frame(&bad, 0x81, "c", 1, KEY);
    check_reject(&SERVER, &bad, PROTO);
    bad.len = 0;
    put_frame(&bad, 0x02, "ab", 2, KEY);
    put_frame(&bad, 0x82, "c", 1, KEY);
    check_reject(&SERVER, &bad, PROTO);
    bad.len = 0;
    put_frame(&bad, 0x01, "ab", 2, KEY);
    put_frame(&bad, 0x02, "c", 1, KEY);
    check_reject(&SERVER, &bad, PROTO);
    bad.len = 0;

    /* Invalid UTF-8 in text: bad bytes, overlongs, surrogates, beyond U+10FFFF, and a
     * message that ends inside a code point. */
    static const char *bad_utf8[] = {
        "\xff",         "\xc3\x28",         "\xc0\x80",         "\xe0\x80\x80",
        "\xed\xa0\x80", "\xf0\x80\x80\x80", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80",
        "\x80",         "ok\xe2\x82",       "\xf0\x9d\x84",
    };
    for (size_t i = 0; i < sizeof(bad_utf8) / sizeof(bad_utf8[0]); i++) {
        reject_frame(0x81, bad_utf8[i], strlen(bad_utf8[i]), KEY, INVALID);
        /* Same bytes as a fragment that is followed by a ping: the ping must not be
         * delivered when the fragment already cannot be valid (fail fast). A fragment
         * merely ending inside a code point is fine until the message ends. */
        put_frame(&bad, 0x01, bad_utf8[i], strlen(bad_utf8[i]), KEY);
        put_frame(&bad, 0x89, "late", 4, KEY);
        put_frame(&bad, 0x80, "", 0, KEY);
        bool prefix_ok = i >= 9;
        if (prefix_ok) {
            buf_t s = {0};
            rec_t want = {0};
            put_frame(&s, 0x81, "ok", 2, KEY);
            put_frame(&s, 0x89, "p", 1, KEY);
            buf_put(&s, bad.p, bad.len);
            expect(&want, 'M', WS_OP_TEXT, "ok", 2);
            expect(&want, 'C', WS_OP_PING, "p", 1);
            expect(&want, 'C', WS_OP_PING, "late", 4);
            check_stream(&SERVER, &s, &want, INVALID);
            buf_reset(&s);
            buf_reset(&want.log);
        } else {
            check_reject(&SERVER, &bad, INVALID);
        }
        bad.len = 0;
    }
    /* Binary messages are not validated. */
    {
        buf_t s = {0};
        rec_t want = {0};
        put_frame(&s, 0x82, "\xff\xfe", 2, KEY);
        expect(&want, 'M', WS_OP_BINARY, "\xff\xfe", 2);
        check_stream(&SERVER, &s, &want, OK);
        buf_reset(&s);
        buf_reset(&want.log);
    }

    /* Close frames: 1-byte body, invalid codes, invalid reason. */
    reject_frame(0x88, "\x03", 1, KEY, PROTO);
    static const unsigned bad_codes[] = {0,    999,  1004, 1005, 1006, 1012, 1013,
                                         1014, 1015, 1016, 2000, 2999, 5000, 65535};
    for (size_t i = 0; i < sizeof(bad_codes) / sizeof(bad_codes[0]); i++) {
        uint8_t body[2] = {(uint8_t)(bad_codes[i] >> 8), (uint8_t)bad_codes[i]};
        reject_frame(0x88, body, 2, KEY, PROTO);
    }
    reject_frame(0x88, "\x03\xe8\xc3\x28", 4, KEY, INVALID);
    {
        /* The echo of a close this side sent with 1012 is an answer; 1013 still is not. */
        ws_parser_t ps;
        ws_parser_init(&ps, NULL);
        ps.sent_close = 1012;
        uint8_t echo[] = {0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xf4 ^ 2};
        size_t used = 0;
        CHECK_INT(ws_parser_feed(&ps, echo, sizeof echo, &used, &(ws_parser_callbacks_t){0}, NULL),
                  0);
        CHECK(ps.closed);
        ws_parser_free(&ps);
        ws_parser_init(&ps, NULL);
        ps.sent_close = 1012;
        uint8_t other[] = {0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xf5 ^ 2};
        CHECK_INT(
            ws_parser_feed(&ps, other, sizeof other, &used, &(ws_parser_callbacks_t){0}, NULL),
            -EPROTO);
        ws_parser_free(&ps);
    }
    reject_frame(0x88, "\x03\xe8ok\xe2\x82", 6, KEY, INVALID);

    buf_reset(&bad);
}

static void test_close_codes(void)
{
    static const unsigned good[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009,
                                    1010, 1011, 3000, 3999, 4000, 4999};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        buf_t s = {0};
        rec_t want = {0};
        uint8_t body[6] = {(uint8_t)(good[i] >> 8), (uint8_t)good[i], 'w', 'h', 'y', '!'};
        put_frame(&s, 0x88, body, 6, KEY);
        expect(&want, 'X', good[i], "why!", 4);
        check_stream(&SERVER, &s, &want, OK);
        CHECK_INT(ws_parser_close_reply_code(good[i]), good[i]);
        buf_reset(&s);
        buf_reset(&want.log);
    }
    CHECK_INT(ws_parser_close_reply_code(WS_CLOSE_NO_STATUS), WS_CLOSE_NORMAL);
    CHECK_INT(ws_parser_close_reply_code(1006), WS_CLOSE_PROTOCOL_ERROR);
}

/* max_message: checked against the declared length from the header alone, and against the
 * running total of fragments; a message of exactly the limit passes. */
static void test_max_message(void)
{
    ws_parser_config_t cfg = {100, WS_FRAME_REQUIRE_MASK, 0};
    uint8_t data[200];
    memset(data, 'a', sizeof(data));
    buf_t s = {0};
    rec_t want = {0};

    put_frame(&s, 0x81, data, 100, KEY);
    put_frame(&s, 0x02, data, 60, KEY);
    put_frame(&s, 0x80, data, 40, KEY);
    expect(&want, 'M', WS_OP_TEXT, data, 100);
    expect(&want, 'M', WS_OP_BINARY, data, 100);
    check_stream(&cfg, &s, &want, OK);

    s.len = 0;
    put_frame(&s, 0x81, data, 101, KEY);
    rec_t none = {0};
    check_stream(&cfg, &s, &none, TOOBIG);
    s.len = 0;
    put_frame(&s, 0x02, data, 60, KEY);
    put_frame(&s, 0x89, "", 0, KEY);
    put_frame(&s, 0x00, data, 30, KEY);
    put_frame(&s, 0x80, data, 11, KEY);
    rec_t ping = {0};
    expect(&ping, 'C', WS_OP_PING, "", 0);
    check_stream(&cfg, &s, &ping, TOOBIG);

    /* Only the header of a huge frame is needed to refuse it: nothing is buffered. */
    {
        ws_parser_t ps;
        ws_parser_init(&ps, NULL);
        uint8_t hdr[WS_FRAME_HEADER_MAX];
        size_t hl = ws_frame_header_write_masked(hdr, WS_OP_BINARY, true,
                                                 WS_MAX_MESSAGE_DEFAULT + 1ull, KEY);
        size_t used;
        rec_t r = {0};
        CHECK_INT(ws_parser_feed(&ps, hdr, hl, &used, &CB, &r), -EPROTO);
        CHECK_INT(ps.close_code, WS_CLOSE_TOO_BIG);
        CHECK(ps.msg_buf == NULL);
        CHECK_INT(r.events, 0);
        ws_parser_free(&ps);

        /* Exactly the default limit is accepted by its header. */
        ws_parser_init(&ps, NULL);
        hl = ws_frame_header_write_masked(hdr, WS_OP_BINARY, true, WS_MAX_MESSAGE_DEFAULT, KEY);
        CHECK_INT(ws_parser_feed(&ps, hdr, hl, &used, &CB, &r), 0);
        CHECK_INT(used, hl);
        CHECK(ps.msg_buf == NULL);
        ws_parser_free(&ps);
    }
    buf_reset(&s);
    buf_reset(&want.log);
    buf_reset(&ping.log);
}

/* Zero copy for a message that is one frame wholly in the chunk; a copy otherwise. Payload
 * is unmasked in place in the caller's chunk. */
static void test_zero_copy(void)
{
    rec_t r = {0};
    ws_parser_t ps;
    size_t used;
    uint8_t frame[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};

    ws_parser_init(&ps, NULL);
    CHECK_INT(ws_parser_feed(&ps, frame, sizeof(frame), &used, &CB, &r), 0);
    CHECK_INT(used, sizeof(frame));
    CHECK(r.last_data == frame + 6);
    CHECK(memcmp(frame + 6, "Hello", 5) == 0);
    CHECK(ps.msg_buf == NULL);
    ws_parser_free(&ps);

    /* Header cut, payload whole in the second chunk: still zero copy, from that chunk. */
    uint8_t a[] = {0x81, 0x85, 0x37}, b[] = {0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    ws_parser_init(&ps, NULL);
    CHECK_INT(ws_parser_feed(&ps, a, sizeof(a), &used, &CB, &r), 0);
    CHECK_INT(ws_parser_feed(&ps, b, sizeof(b), &used, &CB, &r), 0);
    CHECK(r.last_data == b + 3);
    ws_parser_free(&ps);

    /* Payload cut: copied into the reassembly buffer. */
    uint8_t c[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f}, d[] = {0x4d, 0x51, 0x58};
    ws_parser_init(&ps, NULL);
    CHECK_INT(ws_parser_feed(&ps, c, sizeof(c), &used, &CB, &r), 0);
    CHECK_INT(ws_parser_feed(&ps, d, sizeof(d), &used, &CB, &r), 0);
    CHECK(!(r.last_data >= c && r.last_data < c + sizeof(c)));
    CHECK(!(r.last_data >= d && r.last_data < d + sizeof(d)));
    CHECK(memcmp(c + 6, "He", 2) == 0 && memcmp(d, "llo", 3) == 0); /* unmasked in place */
    /* buf_keep 0: the buffer is gone once the message is delivered. */
    CHECK(ps.msg_buf == NULL);
    ws_parser_free(&ps);

    /* Fragmented, in one chunk: copied; with buf_keep the buffer is kept for reuse. */
    buf_t s = {0};
    put_frame(&s, 0x01, "Hel", 3, KEY);
    put_frame(&s, 0x80, "lo", 2, KEY);
    ws_parser_config_t keep = {0, WS_FRAME_REQUIRE_MASK, 4096};
    ws_parser_init(&ps, &keep);
    CHECK_INT(ws_parser_feed(&ps, s.p, s.len, &used, &CB, &r), 0);
    CHECK(!(r.last_data >= s.p && r.last_data < s.p + s.len));
    CHECK(ps.msg_buf != NULL && ps.msg_cap <= 4096);
    CHECK(r.log.len >= 5 && memcmp(r.log.p + r.log.len - 5, "Hello", 5) == 0);
    ws_parser_free(&ps);
    CHECK(ps.msg_buf == NULL);

    /* A control frame whole in the chunk is delivered in place too. */
    s.len = 0;
    put_frame(&s, 0x89, "abc", 3, KEY);
    ws_parser_init(&ps, NULL);
    CHECK_INT(ws_parser_feed(&ps, s.p, s.len, &used, &CB, &r), 0);
    CHECK(r.last_data == s.p + 6);
    ws_parser_free(&ps);

    buf_reset(&s);
    buf_reset(&r.log);
}

/* A callback's positive return stops parsing right after it and is returned as it is; *consumed is
 * the end of that frame and the rest can be fed later. Stops are not sticky. */
static void test_stop(void)
{
    buf_t s = {0};
    put_frame(&s, 0x81, "one", 3, KEY);
    size_t end1 = s.len;
    put_frame(&s, 0x89, "two", 3, KEY);
    size_t end2 = s.len;
    put_frame(&s, 0x82, "three", 5, KEY);
    size_t end3 = s.len;
    put_frame(&s, 0x88, "\x03\xe9", 2, KEY);
    uint8_t *pristine = malloc(s.len);
    REQUIRE(pristine != NULL);
    memcpy(pristine, s.p, s.len);

    ws_parser_t ps;
    ws_parser_init(&ps, NULL);
    rec_t r = {0};
    r.stop = 5;
    size_t used;
    CHECK_INT(ws_parser_feed(&ps, s.p, s.len, &used, &CB, &r), 5);
    CHECK_INT(used, end1);
    CHECK_INT(ws_parser_feed(&ps, s.p + end1, s.len - end1, &used, &CB, &r), 5);
    CHECK_INT(used, end2 - end1);
    CHECK_INT(ws_parser_feed(&ps, s.p + end2, s.len - end2, &used, &CB, &r), 5);
    CHECK_INT(used, end3 - end2);
    CHECK_INT(ws_parser_feed(&ps, s.p + end3, s.len - end3, &used, &CB, &r), 5);
    CHECK_INT(used, s.len - end3);
    CHECK_INT(r.events, 4);
    CHECK(ps.closed);
    CHECK_INT(ws_parser_feed(&ps, s.p, 1, &used, &CB, &r), WS_PARSER_CLOSED);
    CHECK_INT(used, 0);
    CHECK_INT(ps.close_code, WS_CLOSE_NORMAL);
    ws_parser_free(&ps);

    /* NULL callbacks are skipped; NULL consumed is allowed. */
    ws_parser_callbacks_t none = {NULL, NULL, NULL};
    ws_parser_init(&ps, NULL);
    memcpy(s.p, pristine, s.len); /* the first pass unmasked s in place */
    CHECK_INT(ws_parser_feed(&ps, s.p, s.len, NULL, &none, NULL), 0);
    CHECK(ps.closed);
    CHECK(memcmp(s.p + end2 + 6, "three", 5) == 0);
    ws_parser_free(&ps);

    free(pristine);
    buf_reset(&s);
    buf_reset(&r.log);
}

/* Appends one random code point as UTF-8. */
static void put_random_char(buf_t *b)
{
    static const uint32_t ranges[][2] = {
        {0x20, 0x7e}, {0x80, 0x7ff}, {0x800, 0xd7ff}, {0xe000, 0xffff}, {0x10000, 0x10ffff}};
    const uint32_t *r = ranges[rng() % 5];
    uint32_t cp = r[0] + (uint32_t)(rng() % (r[1] - r[0] + 1));
    uint8_t u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (uint8_t)cp, n = 1;
    } else if (cp < 0x800) {
        u[0] = (uint8_t)(0xc0 | cp >> 6), u[1] = (uint8_t)(0x80 | (cp & 0x3f)), n = 2;
    } else if (cp < 0x10000) {
        u[0] = (uint8_t)(0xe0 | cp >> 12), u[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (uint8_t)(0x80 | (cp & 0x3f)), n = 3;
    } else {
        u[0] = (uint8_t)(0xf0 | cp >> 18), u[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f)), u[3] = (uint8_t)(0x80 | (cp & 0x3f)), n = 4;
    }
    buf_put(b, u, n);
}

/* Random valid streams: messages of random type, size and fragmentation (text cut at any
 * byte, so inside code points too) with random control frames between fragments. */
static void test_random_streams(void)
{
    for (int iter = 0; iter < 40; iter++) {
        buf_t s = {0}, msg = {0};
        rec_t want = {0};
        int nmsg = 1 + (int)(rng() % 6);
        for (int m = 0; m < nmsg; m++) {
            bool text = rng() & 1;
            size_t target = (size_t)(rng() % 4 == 0 ? rng() % 70000 : rng() % 300);
            msg.len = 0;
            while (msg.len < target) {
                if (text) {
                    put_random_char(&msg);
                } else {
                    uint8_t byte = (uint8_t)rng();
                    buf_put(&msg, &byte, 1);
                }
            }
            size_t pos = 0;
            bool first = true;
            do {
                size_t frag = msg.len - pos;
                if (rng() % 3 == 0 && frag > 0)
                    frag = (size_t)(rng() % (frag + 1));
                bool fin = pos + frag == msg.len;
                uint8_t op = first ? (text ? WS_OP_TEXT : WS_OP_BINARY) : WS_OP_CONT;
                uint8_t key[4];
                for (int i = 0; i < 4; i++)
                    key[i] = (uint8_t)rng();
                put_frame(&s, (uint8_t)((fin ? 0x80 : 0) | op), msg.p + pos, frag, key);
                pos += frag;
                first = false;
                if (!fin && rng() % 2) {
                    uint8_t ctl[125];
                    size_t cl = (size_t)(rng() % 126);
                    for (size_t i = 0; i < cl; i++)
                        ctl[i] = (uint8_t)rng();
                    uint8_t cop = rng() & 1 ? WS_OP_PING : WS_OP_PONG;
                    put_frame(&s, 0x80 | cop, ctl, cl, key);
                    expect(&want, 'C', cop, ctl, cl);
                }
                if (fin)
                    break;
            } while (1);
            expect(&want, 'M', text ? WS_OP_TEXT : WS_OP_BINARY, msg.p, msg.len);
        }
        rec_t got;
        memset(&got, 0, sizeof(got));
        result_t rc;
        if (s.len > 20000) {
            /* Large streams: one-shot against random 3-way cuts only, to bound run time. */
            rc = feed_once(&SERVER, s.p, s.len, &got);
            for (int k = 0; k < 20; k++) {
                size_t cuts[2] = {(size_t)(rng() % (s.len + 1)), (size_t)(rng() % (s.len + 1))};
                if (cuts[0] > cuts[1]) {
                    size_t t = cuts[0];
                    cuts[0] = cuts[1], cuts[1] = t;
                }
                rec_t r = {0};
                result_t rc2 = feed_cuts(&SERVER, s.p, s.len, cuts, 2, &r);
                check_same(&got, rc, &r, rc2, "random stream", cuts[0]);
                buf_reset(&r.log);
            }
        } else {
            rc = check_splits(&SERVER, s.p, s.len, &got);
        }
        CHECK_RESULT(rc, OK);
        check_events(&got, &want);
        buf_reset(&got.log);
        buf_reset(&want.log);
        buf_reset(&s);
        buf_reset(&msg);
    }
}

/* A message assembled from many small fragments reaches the limit exactly and the
 * reassembly buffer never grows past it. */
static void test_growth(void)
{
    enum { TOTAL = 1 << 20, FRAG = 1000 };
    ws_parser_config_t cfg = {TOTAL, WS_FRAME_REQUIRE_MASK, SIZE_MAX};
    uint8_t *data = malloc(TOTAL);
    REQUIRE(data != NULL);
    for (size_t i = 0; i < TOTAL; i++)
        data[i] = (uint8_t)(i * 31 + (i >> 10));
    buf_t s = {0};
    for (size_t pos = 0; pos < TOTAL; pos += FRAG) {
        size_t n = TOTAL - pos < FRAG ? TOTAL - pos : FRAG;
        bool fin = pos + n == TOTAL;
        put_frame(&s, (uint8_t)((fin ? 0x80 : 0) | (pos ? WS_OP_CONT : WS_OP_BINARY)), data + pos,
                  n, KEY);
    }
    ws_parser_t ps;
    ws_parser_init(&ps, &cfg);
    rec_t r = {0};
    size_t used;
    CHECK_INT(ws_parser_feed(&ps, s.p, s.len, &used, &CB, &r), 0);
    REQUIRE_INT(r.events, 1);
    CHECK(memcmp(r.log.p + r.log.len - TOTAL, data, TOTAL) == 0);
    CHECK(ps.msg_cap == TOTAL);
    ws_parser_free(&ps);
    buf_reset(&s);
    buf_reset(&r.log);
    free(data);
}

/* Empty chunks: nothing happens on an open parser, at any point of a frame. */
static void test_empty(void)
{
    buf_t s = {0};
    put_frame(&s, 0x81, "Hello", 5, KEY);
    ws_parser_t ps;
    ws_parser_init(&ps, NULL);
    rec_t r = {0};
    size_t used = SIZE_MAX;
    uint8_t dummy;
    CHECK_INT(ws_parser_feed(&ps, NULL, 0, &used, &CB, &r), 0);
    CHECK_INT(used, 0);
    for (size_t i = 0; i < s.len; i++) {
        CHECK_INT(ws_parser_feed(&ps, s.p + i, 1, &used, &CB, &r), 0);
        CHECK_INT(used, 1);
        CHECK_INT(ws_parser_feed(&ps, &dummy, 0, &used, &CB, &r), 0);
        CHECK_INT(used, 0);
    }
    REQUIRE_INT(r.events, 1);
    CHECK(memcmp(r.log.p + r.log.len - 5, "Hello", 5) == 0);
    ws_parser_free(&ps);
    buf_reset(&s);
    buf_reset(&r.log);
}

int main(void)
{
    test_rfc_examples();
    test_streams();
    test_rejections();
    test_close_codes();
    test_max_message();
    test_zero_copy();
    test_stop();
    test_empty();
    test_random_streams();
    test_growth();
    return check_exit_status("test_parser");
}
