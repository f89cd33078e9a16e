/* Send queue: gathering into iovecs under the iovec and byte caps, partial-send accounting
 * across entry boundaries, release of fully sent entries only, dropping unsent entries while
 * a send is in flight, and the per-core block references (one block reference per core, the
 * recipients counted without atomics). */
#include <string.h>

#include "../net/sendq.h"
#include "check.h"
#include "uringws/frame.h"

static uint8_t *owned(const char *s)
{
    size_t n = strlen(s);
    uint8_t *p = malloc(n);
    REQUIRE(p);
    memcpy(p, s, n);
    return p;
}

static void push_owned(ws_sendq_t *q, const char *s)
{
    uint8_t *p = owned(s);
    REQUIRE(ws_sendq_push(q, WS_SQ_OWNED, p, (uint32_t)strlen(s), p) == 0);
}

/* Concatenates what the iovecs describe. */
static size_t flatten(const struct iovec *iov, unsigned n, char *out)
{
    size_t len = 0;
    for (unsigned i = 0; i < n; i++) {
        memcpy(out + len, iov[i].iov_base, iov[i].iov_len);
        len += iov[i].iov_len;
    }
    out[len] = '\0';
    return len;
}

static void gather_and_partial(void)
{
    ws_bref_pool_t pool;
    ws_bref_pool_init(&pool);
    ws_sendq_t q;
    ws_sendq_init(&q);
    CHECK(ws_sendq_empty(&q));
    push_owned(&q, "hello ");
    push_owned(&q, "big ");
    REQUIRE(ws_sendq_push(&q, WS_SQ_STATIC, "world", 5, NULL) == 0);
    REQUIRE(ws_sendq_push(&q, WS_SQ_STATIC, "", 0, NULL) == 0); /* nothing queued */
    CHECK_EQ_U(q.count, 3);
    CHECK_EQ_U(q.bytes, 15);

    struct iovec iov[8];
    char buf[256];
    size_t bytes;
    /* The iovec cap: two entries now, the third later. */
    unsigned n = ws_sendq_gather(&q, iov, 2, 1 << 20, &bytes);
    CHECK_EQ_U(n, 2);
    CHECK_EQ_U(bytes, 10);
    flatten(iov, n, buf);
    CHECK(strcmp(buf, "hello big ") == 0);
    CHECK(ws_sendq_has_unsent(&q)); /* "world" waits outside the send */
    /* While a send is in flight nothing more is gathered. */
    CHECK_EQ_U(ws_sendq_gather(&q, iov, 8, 1 << 20, &bytes), 0);

    /* Short send: 8 of 10 bytes. "hello " is released, "big " is partly sent. */
    CHECK_EQ_U(ws_sendq_complete(&q, 8, &pool), 1);
    CHECK_EQ_U(q.count, 2);
    CHECK_EQ_U(q.head_off, 2);
    CHECK_EQ_U(q.bytes, 7);
    /* Progress counts the bytes taken and the frames finished (the partly sent one is not). */
    CHECK_EQ_U(q.sent_bytes, 8);
    CHECK_EQ_U(q.sent_frames, 1);
    n = ws_sendq_gather(&q, iov, 8, 1 << 20, &bytes);
    CHECK_EQ_U(n, 2);
    CHECK_EQ_U(bytes, 7);
    flatten(iov, n, buf);
    CHECK(strcmp(buf, "g world") == 0);
    /* Zero bytes (an error): nothing released, nothing lost. */
    CHECK_EQ_U(ws_sendq_complete(&q, 0, &pool), 0);
    CHECK_EQ_U(q.bytes, 7);
    n = ws_sendq_gather(&q, iov, 8, 1 << 20, &bytes);
    CHECK_EQ_U(bytes, 7);
    CHECK_EQ_U(ws_sendq_complete(&q, 7, &pool), 2);
    CHECK(ws_sendq_empty(&q));
    CHECK_EQ_U(q.bytes, 0);
    CHECK_EQ_U(q.head_off, 0);
    CHECK_EQ_U(q.sent_bytes, 15);
    CHECK_EQ_U(q.sent_frames, 3);
    ws_sendq_clear(&q, &pool);
}

