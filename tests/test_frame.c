/* Unit test for core/frame.c: header writing (exact bytes for each length encoding), header
 * parsing (RFC 6455 5.7 examples, every incomplete prefix, every rejection, non-minimal
 * lengths, no reads past n) and the close code table of 7.4. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "uringws/frame.h"

#include "check.h"

/* A header that breaks the protocol (the caller closes with 1002). */
#define PROTO (-EPROTO)

static const unsigned REQ = WS_FRAME_REQUIRE_MASK;

/* Parses p[0..n) and checks that every shorter prefix is WS_INCOMPLETE. */
static int parse_all_prefixes(const uint8_t *p, size_t n, unsigned flags, ws_frame_header_t *h)
{
    for (size_t i = 0; i < n; i++) {
        ws_frame_header_t tmp;
        CHECK_INT(ws_frame_header_parse(p, i, flags, &tmp), WS_INCOMPLETE);
    }
    return ws_frame_header_parse(p, n, flags, h);
}

static void test_rfc_examples(void)
{
    ws_frame_header_t h;
    /* Single-frame unmasked text "Hello". */
    const uint8_t hello[] = {0x81, 0x05};
    CHECK_INT(parse_all_prefixes(hello, 2, 0, &h), 2);
    CHECK(h.fin && !h.masked && h.rsv == 0);
    CHECK_INT(h.opcode, WS_OP_TEXT);
    CHECK_INT(h.payload_len, 5);
    CHECK_INT(h.header_len, 2);
    /* The same frame breaks 5.1 on a server. */
    CHECK_INT(ws_frame_header_parse(hello, 2, REQ, &h), PROTO);

    /* Single-frame masked text "Hello". */
    const uint8_t mhello[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d};
    CHECK_INT(parse_all_prefixes(mhello, 6, REQ, &h), 6);
    CHECK(h.fin && h.masked);
    CHECK_INT(h.payload_len, 5);
    CHECK(memcmp(h.mask, "\x37\xfa\x21\x3d", 4) == 0);

    /* Fragmented unmasked text: first fragment not FIN, then a FIN continuation. */
    const uint8_t frag1[] = {0x01, 0x03}, frag2[] = {0x80, 0x02};
    CHECK_INT(parse_all_prefixes(frag1, 2, 0, &h), 2);
    CHECK(!h.fin);
    CHECK_INT(h.opcode, WS_OP_TEXT);
    CHECK_INT(h.payload_len, 3);
    CHECK_INT(parse_all_prefixes(frag2, 2, 0, &h), 2);
    CHECK(h.fin);
    CHECK_INT(h.opcode, WS_OP_CONT);
    CHECK_INT(h.payload_len, 2);

    /* Unmasked ping, masked pong. */
    const uint8_t ping[] = {0x89, 0x05}, pong[] = {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d};
    CHECK_INT(parse_all_prefixes(ping, 2, 0, &h), 2);
    CHECK_INT(h.opcode, WS_OP_PING);
    CHECK_INT(parse_all_prefixes(pong, 6, REQ, &h), 6);
    CHECK_INT(h.opcode, WS_OP_PONG);
    CHECK_INT(h.payload_len, 5);

    /* 256 bytes binary, 16-bit length; 64 KiB binary, 64-bit length. */
    const uint8_t b256[] = {0x82, 0x7e, 0x01, 0x00};
    CHECK_INT(parse_all_prefixes(b256, 4, 0, &h), 4);
    CHECK_INT(h.opcode, WS_OP_BINARY);
    CHECK_INT(h.payload_len, 256);
    const uint8_t b64k[] = {0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0};
    CHECK_INT(parse_all_prefixes(b64k, 10, 0, &h), 10);
    CHECK_INT(h.payload_len, 65536);
    CHECK_INT(h.header_len, 10);
}

