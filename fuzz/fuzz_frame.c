/* libFuzzer driver for the frame parser and masking. Differential, not only "no crash":
 * the stream is parsed at once, in three pieces cut where the input says, byte by byte, and
 * with callbacks that stop after every event; all four must produce the same callback
 * sequence (hashed) and the same result. Every delivered message is also checked against
 * the contract (text is valid UTF-8, control payloads fit 125 bytes, close codes are valid).
 * Then the scalar, AVX2 and AVX-512 maskers must agree on the input at several alignments.
 *
 * Input: byte 0 picks the configuration, bytes 1-2 the cut points, byte 3 a small
 * max_message; the rest is the stream. Each piece is copied into its own exact-size
 * allocation so AddressSanitizer sees any access outside it. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uringws/cpu.h"
#include "uringws/mask.h"
#include "uringws/parser.h"
#include "uringws/utf8.h"

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_frame: %s:%d: %s\n", __FILE__, __LINE__, #cond);                 \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

typedef struct run {
    uint64_t hash;
    unsigned events;
    int stop;            /* what every callback returns */
    unsigned close_code; /* the parser's close_code once feeding ended with an error */
} run_t;

static void mix(run_t *r, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        r->hash = (r->hash ^ b[i]) * 0x100000001b3ull;
}

static void event(run_t *r, char kind, unsigned code, const uint8_t *p, size_t len)
{
    uint64_t l = len;
    mix(r, &kind, 1);
    mix(r, &code, sizeof(code));
    mix(r, &l, sizeof(l));
    if (len)
        mix(r, p, len);
    r->events++;
}

static int on_message(void *ud, uint8_t op, const uint8_t *p, size_t len)
{
    FUZZ_CHECK(op == WS_OP_TEXT || op == WS_OP_BINARY);
    if (op == WS_OP_TEXT)
        FUZZ_CHECK(ws_utf8_valid(p, len));
    event(ud, 'M', op, p, len);
    return ((run_t *)ud)->stop;
}

static int on_control(void *ud, uint8_t op, const uint8_t *p, size_t len)
{
    FUZZ_CHECK(op == WS_OP_PING || op == WS_OP_PONG);
    FUZZ_CHECK(len <= WS_CONTROL_MAX);
    event(ud, 'C', op, p, len);
    return ((run_t *)ud)->stop;
}

static int on_close(void *ud, unsigned code, const uint8_t *p, size_t len)
{
    FUZZ_CHECK(code == WS_CLOSE_NO_STATUS || ws_frame_close_code_valid(code));
    FUZZ_CHECK(len <= WS_CONTROL_MAX - 2);
    FUZZ_CHECK(ws_utf8_valid(p, len));
    event(ud, 'X', code, p, len);
    return ((run_t *)ud)->stop;
}

static const ws_parser_callbacks_t CB = {on_message, on_control, on_close};

/* Feeds s[0..n) cut at cuts[0..k); returns the first result that is not a stop, with the
 * close code beside an error in r->close_code. */
static int feed_cuts(const ws_parser_config_t *cfg, const uint8_t *s, size_t n, const size_t *cuts,
                     size_t k, run_t *r)
{
    ws_parser_t ps;
    ws_parser_init(&ps, cfg);
    int result = 0;
    size_t start = 0;
    for (size_t i = 0; i <= k && result == 0; i++) {
        size_t end = i < k ? cuts[i] : n;
        size_t len = end - start;
        if (len == 0)
            continue;
        uint8_t *piece = malloc(len);
        FUZZ_CHECK(piece != NULL);
        memcpy(piece, s + start, len);
        size_t off = 0;
        for (;;) {
            size_t used = SIZE_MAX;
            int rc = ws_parser_feed(&ps, piece + off, len - off, &used, &CB, r);
            FUZZ_CHECK(used <= len - off);
            if (rc == 0) {
                FUZZ_CHECK(used == len - off);
                break;
            }
            if (r->stop && rc == r->stop) {
                off += used;
                if (off == len)
                    break;
                continue;
            }
            FUZZ_CHECK(rc == -EPROTO || rc == WS_PARSER_CLOSED);
            FUZZ_CHECK(rc != -EPROTO || ps.close_code == WS_CLOSE_PROTOCOL_ERROR ||
                       ps.close_code == WS_CLOSE_INVALID_PAYLOAD ||
                       ps.close_code == WS_CLOSE_TOO_BIG);
            FUZZ_CHECK(rc != WS_PARSER_CLOSED || ps.close_code == WS_CLOSE_NORMAL);
            result = rc;
            r->close_code = ps.close_code;
            break;
        }
        free(piece);
        start = end;
    }
    if (result) {
        uint8_t more = 0x81;
        size_t used = SIZE_MAX;
        FUZZ_CHECK(ws_parser_feed(&ps, &more, 1, &used, &CB, r) == result && used == 0);
        FUZZ_CHECK(ps.close_code == r->close_code);
    }
    ws_parser_free(&ps);
    return result;
}