static void byte_cap_and_growth(void)
{
    ws_bref_pool_t pool;
    ws_bref_pool_init(&pool);
    ws_sendq_t q;
    ws_sendq_init(&q);
    /* 1000 entries force the ring to grow several times and wrap. */
    char expect[8000];
    size_t elen = 0;
    for (int i = 0; i < 1000; i++) {
        char s[16];
        int k = snprintf(s, sizeof(s), "%d,", i);
        push_owned(&q, s);
        memcpy(expect + elen, s, (size_t)k);
        elen += (size_t)k;
    }
    expect[elen] = '\0';
    CHECK_EQ_U(q.count, 1000);
    CHECK_EQ_U(q.bytes, elen);
    char got[8000];
    size_t glen = 0;
    struct iovec iov[64];
    int sends = 0;
    while (!ws_sendq_empty(&q)) {
        size_t bytes;
        unsigned n = ws_sendq_gather(&q, iov, 64, 100, &bytes);
        REQUIRE(n > 0);
        CHECK(bytes <= 100 || n == 1);
        /* Send an odd amount so short sends split entries everywhere. */
        size_t sent = bytes > 37 ? bytes - 37 : bytes;
        char tmp[8000];
        flatten(iov, n, tmp);
        memcpy(got + glen, tmp, sent);
        glen += sent;
        ws_sendq_complete(&q, sent, &pool);
        sends++;
    }
    got[glen] = '\0';
    CHECK_EQ_U(glen, elen);
    CHECK(strcmp(got, expect) == 0);
    CHECK(sends > 1000 / 64);
    ws_sendq_clear(&q, &pool);
}

/* One block, three recipients on this core: the block is freed exactly when the last of
 * the three sends completes (ASan flags a double free or a leak). */
static void brefs(void)
{
    ws_bref_pool_t pool;
    ws_bref_pool_init(&pool);
    static const uint8_t payload[] = "broadcast!";
    ws_block_t *b = ws_block_frame(WS_OP_TEXT, payload, sizeof(payload) - 1);
    REQUIRE(b);
    CHECK_EQ_U(b->len, 2 + sizeof(payload) - 1);
    ws_bref_t *br = ws_bref_new(&pool, b, 3);
    REQUIRE(br);
    CHECK_EQ_U(pool.live, 1);
    ws_sendq_t q[3];
    for (int i = 0; i < 3; i++) {
        ws_sendq_init(&q[i]);
        REQUIRE(ws_sendq_push(&q[i], WS_SQ_BREF, b->data, b->len, br) == 0);
    }
    struct iovec iov[4];
    size_t bytes;
    CHECK_EQ_U(ws_sendq_gather(&q[0], iov, 4, 1 << 20, &bytes), 1);
    CHECK(iov[0].iov_base == b->data);
    CHECK_EQ_U(ws_sendq_complete(&q[0], bytes, &pool), 1);
    CHECK_EQ_U(br->refs, 2);
    /* Queue 1 drops its entry unsent (slow consumer); queue 2 is cleared at teardown. */
    ws_sendq_drop_unsent(&q[1], &pool);
    CHECK_EQ_U(br->refs, 1);
    CHECK(ws_sendq_empty(&q[1]));
    CHECK_EQ_U(pool.live, 1);
    ws_sendq_clear(&q[2], &pool);
    CHECK_EQ_U(pool.live, 0); /* block unreferenced (freed), bref back in the pool */
    CHECK_EQ_U(pool.nfree, 1);
    ws_sendq_clear(&q[0], &pool);
    ws_sendq_clear(&q[1], &pool);
    ws_bref_pool_free(&pool);
}

/* Dropping while a send is in flight keeps the in-flight entries (their memory is the
 * kernel's until the completion) and a partly sent head. */