static void test_write_exact(void)
{
    uint8_t out[WS_FRAME_HEADER_MAX];
    const uint8_t key[4] = {0xde, 0xad, 0xbe, 0xef};

    CHECK_INT(ws_frame_header_write(out, WS_OP_TEXT, true, 0), 2);
    CHECK(memcmp(out, "\x81\x00", 2) == 0);
    CHECK_INT(ws_frame_header_write(out, WS_OP_BINARY, true, 125), 2);
    CHECK(memcmp(out, "\x82\x7d", 2) == 0);
    CHECK_INT(ws_frame_header_write(out, WS_OP_BINARY, true, 126), 4);
    CHECK(memcmp(out, "\x82\x7e\x00\x7e", 4) == 0);
    CHECK_INT(ws_frame_header_write(out, WS_OP_TEXT, false, 65535), 4);
    CHECK(memcmp(out, "\x01\x7e\xff\xff", 4) == 0);
    CHECK_INT(ws_frame_header_write(out, WS_OP_BINARY, true, 65536), 10);
    CHECK(memcmp(out, "\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10) == 0);
    CHECK_INT(ws_frame_header_write(out, WS_OP_CONT, true, 0x0102030405060708ull), 10);
    CHECK(memcmp(out, "\x80\x7f\x01\x02\x03\x04\x05\x06\x07\x08", 10) == 0);
    CHECK_INT(ws_frame_header_write(out, WS_OP_CLOSE, true, 2), 2);
    CHECK(memcmp(out, "\x88\x02", 2) == 0);

    CHECK_INT(ws_frame_header_write_masked(out, WS_OP_TEXT, true, 5, key), 6);
    CHECK(memcmp(out, "\x81\x85\xde\xad\xbe\xef", 6) == 0);
    CHECK_INT(ws_frame_header_write_masked(out, WS_OP_BINARY, true, 256, key), 8);
    CHECK(memcmp(out, "\x82\xfe\x01\x00\xde\xad\xbe\xef", 8) == 0);
    CHECK_INT(ws_frame_header_write_masked(out, WS_OP_BINARY, false, 65536, key), 14);
    CHECK(memcmp(out, "\x02\xff\x00\x00\x00\x00\x00\x01\x00\x00\xde\xad\xbe\xef", 14) == 0);

    CHECK_INT(ws_frame_header_size(0), 2);
    CHECK_INT(ws_frame_header_size(125), 2);
    CHECK_INT(ws_frame_header_size(126), 4);
    CHECK_INT(ws_frame_header_size(65535), 4);
    CHECK_INT(ws_frame_header_size(65536), 10);
    CHECK_INT(ws_frame_header_size(UINT64_MAX >> 1), 10);
}

/* Writing then parsing gives back every field, for both header kinds. */
static void test_roundtrip(void)
{
    const uint64_t lens[] = {0,
                             1,
                             124,
                             125,
                             126,
                             127,
                             255,
                             256,
                             65535,
                             65536,
                             65537,
                             1ull << 32,
                             12345678901ull,
                             (1ull << 63) - 1};
    const uint8_t ops[] = {WS_OP_CONT,  WS_OP_TEXT, WS_OP_BINARY,
                           WS_OP_CLOSE, WS_OP_PING, WS_OP_PONG};
    const uint8_t key[4] = {0x11, 0x22, 0x33, 0x44};
    for (size_t o = 0; o < sizeof(ops); o++) {
        for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
            for (int fin = 0; fin < 2; fin++) {
                uint8_t op = ops[o];
                uint64_t len = lens[l];
                bool legal = !ws_opcode_is_control(op) || (fin && len <= WS_CONTROL_MAX);
                uint8_t out[WS_FRAME_HEADER_MAX];
                ws_frame_header_t h;
                size_t hl = ws_frame_header_write(out, op, fin, len);
                CHECK_INT(hl, ws_frame_header_size(len));
                if (!legal) {
                    CHECK_INT(ws_frame_header_parse(out, hl, 0, &h), PROTO);
                    continue;
                }
                CHECK_INT(parse_all_prefixes(out, hl, 0, &h), hl);
                CHECK(h.fin == (bool)fin && !h.masked && h.rsv == 0);
                CHECK_INT(h.opcode, op);
                CHECK_INT(h.payload_len, len);
                CHECK_INT(h.header_len, hl);

                hl = ws_frame_header_write_masked(out, op, fin, len, key);
                CHECK_INT(hl, ws_frame_header_size(len) + 4);
                CHECK_INT(parse_all_prefixes(out, hl, REQ, &h), hl);
                CHECK(h.fin == (bool)fin && h.masked);
                CHECK_INT(h.payload_len, len);
                CHECK(memcmp(h.mask, key, 4) == 0);
            }
        }
    }
}

static void test_rejections(void)
{
    ws_frame_header_t h;
    /* RSV bits without an extension, each alone; judged from the first byte alone. */
    for (uint8_t rsv = 1; rsv < 8; rsv++) {
        uint8_t b[2] = {(uint8_t)(0x81 | (rsv << 4)), 0x80};
        CHECK_INT(ws_frame_header_parse(b, 1, REQ, &h), PROTO);
        CHECK_INT(ws_frame_header_parse(b, 2, 0, &h), PROTO);
    }
    /* RSV1 with an extension: allowed on text/binary only (RFC 7692 6). */
    const uint8_t rsv1_text[] = {0xc1, 0x00}, rsv1_bin[] = {0x42, 0x00};
    CHECK_INT(ws_frame_header_parse(rsv1_text, 2, WS_FRAME_ALLOW_RSV1, &h), 2);
    CHECK_INT(h.rsv, 4);
    CHECK_INT(ws_frame_header_parse(rsv1_bin, 2, WS_FRAME_ALLOW_RSV1, &h), 2);
    const uint8_t rsv1_cont[] = {0xc0, 0x00}, rsv1_ping[] = {0xc9, 0x00}, rsv2[] = {0xa1, 0};
    CHECK_INT(ws_frame_header_parse(rsv1_cont, 2, WS_FRAME_ALLOW_RSV1, &h), PROTO);
    CHECK_INT(ws_frame_header_parse(rsv1_ping, 2, WS_FRAME_ALLOW_RSV1, &h), PROTO);
    CHECK_INT(ws_frame_header_parse(rsv2, 2, WS_FRAME_ALLOW_RSV1, &h), PROTO);

    /* Reserved opcodes, with and without FIN. */
    for (uint8_t op = 0; op < 16; op++) {
        bool reserved = (op >= 3 && op <= 7) || op >= 0xb;
        uint8_t b[6] = {(uint8_t)(0x80 | op), 0x80, 1, 2, 3, 4};
        int rc = ws_frame_header_parse(b, 6, REQ, &h);
        CHECK_INT(rc, reserved ? PROTO : 6);
        if (reserved)
            CHECK_INT(ws_frame_header_parse(b, 1, REQ, &h), PROTO);
    }

    /* Control frames: fragmented, or over 125 bytes (also as 16/64-bit lengths). */
    const uint8_t ctl[] = {WS_OP_CLOSE, WS_OP_PING, WS_OP_PONG};
    for (size_t i = 0; i < sizeof(ctl); i++) {
        uint8_t nofin[2] = {ctl[i], 0x80};
        CHECK_INT(ws_frame_header_parse(nofin, 1, REQ, &h), PROTO);
        uint8_t l125[6] = {(uint8_t)(0x80 | ctl[i]), 0x80 | 125, 0, 0, 0, 0};
        CHECK_INT(ws_frame_header_parse(l125, 6, REQ, &h), 6);
        uint8_t l126[8] = {(uint8_t)(0x80 | ctl[i]), 0x80 | 126, 0, 126, 0, 0, 0, 0};
        CHECK_INT(ws_frame_header_parse(l126, 2, REQ, &h), PROTO);
        /* Even a 16-bit encoding of a small length is refused for a control frame: 5.5
         * says all control frames MUST have a payload length of 125 or less, and a
         * sender that obeys minimal encoding can never produce one. */
        uint8_t l16small[8] = {(uint8_t)(0x80 | ctl[i]), 0x80 | 126, 0, 5, 0, 0, 0, 0};
        CHECK_INT(ws_frame_header_parse(l16small, 8, REQ, &h), PROTO);
        uint8_t l127[2] = {(uint8_t)(0x80 | ctl[i]), 0x80 | 127};
        CHECK_INT(ws_frame_header_parse(l127, 2, REQ, &h), PROTO);
    }

    /* Unmasked frame when masks are required; fine otherwise. */
    const uint8_t unmasked[] = {0x82, 0x03};
    CHECK_INT(ws_frame_header_parse(unmasked, 2, REQ, &h), PROTO);
    CHECK_INT(ws_frame_header_parse(unmasked, 2, 0, &h), 2);

    /* 64-bit length with the top bit set: refused as soon as its first byte is in. */
    const uint8_t top[] = {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4};
    CHECK_INT(ws_frame_header_parse(top, 2, REQ, &h), WS_INCOMPLETE);
    CHECK_INT(ws_frame_header_parse(top, 3, REQ, &h), PROTO);
    CHECK_INT(ws_frame_header_parse(top, 14, REQ, &h), PROTO);
    const uint8_t top_ok[] = {0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff,
                              0xff, 0xff, 0xff, 1,    2,    3,    4};
    CHECK_INT(ws_frame_header_parse(top_ok, 14, REQ, &h), 14);
    CHECK_INT(h.payload_len, (1ull << 63) - 1);

    CHECK_INT(ws_frame_header_parse(top, 0, REQ, &h), WS_INCOMPLETE);
}

/* Non-minimal encodings are accepted (see core/frame.c for why). */
static void test_non_minimal(void)
{
    ws_frame_header_t h;
    const uint8_t l16[] = {0x82, 0x7e, 0x00, 0x05};
    CHECK_INT(ws_frame_header_parse(l16, 4, 0, &h), 4);
    CHECK_INT(h.payload_len, 5);
    const uint8_t l64[] = {0x81, 0xff, 0, 0, 0, 0, 0, 0, 0, 0x05, 9, 9, 9, 9};
    CHECK_INT(ws_frame_header_parse(l64, 14, REQ, &h), 14);
    CHECK_INT(h.payload_len, 5);
    CHECK_INT(h.header_len, 14);
    const uint8_t l64b[] = {0x82, 0x7f, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    CHECK_INT(ws_frame_header_parse(l64b, 10, 0, &h), 10);
    CHECK_INT(h.payload_len, 65535);
}

/* Headers placed right before an inaccessible page: a read past n faults. */
static void test_no_overread(void)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uint8_t *map = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(map != MAP_FAILED);
    REQUIRE(mprotect(map + page, page, PROT_NONE) == 0);
    const uint8_t full[] = {0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4};
    for (size_t n = 0; n <= sizeof(full); n++) {
        uint8_t *p = map + page - n;
        memcpy(p, full, n);
        ws_frame_header_t h;
        CHECK_INT(ws_frame_header_parse(p, n, REQ, &h), n == sizeof(full) ? 14 : WS_INCOMPLETE);
    }
    munmap(map, 2 * page);
}

static void test_close_codes(void)
{
    /* The table written out from RFC 6455 7.4.1/7.4.2, independent of the implementation. */
    for (unsigned code = 0; code < 70000; code++) {
        bool valid = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
                     (code >= 3000 && code <= 4999);
        CHECK(ws_frame_close_code_valid(code) == valid);
    }
    const unsigned bad[] = {0,    999,  1004, 1005, 1006, 1012, 1013,
                            1014, 1015, 1016, 2000, 2999, 5000, 65535};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(!ws_frame_close_code_valid(bad[i]));
    const unsigned good[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009,
                             1010, 1011, 3000, 3999, 4000, 4999};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        CHECK(ws_frame_close_code_valid(good[i]));
}

int main(void)
{
    test_rfc_examples();
    test_write_exact();
    test_roundtrip();
    test_rejections();
    test_non_minimal();
    test_no_overread();
    test_close_codes();
    return check_exit_status("test_frame");
}