static void check_same(const run_t *a, int rca, const run_t *b, int rcb)
{
    if (a->hash != b->hash || a->events != b->events || rca != rcb ||
        a->close_code != b->close_code) {
        fprintf(stderr,
                "fuzz_frame: split mismatch: rc %d vs %d, close code %u vs %u, events %u vs %u\n",
                rca, rcb, a->close_code, b->close_code, a->events, b->events);
        abort();
    }
}

static void fuzz_parser(const uint8_t *data, size_t size)
{
    if (size < 4)
        return;
    ws_parser_config_t cfg = {0, 0, 0};
    if (data[0] & 1)
        cfg.frame_flags |= WS_FRAME_REQUIRE_MASK;
    if (data[0] & 2)
        cfg.max_message = data[3]; /* small limits reach 1009 often */
    if (data[0] & 4)
        cfg.buf_keep = 4096;
    const uint8_t *s = data + 4;
    size_t n = size - 4;

    run_t ref = {0xcbf29ce484222325ull, 0, 0, 0};
    int rc = feed_cuts(&cfg, s, n, NULL, 0, &ref);

    size_t cuts[2] = {data[1] % (n + 1), data[2] % (n + 1)};
    if (cuts[0] > cuts[1]) {
        size_t t = cuts[0];
        cuts[0] = cuts[1], cuts[1] = t;
    }
    run_t r = {0xcbf29ce484222325ull, 0, 0, 0};
    check_same(&ref, rc, &r, feed_cuts(&cfg, s, n, cuts, 2, &r));

    size_t *each = malloc((n + 1) * sizeof(*each));
    FUZZ_CHECK(each != NULL);
    for (size_t i = 0; i + 1 < n; i++)
        each[i] = i + 1;
    r = (run_t){0xcbf29ce484222325ull, 0, 0, 0};
    check_same(&ref, rc, &r, feed_cuts(&cfg, s, n, each, n ? n - 1 : 0, &r));
    free(each);

    r = (run_t){0xcbf29ce484222325ull, 0, 1, 0};
    check_same(&ref, rc, &r, feed_cuts(&cfg, s, n, cuts, 2, &r));
}

typedef void (*mask_fn)(uint8_t *, size_t, const uint8_t *, uint64_t);

static void fuzz_mask(const uint8_t *data, size_t size)
{
    if (size < 5)
        return;
    const uint8_t *key = data;
    uint64_t offset = data[4];
    mask_fn impls[3] = {ws_mask_scalar, NULL, NULL};
    size_t nimpl = 1;
    if (ws_cpu_has_avx2())
        impls[nimpl++] = ws_mask_avx2;
    if (ws_cpu_has_avx512())
        impls[nimpl++] = ws_mask_avx512;
    uint8_t *want = malloc(size);
    uint8_t *got = malloc(size);
    FUZZ_CHECK(want && got);
    /* Suffixes starting at several shifts: every alignment of start, exact end. */
    for (size_t shift = 0; shift < 64 && shift <= size; shift += 1 + (shift >= 8) * 7) {
        size_t n = size - shift;
        memcpy(want, data, size);
        for (size_t i = 0; i < n; i++)
            want[shift + i] ^= key[(offset + i) & 3];
        for (size_t k = 0; k < nimpl; k++) {
            memcpy(got, data, size);
            impls[k](got + shift, n, key, offset);
            FUZZ_CHECK(memcmp(got, want, size) == 0);
        }
    }
    free(want);
    free(got);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_parser(data, size);
    fuzz_mask(data, size);
    return 0;
}