static void drop_keeps_inflight(void)
{
    ws_bref_pool_t pool;
    ws_bref_pool_init(&pool);
    ws_sendq_t q;
    ws_sendq_init(&q);
    push_owned(&q, "aaaa");
    push_owned(&q, "bbbb");
    push_owned(&q, "cccc");
    struct iovec iov[2];
    size_t bytes;
    CHECK_EQ_U(ws_sendq_gather(&q, iov, 2, 1 << 20, &bytes), 2);
    ws_sendq_drop_unsent(&q, &pool);
    CHECK_EQ_U(q.count, 2);
    CHECK_EQ_U(q.bytes, 8);
    CHECK_EQ_U(ws_sendq_complete(&q, 6, &pool), 1); /* "bbbb" now partly sent */
    push_owned(&q, "dddd");
    ws_sendq_drop_unsent(&q, &pool); /* no send in flight: keeps the partial head only */
    CHECK_EQ_U(q.count, 1);
    CHECK_EQ_U(q.bytes, 2);
    CHECK_EQ_U(ws_sendq_gather(&q, iov, 2, 1 << 20, &bytes), 1);
    CHECK_EQ_U(bytes, 2);
    CHECK(memcmp(iov[0].iov_base, "bb", 2) == 0);
    CHECK_EQ_U(ws_sendq_complete(&q, 2, &pool), 1);
    CHECK(ws_sendq_empty(&q));
    ws_sendq_clear(&q, &pool);
}

/* --slow-policy drop-oldest: the oldest broadcast frames no send has started go first; a
 * partly sent head, frames in flight and owned entries (control frames) stay, in order, and
 * dropping stops as soon as the queue is within both limits. */
static void drop_oldest(void)
{
    ws_bref_pool_t pool;
    ws_bref_pool_init(&pool);
    ws_sendq_t q;
    ws_sendq_init(&q);
    ws_block_t *b[6];
    for (int i = 0; i < 6; i++) {
        uint8_t payload[8];
        memset(payload, '0' + i, sizeof(payload));
        b[i] = ws_block_frame(WS_OP_BINARY, payload, sizeof(payload)); /* 10 bytes each */
        REQUIRE(b[i]);
        ws_bref_t *br = ws_bref_new(&pool, b[i], 1);
        REQUIRE(br);
        REQUIRE(ws_sendq_push(&q, WS_SQ_BREF, b[i]->data, b[i]->len, br) == 0);
        if (i == 2)
            push_owned(&q, "PONG"); /* a control frame between frames 2 and 3 */
    }
    CHECK_EQ_U(q.count, 7);
    CHECK_EQ_U(q.bytes, 64);
    struct iovec iov[8];
    size_t bytes;
    /* Frame 0 in flight, then partly sent: it must be finished whatever is dropped. */
    CHECK_EQ_U(ws_sendq_gather(&q, iov, 1, 1 << 20, &bytes), 1);
    uint64_t dropped = 0;
    CHECK_EQ_U(ws_sendq_drop_oldest(&q, 0, 100, &pool, &dropped), 5); /* in flight: kept */
    CHECK_EQ_U(dropped, 50);
    CHECK_EQ_U(q.count, 2);
    CHECK_EQ_U(ws_sendq_complete(&q, 3, &pool), 0);
    for (int i = 0; i < 6; i++) {
        uint8_t payload[8];
        memset(payload, 'a' + i, sizeof(payload));
        ws_block_t *nb = ws_block_frame(WS_OP_BINARY, payload, sizeof(payload));
        REQUIRE(nb);
        ws_bref_t *br = ws_bref_new(&pool, nb, 1);
        REQUIRE(br);
        REQUIRE(ws_sendq_push(&q, WS_SQ_BREF, nb->data, nb->len, br) == 0);
    }
    /* 7 left of frame 0, PONG (4 bytes), a..f (60): 71. Down to 40 bytes: a, b, c, d go. */
    CHECK_EQ_U(q.bytes, 71);
    dropped = 0;
    CHECK_EQ_U(ws_sendq_drop_oldest(&q, 40, 100, &pool, &dropped), 4);
    CHECK_EQ_U(dropped, 40);
    CHECK_EQ_U(q.bytes, 31);
    /* The frame-count limit alone: 4 entries left, at most 3 wanted: e goes. */
    dropped = 0;
    CHECK_EQ_U(ws_sendq_drop_oldest(&q, 1000, 3, &pool, &dropped), 1);
    CHECK_EQ_U(q.count, 3);
    char out[128];
    size_t len = flatten(iov, ws_sendq_gather(&q, iov, 8, 1 << 20, &bytes), out);
    /* The tail of frame 0, the PONG, then frame f whole (header 0x82 0x08, payload). */
    CHECK_EQ_U(len, 21);
    CHECK(memcmp(out, "0000000", 7) == 0);
    CHECK(memcmp(out + 7, "PONG", 4) == 0);
    CHECK(memcmp(out + 11,
                 "\x82\x08"
                 "ffffffff",
                 10) == 0);
    CHECK_EQ_U(ws_sendq_complete(&q, bytes, &pool), 3);
    CHECK(ws_sendq_empty(&q));
    CHECK_EQ_U(pool.live, 0); /* every dropped and sent block released exactly once */
    ws_sendq_clear(&q, &pool);
    ws_bref_pool_free(&pool);
}

