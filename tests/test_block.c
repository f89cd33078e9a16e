/* Unit test for core/block.c: exact frame bytes for each length encoding, reference
 * counting (single, batched, and from several threads at once), the size limit, and batches
 * (frames appended back to back, growing past the first allocation). */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uringws/block.h"
#include "uringws/frame.h"

#include "check.h"

static uint32_t refs(ws_block_t *b)
{
    return atomic_load_explicit(&b->refs, memory_order_relaxed);
}

static void test_frame_bytes(void)
{
    static const struct {
        size_t len;
        uint8_t hl;
        uint8_t header[10];
    } cases[] = {
        {0, 2, {0x82, 0x00}},
        {125, 2, {0x82, 0x7d}},
        {126, 4, {0x82, 0x7e, 0x00, 0x7e}},
        {65535, 4, {0x82, 0x7e, 0xff, 0xff}},
        {65536, 10, {0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00}},
    };
    uint8_t *payload = malloc(65536);
    REQUIRE(payload);
    for (size_t i = 0; i < 65536; i++)
        payload[i] = (uint8_t)(i * 7 + 3);
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        size_t len = cases[c].len;
        ws_block_t *b = ws_block_frame(WS_OP_BINARY, len ? payload : NULL, len);
        REQUIRE(b != NULL);
        CHECK(refs(b) == 1);
        CHECK(b->seq == 0);
        CHECK(b->opcode == WS_OP_BINARY);
        REQUIRE(b->header_len == cases[c].hl);
        CHECK(b->len == cases[c].hl + len);
        CHECK(memcmp(b->data, cases[c].header, cases[c].hl) == 0);
        CHECK(memcmp(b->data + b->header_len, payload, len) == 0);

        /* The frame parses back as one unmasked FIN frame filling the block exactly. */
        ws_frame_header_t h;
        CHECK(ws_frame_header_parse(b->data, b->len, 0, &h) == cases[c].hl);
        CHECK(h.fin && !h.masked && h.opcode == WS_OP_BINARY && h.payload_len == len);
        ws_block_unref(b);
    }

    ws_block_t *t = ws_block_frame(WS_OP_TEXT, (const uint8_t *)"hi", 2);
    REQUIRE(t != NULL);
    CHECK(t->len == 4 && memcmp(t->data, "\x81\x02hi", 4) == 0);
    ws_block_unref(t);
    free(payload);
}

static void test_refcount(void)
{
    ws_block_t *b = ws_block_frame(WS_OP_TEXT, (const uint8_t *)"x", 1);
    REQUIRE(b != NULL);
    ws_block_ref(b, 1);
    CHECK(refs(b) == 2);
    ws_block_ref(b, 1000);
    CHECK(refs(b) == 1002);
    ws_block_unref_n(b, 0);
    CHECK(refs(b) == 1002);
    ws_block_unref_n(b, 1000);
    CHECK(refs(b) == 2);
    ws_block_unref(b);
    CHECK(refs(b) == 1);
    ws_block_unref(b); /* freed here; a sanitizer build reports any later touch */
}

/* Blocks over the 32-bit size limit are refused before the payload is read, so a bogus
 * pointer is never dereferenced. */
static void test_too_big(void)
{
    static const uint8_t dummy[1];
    CHECK(ws_block_frame(WS_OP_BINARY, dummy, (size_t)UINT32_MAX - 13) == NULL);
    CHECK(ws_block_frame(WS_OP_BINARY, dummy, (size_t)UINT32_MAX) == NULL);
    CHECK(ws_block_frame(WS_OP_BINARY, dummy, SIZE_MAX) == NULL);
}

enum { THREADS = 4, PER_THREAD = 200000 };

static void *unref_worker(void *arg)
{
    ws_block_t *b = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        if (i & 1) {
            ws_block_unref(b);
        } else {
            /* Interleave taking references with dropping them, as a core would. */
            ws_block_ref(b, 2);
            ws_block_unref_n(b, 3);
        }
    }
    return NULL;
}

/* Concurrent drops: a lost update would leave the count wrong (or free early, which a
 * sanitizer build catches). */
static void test_threads(void)
{
    ws_block_t *b = ws_block_frame(WS_OP_TEXT, (const uint8_t *)"shared", 6);
    REQUIRE(b != NULL);
    ws_block_ref(b, THREADS * PER_THREAD); /* one per drop below, plus the creator's */
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        REQUIRE(pthread_create(&t[i], NULL, unref_worker, b) == 0);
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_join(t[i], NULL) == 0);
    CHECK(refs(b) == 1);
    CHECK(memcmp(b->data + b->header_len, "shared", 6) == 0);
    ws_block_unref(b);
}

/* A batch holds the appended frames' bytes in order, whatever the growth steps. */
static void test_batch(void)
{
    uint32_t cap = 16;
    ws_block_t *b = ws_block_batch(cap);
    REQUIRE(b != NULL);
    CHECK(refs(b) == 1);
    CHECK_INT(b->len, 0);
    CHECK_INT(b->opcode, 0);
    uint8_t *want = malloc(1 << 20);
    REQUIRE(want);
    size_t total = 0;
    for (uint32_t i = 0; i < 300; i++) {
        uint8_t payload[1000];
        size_t len = (i * 37) % sizeof(payload);
        for (size_t k = 0; k < len; k++)
            payload[k] = (uint8_t)(i + k);
        ws_block_t *f = ws_block_frame(i & 1 ? WS_OP_TEXT : WS_OP_BINARY, payload, len);
        REQUIRE(f != NULL);
        memcpy(want + total, f->data, f->len);
        total += f->len;
        b = ws_block_append(b, &cap, f->data, f->len);
        REQUIRE(b != NULL);
        ws_block_unref(f);
        CHECK(cap >= b->len);
    }
    CHECK_INT(b->len, total);
    CHECK(memcmp(b->data, want, total) == 0);
    /* Growth doubles, so 300 appends take a handful of reallocations, not 300. */
    CHECK(cap < 2 * total + 16);
    ws_block_ref(b, 2);
    ws_block_unref_n(b, 3);
    free(want);
}

int main(void)
{
    test_frame_bytes();
    test_refcount();
    test_too_big();
    test_threads();
    test_batch();
    return check_exit_status("test_block");
}