/* ws_sendq_coalesce: runs of small iovecs become one copy, the byte sequence never changes,
 * large ones and lone small ones stay by reference, and the cork capacity is respected. */
static void coalesce(void)
{
    static uint8_t src[1 << 16];
    for (size_t i = 0; i < sizeof(src); i++)
        src[i] = (uint8_t)(i * 131 + (i >> 8));
    struct iovec iov[64], orig[64];
    static char before[1 << 17], after[1 << 17];
    uint8_t cork[1024];
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (int round = 0; round < 2000; round++) {
        unsigned n = 1 + (unsigned)(round % 64);
        size_t off = 0;
        for (unsigned i = 0; i < n; i++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            size_t len = (seed >> 33) % 4 == 0 ? 300 + (seed >> 40) % 700 : (seed >> 40) % 90;
            if (off + len > sizeof(src))
                len = 0;
            iov[i].iov_base = src + off;
            iov[i].iov_len = len;
            off += len;
        }
        memcpy(orig, iov, n * sizeof(iov[0]));
        size_t lb = flatten(iov, n, before);
        memset(cork, 0xee, sizeof(cork));
        unsigned m = ws_sendq_coalesce(iov, n, cork, sizeof(cork), 128);
        size_t la = flatten(iov, m, after);
        CHECK_EQ_U(la, lb);
        CHECK(memcmp(before, after, lb) == 0);
        CHECK(m <= n);
        /* Every output iovec is either one of the inputs untouched or lies inside the cork. */
        size_t corked = 0;
        for (unsigned i = 0; i < m; i++) {
            const uint8_t *b = iov[i].iov_base;
            if (b >= cork && b < cork + sizeof(cork)) {
                CHECK(b + iov[i].iov_len <= cork + sizeof(cork));
                corked += iov[i].iov_len;
            } else {
                CHECK(b >= src && b < src + sizeof(src));
            }
        }
        CHECK(corked <= sizeof(cork));
        /* Nothing is left uncoalesced that could have been: no two adjacent small inputs
         * both kept by reference while the cork had room for them. */
        for (unsigned i = 0; i + 1 < m; i++) {
            bool a_ref = !((uint8_t *)iov[i].iov_base >= cork &&
                           (uint8_t *)iov[i].iov_base < cork + sizeof(cork));
            bool b_ref = !((uint8_t *)iov[i + 1].iov_base >= cork &&
                           (uint8_t *)iov[i + 1].iov_base < cork + sizeof(cork));
            if (a_ref && b_ref && iov[i].iov_len <= 128 && iov[i + 1].iov_len <= 128)
                CHECK(corked + iov[i].iov_len + iov[i + 1].iov_len > sizeof(cork));
        }
    }
    /* A concrete case: three small, one large, two small. */
    uint8_t a[] = "ab", b[] = "cd", c2[] = "ef", big[200], d[] = "gh", e[] = "ij";
    memset(big, 'x', sizeof(big));
    struct iovec v[6] = {{a, 2}, {b, 2}, {c2, 2}, {big, sizeof(big)}, {d, 2}, {e, 2}};
    unsigned m = ws_sendq_coalesce(v, 6, cork, sizeof(cork), 128);
    CHECK_EQ_U(m, 3);
    CHECK_EQ_U(v[0].iov_len, 6);
    CHECK(memcmp(v[0].iov_base, "abcdef", 6) == 0);
    CHECK(v[1].iov_base == big);
    CHECK_EQ_U(v[2].iov_len, 4);
    CHECK(memcmp(v[2].iov_base, "ghij", 4) == 0);
}

/* A batch entry (several frames in one block) counts its frames: in q.frames, in what
 * drop-oldest returns and in the frame limit, while it stays one entry and one iovec. */
static void batch_frames(void)
{
    ws_bref_pool_t pool;
    ws_bref_pool_init(&pool);
    ws_sendq_t q;
    ws_sendq_init(&q);
    uint32_t cap = 64;
    ws_block_t *batch = ws_block_batch(cap);
    REQUIRE(batch);
    for (int i = 0; i < 5; i++) {
        uint8_t payload[4];
        memset(payload, 'a' + i, sizeof(payload));
        ws_block_t *f = ws_block_frame(WS_OP_TEXT, payload, sizeof(payload));
        REQUIRE(f);
        batch = ws_block_append(batch, &cap, f->data, f->len);
        REQUIRE(batch);
        ws_block_unref(f);
    }
    ws_bref_t *br = ws_bref_new(&pool, batch, 2);
    REQUIRE(br);
    CHECK_EQ_U(br->frames, 1);
    br->frames = 5;
    ws_sendq_t q2;
    ws_sendq_init(&q2);
    REQUIRE(ws_sendq_push(&q, WS_SQ_BREF, batch->data, batch->len, br) == 0);
    REQUIRE(ws_sendq_push(&q2, WS_SQ_BREF, batch->data, batch->len, br) == 0);
    push_owned(&q, "PONG");
    CHECK_EQ_U(q.count, 2);
    CHECK_EQ_U(q.frames, 6);
    struct iovec iov[4];
    size_t bytes;
    CHECK_EQ_U(ws_sendq_gather(&q2, iov, 4, 1 << 20, &bytes), 1);
    CHECK_EQ_U(bytes, 30);
    /* Over a 3-frame limit: the whole batch goes (5 frames), the PONG stays. */
    uint64_t dropped = 0;
    CHECK_EQ_U(ws_sendq_drop_oldest(&q, 1000, 3, &pool, &dropped), 5);
    CHECK_EQ_U(dropped, 30);
    CHECK_EQ_U(q.frames, 1);
    CHECK_EQ_U(q.count, 1);
    CHECK_EQ_U(q.sent_frames, 0); /* drops are not progress */
    CHECK_EQ_U(q.sent_bytes, 0);
    CHECK_EQ_U(pool.live, 1); /* q2 still holds the batch */
    CHECK_EQ_U(ws_sendq_complete(&q2, bytes, &pool), 1);
    CHECK_EQ_U(q2.frames, 0);
    CHECK_EQ_U(q2.sent_frames, 5); /* a batch entry finishes all its frames */
    CHECK_EQ_U(q2.sent_bytes, 30);
    CHECK_EQ_U(pool.live, 0);
    ws_sendq_clear(&q2, &pool);
    ws_sendq_clear(&q, &pool);
    CHECK_EQ_U(q.frames, 0);
    ws_bref_pool_free(&pool);
}

int main(void)
{
    gather_and_partial();
    byte_cap_and_growth();
    brefs();
    drop_keeps_inflight();
    drop_oldest();
    coalesce();
    batch_frames();
    return check_exit_status("test_net_sendq");
}
