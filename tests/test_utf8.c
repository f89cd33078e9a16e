/* Unit tests for the UTF-8 module (core/utf8*.c): every implementation (scalar, AVX2, AVX-512,
 * the dispatcher, the incremental validator) against a table of known verdicts modelled on
 * Markus Kuhn's UTF-8 decoder stress test, and against each other and the independent baseline
 * decoder (core/baseline.c) on random text at every alignment and length, with inputs placed
 * against PROT_NONE guard pages so that any read past either end faults.
 *
 * The incremental validator is checked against an oracle for the fail-fast position: the
 * shortest prefix that no continuation can make valid, found with the baseline decoder. The
 * dispatcher is exercised at every SIMD level the CPU has by re-running this program with
 * URINGWS_SIMD set (see run_dispatch_children()).
 *
 * Set UTF8_TEST_SEED to replay a run; the seed in use is printed first. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "uringws/cpu.h"
#include "uringws/utf8.h"

/* Each failed check also names the seed, for a replay with UTF8_TEST_SEED. */
#define CHECK_ON_FAIL() fprintf(stderr, "  (seed %" PRIu64 ")\n", g_seed)
#include "check.h"

/* Like CHECK, with a message, and dumps the input the check was about. */
#define CHECK_INPUT(cond, p, n, ...)                                                               \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            check_report_(__FILE__, __LINE__, "CHECK", __VA_ARGS__);                               \
            fprintf(stderr, "  (%s)", #cond);                                                      \
            dump_input(p, n);                                                                      \
            CHECK_ON_FAIL();                                                                       \
            check_count_(0);                                                                       \
        }                                                                                          \
    } while (0)

static uint64_t g_seed;
static uint64_t g_rng;
static unsigned long g_checks;

static void dump_input(const uint8_t *p, size_t n)
{
    fprintf(stderr, "\n  input (%zu bytes):", n);
    for (size_t i = 0; i < n && i < 96; i++)
        fprintf(stderr, "%s%02x", i % 32 == 0 ? "\n    " : " ", p[i]);
    fprintf(stderr, "%s\n", n > 96 ? " ..." : "");
}

/* splitmix64: small, seedable, good enough to pick bytes and positions. */
static uint64_t rnd(void)
{
    uint64_t z = (g_rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static size_t rnd_below(size_t n)
{
    return n ? (size_t)(rnd() % n) : 0;
}

/* ---- implementations under test ---- */

typedef struct impl {
    const char *name;
    bool (*fn)(const uint8_t *p, size_t n);
} impl_t;

static impl_t g_impls[5];
static int g_nimpls;

static void setup_impls(bool full)
{
    g_nimpls = 0;
    g_impls[g_nimpls++] = (impl_t){"baseline", ws_utf8_valid_baseline};
    g_impls[g_nimpls++] = (impl_t){"scalar", ws_utf8_valid_scalar};
    g_impls[g_nimpls++] = (impl_t){"dispatch", ws_utf8_valid};
    if (!full)
        return;
    if (ws_cpu_has_avx2())
        g_impls[g_nimpls++] = (impl_t){"avx2", ws_utf8_valid_avx2};
    else
        printf("note: CPU lacks AVX2, AVX2 validator not tested\n");
    if (ws_cpu_has_avx512())
        g_impls[g_nimpls++] = (impl_t){"avx512", ws_utf8_valid_avx512};
    else
        printf("note: CPU lacks AVX-512 F/BW/VL, AVX-512 validator not tested\n");
}

/* Every implementation must return `expect`. */
static void expect_all(const uint8_t *p, size_t n, bool expect, const char *what)
{
    for (int i = 0; i < g_nimpls; i++) {
        bool got = g_impls[i].fn(p, n);
        CHECK_INPUT(got == expect, p, n, "%s: %s returned %d, expected %d", what, g_impls[i].name,
                    got, expect);
        g_checks++;
    }
}

/* Every implementation must agree with the baseline decoder; returns the verdict. */
static bool agree_all(const uint8_t *p, size_t n, const char *what)
{
    bool ref = ws_utf8_valid_baseline(p, n);
    expect_all(p, n, ref, what);
    return ref;
}

/* ---- guarded buffers: PROT_NONE pages on both sides of the data ---- */

typedef struct guarded {
    uint8_t *map;  /* whole mapping */
    uint8_t *data; /* first byte after the leading guard page */
    size_t cap;    /* bytes between the guard pages, a multiple of the page size */
} guarded_t;

static void guarded_init(guarded_t *g, size_t cap)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    g->cap = (cap + pg - 1) / pg * pg;
    g->map =
        mmap(NULL, g->cap + 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(g->map != MAP_FAILED);
    REQUIRE(mprotect(g->map, pg, PROT_NONE) == 0);
    REQUIRE(mprotect(g->map + pg + g->cap, pg, PROT_NONE) == 0);
    g->data = g->map + pg;
}

static void guarded_free(guarded_t *g)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    munmap(g->map, g->cap + 2 * pg);
}

/* Copies p[0..n) so that it ends right before the trailing guard page. */
static const uint8_t *guarded_at_end(guarded_t *g, const uint8_t *p, size_t n)
{
    REQUIRE(n <= g->cap);
    uint8_t *dst = g->data + g->cap - n;
    if (n)
        memmove(dst, p, n);
    return dst;
}

/* Copies p[0..n) so that it starts right after the leading guard page. */
static const uint8_t *guarded_at_start(guarded_t *g, const uint8_t *p, size_t n)
{
    REQUIRE(n <= g->cap);
    if (n)
        memmove(g->data, p, n);
    return g->data;
}

/* ---- random text ---- */

static size_t encode(uint32_t cp, uint8_t *out)
{
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xc0 | (cp >> 6));
        out[1] = (uint8_t)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xe0 | (cp >> 12));
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (uint8_t)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (uint8_t)(0xf0 | (cp >> 18));
    out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (uint8_t)(0x80 | (cp & 0x3f));
    return 4;
}

/* A scalar value (never a surrogate) of the given encoded length (1..4), or one of the edge
 * values of the encoding one time in eight. */
static uint32_t rand_scalar(unsigned len)
{
    static const uint32_t edges[] = {0x00,    0x7f,    0x80,    0x7ff,    0x800,   0xfff,
                                     0x1000,  0xd7ff,  0xe000,  0xfffd,   0xffff,  0x10000,
                                     0x3ffff, 0x40000, 0xfffff, 0x100000, 0x10ffff};
    if (rnd_below(8) == 0)
        return edges[rnd_below(sizeof(edges) / sizeof(edges[0]))];
    switch (len) {
    case 1:
        return (uint32_t)rnd_below(0x80);
    case 2:
        return 0x80 + (uint32_t)rnd_below(0x800 - 0x80);
    case 3: {
        uint32_t cp = 0x800 + (uint32_t)rnd_below(0x10000 - 0x800 - 0x800);
        return cp >= 0xd800 ? cp + 0x800 : cp;
    }
    default:
        return 0x10000 + (uint32_t)rnd_below(0x110000 - 0x10000);
    }
}

enum text_kind { TEXT_MIXED, TEXT_ASCII, TEXT_MULTI, TEXT_MOSTLY_ASCII };

/* Fills out[0..n) with valid UTF-8 of the given kind; where the last character would not fit,
 * the remainder is ASCII. */
static void rand_text(uint8_t *out, size_t n, enum text_kind kind)
{
    size_t i = 0;
    while (i < n) {
        unsigned len;
        switch (kind) {
        case TEXT_ASCII:
            len = 1;
            break;
        case TEXT_MULTI:
            len = 2 + (unsigned)rnd_below(3);
            break;
        case TEXT_MOSTLY_ASCII:
            len = rnd_below(16) == 0 ? 2 + (unsigned)rnd_below(3) : 1;
            break;
        default:
            len = 1 + (unsigned)rnd_below(4);
            break;
        }
        uint8_t buf[4];
        size_t got = encode(rand_scalar(len), buf);
        if (got > n - i) {
            memset(out + i, 'a', n - i);
            break;
        }
        memcpy(out + i, buf, got);
        i += got;
    }
}

/* A byte likely to break (or subtly keep) the text when written over one of its bytes. */
static uint8_t rand_corrupt_byte(void)
{
    static const uint8_t edge[] = {0x00, 0x2f, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf,
                                   0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4,
                                   0xf5, 0xf7, 0xf8, 0xfb, 0xfc, 0xfd, 0xfe, 0xff};
    if (rnd_below(2))
        return edge[rnd_below(sizeof(edge))];
    return (uint8_t)rnd();
}

/* ---- the stress-test case table ---- */

typedef struct utf8_case {
    const char *name;
    const char *s;
    size_t n;
    bool valid;
} utf8_case_t;

#define CASE(name, lit, valid)                                                                     \
    {                                                                                              \
        name, lit, sizeof(lit) - 1, valid                                                          \
    }

static const utf8_case_t g_cases[] = {
    /* 1, 2: correct text and boundary code points */
    CASE("kosme", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", true),
    CASE("multilingual",
         "Hello, \xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82, \xe4\xbd\xa0\xe5\xa5\xbd, "
         "\xe3\x81\x93\xe3\x82\x93\xe3\x81\xab\xe3\x81\xa1\xe3\x81\xaf, \xd8\xb3\xd9\x84\xd8\xa7"
         "\xd9\x85, \xf0\x9f\x8e\x89\xf0\x9f\x91\x8d\xf0\x9d\x84\x9e",
         true),
    CASE("empty", "", true),
    CASE("U+0000", "\x00", true),
    CASE("U+007F", "\x7f", true),
    CASE("U+0080", "\xc2\x80", true),
    CASE("U+07FF", "\xdf\xbf", true),
    CASE("U+0800", "\xe0\xa0\x80", true),
    CASE("U+0FFF", "\xe0\xbf\xbf", true),
    CASE("U+1000", "\xe1\x80\x80", true),
    CASE("U+D7FF", "\xed\x9f\xbf", true),
    CASE("U+E000", "\xee\x80\x80", true),
    CASE("U+FDD0", "\xef\xb7\x90", true),
    CASE("U+FFFD", "\xef\xbf\xbd", true),
    CASE("U+FFFE", "\xef\xbf\xbe", true),
    CASE("U+FFFF", "\xef\xbf\xbf", true),
    CASE("U+10000", "\xf0\x90\x80\x80", true),
    CASE("U+3FFFF", "\xf0\xbf\xbf\xbf", true),
    CASE("U+40000", "\xf1\x80\x80\x80", true),
    CASE("U+FFFFF", "\xf3\xbf\xbf\xbf", true),
    CASE("U+100000", "\xf4\x80\x80\x80", true),
    CASE("U+10FFFF", "\xf4\x8f\xbf\xbf", true),
    /* 2.1/2.2: first and last sequences of lengths UTF-8 no longer allows */
    CASE("5-byte first", "\xf8\x88\x80\x80\x80", false),
    CASE("6-byte first", "\xfc\x84\x80\x80\x80\x80", false),
    CASE("U+1FFFFF", "\xf7\xbf\xbf\xbf", false),
    CASE("5-byte last", "\xfb\xbf\xbf\xbf\xbf", false),
    CASE("6-byte last", "\xfd\xbf\xbf\xbf\xbf\xbf", false),
    CASE("U+110000", "\xf4\x90\x80\x80", false),
    CASE("U+13FFFF", "\xf4\xbf\xbf\xbf", false),
    CASE("U+140000", "\xf5\x80\x80\x80", false),
    /* 3.1: unexpected continuation bytes */
    CASE("cont 80", "\x80", false),
    CASE("cont bf", "\xbf", false),
    CASE("cont 80 bf", "\x80\xbf", false),
    CASE("cont 80 bf 80", "\x80\xbf\x80", false),
    CASE("cont x4", "\x80\xbf\x80\xbf", false),
    CASE("cont x5", "\x80\xbf\x80\xbf\x80", false),
    CASE("ascii then cont", "a\x80", false),
    CASE("2-byte then cont", "\xc2\x80\x80", false),
    CASE("3-byte then cont", "\xe2\x82\xac\x80", false),
    CASE("4-byte then cont", "\xf0\x9f\x98\x80\x80", false),
    /* 3.2: lonely start bytes */
    CASE("lonely c2", "\xc2 ", false),
    CASE("lonely df", "\xdf ", false),
    CASE("lonely e0", "\xe0 ", false),
    CASE("lonely ef", "\xef ", false),
    CASE("lonely f0", "\xf0 ", false),
    CASE("lonely f4", "\xf4 ", false),
    CASE("lonely f8", "\xf8 ", false),
    CASE("lonely fc", "\xfc ", false),
    /* 3.3/3.4: sequences with the last byte missing, alone and concatenated */
    CASE("trunc c0", "\xc0", false),
    CASE("trunc e0 80", "\xe0\x80", false),
    CASE("trunc f0 80 80", "\xf0\x80\x80", false),
    CASE("trunc f8", "\xf8\x80\x80\x80", false),
    CASE("trunc fc", "\xfc\x80\x80\x80\x80", false),
    CASE("trunc df", "\xdf", false),
    CASE("trunc ef bf", "\xef\xbf", false),
    CASE("trunc f7 bf bf", "\xf7\xbf\xbf", false),
    CASE("trunc c2", "\xc2", false),
    CASE("trunc e0 a0", "\xe0\xa0", false),
    CASE("trunc e2 82", "\xe2\x82", false),
    CASE("trunc f0 90", "\xf0\x90", false),
    CASE("trunc f0 90 80", "\xf0\x90\x80", false),
    CASE("trunc f4 8f bf", "\xf4\x8f\xbf", false),
    CASE("trunc concat",
         "\xc0\xe0\x80\xf0\x80\x80\xf8\x80\x80\x80\xfc\x80\x80\x80\x80\xdf\xef\xbf\xf7\xbf\xbf"
         "\xfb\xbf\xbf\xbf\xfd\xbf\xbf\xbf\xbf",
         false),
    CASE("trunc then ascii",
         "\xe2\x82"
         "a",
         false),
    CASE("trunc 4 then ascii",
         "\xf0\x9f\x98"
         "a",
         false),
    /* 3.5: impossible bytes */
    CASE("fe", "\xfe", false),
    CASE("ff", "\xff", false),
    CASE("fe fe ff ff", "\xfe\xfe\xff\xff", false),
    /* 4.1-4.3: overlong forms of '/', of the largest values, of NUL */
    CASE("overlong / 2", "\xc0\xaf", false),
    CASE("overlong / 3", "\xe0\x80\xaf", false),
    CASE("overlong / 4", "\xf0\x80\x80\xaf", false),
    CASE("overlong / 5", "\xf8\x80\x80\x80\xaf", false),
    CASE("overlong / 6", "\xfc\x80\x80\x80\x80\xaf", false),
    CASE("overlong max 2", "\xc1\xbf", false),
    CASE("overlong max 3", "\xe0\x9f\xbf", false),
    CASE("overlong max 4", "\xf0\x8f\xbf\xbf", false),
    CASE("overlong max 5", "\xf8\x87\xbf\xbf\xbf", false),
    CASE("overlong max 6", "\xfc\x83\xbf\xbf\xbf\xbf", false),
    CASE("overlong nul 2", "\xc0\x80", false),
    CASE("overlong nul 3", "\xe0\x80\x80", false),
    CASE("overlong nul 4", "\xf0\x80\x80\x80", false),
    CASE("overlong nul 5", "\xf8\x80\x80\x80\x80", false),
    CASE("overlong nul 6", "\xfc\x80\x80\x80\x80\x80", false),
    /* 5.1/5.2: UTF-16 surrogates, single and paired */
    CASE("U+D800", "\xed\xa0\x80", false),
    CASE("U+DB7F", "\xed\xad\xbf", false),
    CASE("U+DB80", "\xed\xae\x80", false),
    CASE("U+DBFF", "\xed\xaf\xbf", false),
    CASE("U+DC00", "\xed\xb0\x80", false),
    CASE("U+DF80", "\xed\xbe\x80", false),
    CASE("U+DFFF", "\xed\xbf\xbf", false),
    CASE("U+D800 U+DC00", "\xed\xa0\x80\xed\xb0\x80", false),
    CASE("U+D800 U+DFFF", "\xed\xa0\x80\xed\xbf\xbf", false),
    CASE("U+DB7F U+DC00", "\xed\xad\xbf\xed\xb0\x80", false),
    CASE("U+DBFF U+DFFF", "\xed\xaf\xbf\xed\xbf\xbf", false),
    CASE("surrogate in text",
         "ab\xed\xa0\x80"
         "cd",
         false),
};

#define NCASES (sizeof(g_cases) / sizeof(g_cases[0]))

/* ---- incremental: oracle and driver ---- */

/* Whether p[0..k) can be continued into valid UTF-8, given that p[0..from) is valid and ends on
 * a character boundary. Each lead's allowed second-byte range contains 0x80, 0x90 or 0xa0, and
 * later bytes allow 0x80, so trying these endings covers every way a prefix can be finished. */
static bool oracle_prefix_ok(const uint8_t *p, size_t from, size_t k)
{
    static const char *const endings[] = {
        "",         "\x80",     "\x90",         "\xa0",         "\x80\x80",
        "\x90\x80", "\xa0\x80", "\x80\x80\x80", "\x90\x80\x80", "\xa0\x80\x80"};
    /* Start from the last byte, among the last four, that is not a continuation: every valid
     * completion has a character boundary before it, so what precedes it must be valid on its
     * own, and what follows it is the unfinished character (at most four bytes). */
    size_t lo = k - from > 4 ? k - 4 : from;
    size_t start = k;
    while (start > lo && (p[start - 1] & 0xc0) == 0x80)
        start--;
    if (start > lo)
        start--;
    else if (lo > from)
        return false; /* four continuation bytes in a row */
    if (!ws_utf8_valid_baseline(p + from, start - from))
        return false;
    uint8_t tail[8];
    size_t m = k - start;
    for (size_t e = 0; e < sizeof(endings) / sizeof(endings[0]); e++) {
        size_t el = strlen(endings[e]);
        memcpy(tail, p + start, m);
        memcpy(tail + m, endings[e], el);
        if (ws_utf8_valid_baseline(tail, m + el))
            return true;
    }
    return false;
}

/* Length of the shortest prefix of p[0..n) that is not a prefix of valid UTF-8, or n + 1 when
 * there is none; p[0..from) must be valid and end on a boundary. Prefix validity only goes from
 * true to false as the prefix grows, so a binary search finds the first failure. */
static size_t oracle_fail_at(const uint8_t *p, size_t n, size_t from)
{
    size_t lo = from, hi = n + 1; /* lo: known good prefix length; hi: known bad or n + 1 */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (oracle_prefix_ok(p, from, mid))
            lo = mid;
        else
            hi = mid;
    }
    return hi;
}

static guarded_t g_feed_buf;

/* Feeds p[0..n) split before each of cuts[0..ncuts) (ascending, each <= n) and checks that the
 * first feed to fail is the one holding byte fail_at - 1, and that a stream which never fails
 * is complete exactly when the one-shot verdict is true. Each chunk is copied against a guard
 * page so an over-read in the feed path faults. */
static void check_feed(const uint8_t *p, size_t n, const size_t *cuts, size_t ncuts, size_t fail_at,
                       const char *what)
{
    ws_utf8_state_t st;
    ws_utf8_init(&st);
    CHECK(ws_utf8_complete(&st));
    size_t start = 0;
    for (size_t c = 0; c <= ncuts; c++) {
        size_t end = c < ncuts ? cuts[c] : n;
        REQUIRE(end >= start && end <= n);
        const uint8_t *chunk = guarded_at_end(&g_feed_buf, p + start, end - start);
        bool ok = ws_utf8_feed(&st, chunk, end - start);
        g_checks++;
        bool expect_ok = !(fail_at >= start + 1 && fail_at <= end);
        CHECK_INPUT(ok == expect_ok, p, n,
                    "%s: feed of [%zu, %zu) returned %d, first invalid prefix is %zu bytes", what,
                    start, end, ok, fail_at);
        if (!ok)
            return;
        CHECK(st.npartial <= 3 && (st.npartial == 0) == (st.need == 0));
        start = end;
    }
    bool one_shot = ws_utf8_valid_baseline(p, n);
    CHECK_INPUT(fail_at == n + 1 && ws_utf8_complete(&st) == one_shot, p, n,
                "%s: stream ended with complete=%d, one-shot verdict %d", what,
                ws_utf8_complete(&st), one_shot);
}

/* Every split into two, byte by byte, and a few random multi-splits. */
static void check_feed_all_splits(const uint8_t *p, size_t n, size_t from, const char *what)
{
    size_t fail_at = oracle_fail_at(p, n, from);
    CHECK_INPUT(!ws_utf8_valid_baseline(p, n) || fail_at == n + 1, p, n,
                "%s: oracle rejects a prefix of valid text at %zu", what, fail_at);
    size_t cuts[64];
    check_feed(p, n, NULL, 0, fail_at, what);
    for (size_t i = 0; i <= n; i++) {
        cuts[0] = i;
        check_feed(p, n, cuts, 1, fail_at, what);
    }
    if (n <= 400) {
        size_t *each = malloc((n + 1) * sizeof(*each));
        REQUIRE(each != NULL);
        for (size_t i = 0; i < n; i++)
            each[i] = i + 1;
        check_feed(p, n, each, n ? n - 1 : 0, fail_at, what);
        free(each);
    }
    for (int r = 0; r < 8; r++) {
        size_t k = 2 + rnd_below(sizeof(cuts) / sizeof(cuts[0]) - 2);
        for (size_t i = 0; i < k; i++)
            cuts[i] = rnd_below(n + 1);
        /* insertion sort: k is small */
        for (size_t i = 1; i < k; i++)
            for (size_t j = i; j > 0 && cuts[j - 1] > cuts[j]; j--) {
                size_t t = cuts[j];
                cuts[j] = cuts[j - 1];
                cuts[j - 1] = t;
            }
        check_feed(p, n, cuts, k, fail_at, what);
    }
}

/* ---- test groups ---- */

static void test_cases(guarded_t *g)
{
    uint8_t buf[512];
    for (size_t c = 0; c < NCASES; c++) {
        const utf8_case_t *tc = &g_cases[c];
        const uint8_t *s = (const uint8_t *)tc->s;
        REQUIRE(tc->n <= 128);
        expect_all(guarded_at_end(g, s, tc->n), tc->n, tc->valid, tc->name);
        expect_all(guarded_at_start(g, s, tc->n), tc->n, tc->valid, tc->name);
        /* In ASCII context at every offset within and across 64-byte blocks, ending the input
         * or followed by more text: neighbours that are ASCII do not change the verdict. */
        for (size_t pre = 0; pre <= 140; pre++) {
            static const size_t posts[] = {0, 1, 2, 3, 5, 17, 40, 70};
            for (size_t pi = 0; pi < sizeof(posts) / sizeof(posts[0]); pi++) {
                size_t post = posts[pi];
                memset(buf, 'x', pre);
                memcpy(buf + pre, s, tc->n);
                memset(buf + pre + tc->n, 'y', post);
                size_t n = pre + tc->n + post;
                expect_all(guarded_at_end(g, buf, n), n, tc->valid, tc->name);
            }
        }
        /* In multi-byte context: preceded and followed by complete non-ASCII characters. */
        for (size_t pre = 0; pre <= 70; pre++) {
            rand_text(buf, pre, TEXT_MULTI);
            memcpy(buf + pre, s, tc->n);
            rand_text(buf + pre + tc->n, 70, TEXT_MULTI);
            expect_all(guarded_at_end(g, buf, pre + tc->n + 70), pre + tc->n + 70, tc->valid,
                       tc->name);
        }
        check_feed_all_splits(s, tc->n, 0, tc->name);
        /* Truncated at each position: a valid text cut inside a character is invalid, cut on a
         * boundary it is valid; the same holds for the part after the cut. */
        if (tc->valid) {
            for (size_t k = 0; k <= tc->n; k++) {
                bool boundary = k == tc->n || (s[k] & 0xc0) != 0x80;
                expect_all(guarded_at_end(g, s, k), k, boundary, tc->name);
                expect_all(guarded_at_end(g, s + k, tc->n - k), tc->n - k, boundary, tc->name);
            }
        }
    }
    printf("stress-test cases: %zu cases ok\n", NCASES);
}

/* Byte-level classes: every single byte, and every pair and triple of bytes (with a fixed
 * valid continuation), alone and after 63 ASCII bytes so the pair crosses a block boundary. */
static void test_all_short_sequences(guarded_t *g)
{
    uint8_t buf[128];
    for (unsigned a = 0; a < 256; a++) {
        buf[0] = (uint8_t)a;
        agree_all(guarded_at_end(g, buf, 1), 1, "1 byte");
        for (unsigned b = 0; b < 256; b++) {
            buf[0] = (uint8_t)a;
            buf[1] = (uint8_t)b;
            agree_all(guarded_at_end(g, buf, 2), 2, "2 bytes");
            buf[2] = 0x80;
            buf[3] = 0x80;
            agree_all(guarded_at_end(g, buf, 3), 3, "3 bytes");
            agree_all(guarded_at_end(g, buf, 4), 4, "4 bytes");
            memset(buf, 'z', 63);
            buf[63] = (uint8_t)a;
            buf[64] = (uint8_t)b;
            buf[65] = 0xbf;
            buf[66] = 0xbf;
            for (size_t n = 64; n <= 67; n++)
                agree_all(guarded_at_end(g, buf, n), n, "pair across block");
        }
    }
    /* Spot-check the classification against the byte rules, independent of the baseline. */
    expect_all((const uint8_t *)"\xe0\xa0\x80", 3, true, "E0 A0 80");
    expect_all((const uint8_t *)"\xe0\x9f\x80", 3, false, "E0 9F 80");
    expect_all((const uint8_t *)"\xed\x9f\x80", 3, true, "ED 9F 80");
    expect_all((const uint8_t *)"\xed\xa0\x80", 3, false, "ED A0 80");
    expect_all((const uint8_t *)"\xf0\x90\x80\x80", 4, true, "F0 90 80 80");
    expect_all((const uint8_t *)"\xf0\x8f\x80\x80", 4, false, "F0 8F 80 80");
    expect_all((const uint8_t *)"\xf4\x8f\x80\x80", 4, true, "F4 8F 80 80");
    expect_all((const uint8_t *)"\xf4\x90\x80\x80", 4, false, "F4 90 80 80");
    printf("all 1..4-byte patterns: ok\n");
}

/* Every length 0..300 at every alignment 0..63, valid and with single-byte corruptions, plus
 * each length against the guard pages at both ends. */
static void test_alignments(guarded_t *g)
{
    enum { MAXLEN = 300 };
    static uint8_t text[MAXLEN], bad[MAXLEN];
    /* aligned_alloc wants a size that is a multiple of the alignment (C11 7.22.3.1). */
    uint8_t *arena = aligned_alloc(64, (64 + MAXLEN + 63) / 64 * 64);
    REQUIRE(arena != NULL);
    for (size_t n = 0; n <= MAXLEN; n++) {
        enum text_kind kind = (enum text_kind)(n % 4);
        rand_text(text, n, kind);
        expect_all(guarded_at_end(g, text, n), n, true, "valid at guard end");
        expect_all(guarded_at_start(g, text, n), n, true, "valid at guard start");
        for (size_t align = 0; align < 64; align++) {
            memcpy(arena + align, text, n);
            expect_all(arena + align, n, true, "valid text");
            if (n == 0)
                continue;
            for (int r = 0; r < 3; r++) {
                memcpy(bad, text, n);
                bad[rnd_below(n)] = rand_corrupt_byte();
                memcpy(arena + align, bad, n);
                agree_all(arena + align, n, "corrupted text");
            }
            /* Cut at a random point: valid only on a character boundary. */
            size_t k = rnd_below(n);
            memcpy(arena + align, text, k);
            expect_all(arena + align, k, (text[k] & 0xc0) != 0x80, "truncated text");
        }
        if (n > 0) {
            memcpy(bad, text, n);
            bad[rnd_below(n)] = rand_corrupt_byte();
            agree_all(guarded_at_end(g, bad, n), n, "corrupted at guard end");
            agree_all(guarded_at_start(g, bad, n), n, "corrupted at guard start");
        }
    }
    free(arena);
    printf("lengths 0..%d x alignments 0..63: ok\n", MAXLEN);
}

/* Large inputs: many blocks, errors far from the start and next to block boundaries. */
static void test_large(guarded_t *g)
{
    enum { BIG = 1 << 20 };
    uint8_t *text = malloc(BIG);
    REQUIRE(text != NULL);
    for (int kind = TEXT_MIXED; kind <= TEXT_MOSTLY_ASCII; kind++) {
        size_t n = BIG - rnd_below(200);
        rand_text(text, n, (enum text_kind)kind);
        const uint8_t *at = guarded_at_end(g, text, n);
        expect_all(at, n, true, "large valid");
        for (int r = 0; r < 12; r++) {
            size_t pos;
            switch (r % 3) {
            case 0:
                pos = rnd_below(n);
                break;
            case 1: /* next to a 64-byte boundary of the input */
                pos = (rnd_below(n / 64) * 64 + 61 + rnd_below(6)) % n;
                break;
            default: /* in the last bytes, handled by the tail code */
                pos = n - 1 - rnd_below(70);
                break;
            }
            uint8_t *w = (uint8_t *)at;
            uint8_t saved = w[pos];
            w[pos] = rand_corrupt_byte();
            agree_all(at, n, "large corrupted");
            w[pos] = saved;
        }
        /* Ending inside a character: the last byte is a lead or a lead's first continuation. */
        uint8_t *w = (uint8_t *)at;
        uint8_t saved = w[n - 1];
        w[n - 1] = 0xe2;
        expect_all(at, n, false, "large truncated");
        w[n - 1] = saved;
    }
    free(text);
    printf("1 MiB inputs: ok\n");
}

static void test_incremental(void)
{
    ws_utf8_state_t st;

    /* The examples RFC 6455 fail-fast calls for. */
    ws_utf8_init(&st);
    CHECK(!ws_utf8_feed(&st, (const uint8_t *)"\xe0\x80", 2));
    ws_utf8_init(&st);
    CHECK(!ws_utf8_feed(&st, (const uint8_t *)"\xed\xa0", 2));
    ws_utf8_init(&st);
    CHECK(ws_utf8_feed(&st, (const uint8_t *)"\xf0\x9f", 2));
    CHECK(!ws_utf8_complete(&st));
    CHECK(st.npartial == 2 && st.need == 4 && st.partial[0] == 0xf0 && st.partial[1] == 0x9f);
    CHECK(ws_utf8_feed(&st, NULL, 0));
    CHECK(ws_utf8_feed(&st, (const uint8_t *)"\x98", 1));
    CHECK(st.npartial == 3 && !ws_utf8_complete(&st));
    CHECK(ws_utf8_feed(&st,
                       (const uint8_t *)"\x80"
                                        "abc\xc3",
                       5));
    CHECK(st.npartial == 1 && st.need == 2 && st.partial[0] == 0xc3);
    CHECK(!ws_utf8_feed(&st, (const uint8_t *)"a", 1));
    ws_utf8_init(&st);
    CHECK(ws_utf8_feed(&st, (const uint8_t *)"\xf4", 1));
    CHECK(!ws_utf8_feed(&st, (const uint8_t *)"\x90", 1));
    ws_utf8_init(&st);
    CHECK(!ws_utf8_feed(&st, (const uint8_t *)"\xf5", 1));
    ws_utf8_init(&st);
    CHECK(!ws_utf8_feed(&st, (const uint8_t *)"\xc1", 1));
    ws_utf8_init(&st);
    CHECK(!ws_utf8_feed(&st, (const uint8_t *)"\x80", 1));
    ws_utf8_init(&st);
    CHECK(ws_utf8_feed(&st, (const uint8_t *)"ok \xe2\x82", 5));
    CHECK(!ws_utf8_feed(&st, (const uint8_t *)"\xe2", 1)); /* a lead where a continuation must be */

    /* Random texts with and without a corruption, every split. */
    uint8_t text[200];
    for (int r = 0; r < 300; r++) {
        size_t n = rnd_below(sizeof(text) + 1);
        rand_text(text, n, (enum text_kind)(r % 4));
        size_t from = 0;
        if (n && r % 3) {
            size_t pos = rnd_below(n);
            from = pos;
            while (from > 0 && (text[from] & 0xc0) == 0x80)
                from--;
            text[pos] = rand_corrupt_byte();
        }
        check_feed_all_splits(text, n, from, "random text");
    }

    /* Large streams cut into random chunks, so the SIMD path sees long middles. */
    enum { BIG = 256 * 1024 };
    uint8_t *big = malloc(BIG);
    REQUIRE(big != NULL);
    for (int r = 0; r < 12; r++) {
        size_t n = BIG - rnd_below(100);
        rand_text(big, n, (enum text_kind)(r % 4));
        size_t from = 0;
        if (r % 2) {
            size_t pos = rnd_below(n);
            from = pos;
            while (from > 0 && (big[from] & 0xc0) == 0x80)
                from--;
            big[pos] = rand_corrupt_byte();
        }
        size_t fail_at = oracle_fail_at(big, n, from);
        size_t cuts[64];
        size_t k = 1 + rnd_below(sizeof(cuts) / sizeof(cuts[0]));
        size_t at = 0;
        for (size_t i = 0; i < k; i++) {
            at += rnd_below(2 * n / k);
            cuts[i] = at < n ? at : n;
        }
        check_feed(big, n, cuts, k, fail_at, "large stream");
    }
    free(big);
    printf("incremental: ok\n");
}

/* Re-runs this program with URINGWS_SIMD capping the dispatcher at each level below the one the
 * CPU has, so the dispatcher and the feed path are tested with each implementation behind it. */
static void run_dispatch_children(const char *self)
{
    static const char *const levels[] = {"scalar", "avx2"};
    int have = ws_cpu_simd_cap();
    for (int lvl = 0; lvl < have && lvl < 2; lvl++) {
        fflush(stdout);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            setenv("URINGWS_SIMD", levels[lvl], 1);
            execl(self, self, "--dispatch-only", levels[lvl], (char *)NULL);
            fprintf(stderr, "exec %s: %s\n", self, strerror(errno));
            _exit(127);
        }
        int status;
        CHECK(waitpid(pid, &status, 0) == pid);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
}

int main(int argc, char **argv)
{
    const char *env_seed = getenv("UTF8_TEST_SEED");
    g_seed = env_seed ? strtoull(env_seed, NULL, 0) : 0x5eed0f0a11u;
    g_rng = g_seed;
    guarded_t g;
    guarded_init(&g, 1 << 20);
    guarded_init(&g_feed_buf, 1 << 20);

    if (argc == 3 && strcmp(argv[1], "--dispatch-only") == 0) {
        /* Child: the dispatcher is capped by URINGWS_SIMD; check it honours the cap. */
        CHECK(strcmp(ws_utf8_impl(), argv[2]) == 0);
        printf("dispatch capped at %s:\n", ws_utf8_impl());
        setup_impls(false);
        test_cases(&g);
        test_alignments(&g);
        test_incremental();
        return check_exit_status("test_utf8");
    }

    printf("seed %" PRIu64 ", dispatcher picks %s\n", g_seed, ws_utf8_impl());
    const char *expect_impl = ws_cpu_simd_cap() == WS_SIMD_AVX512 ? "avx512"
                              : ws_cpu_simd_cap() == WS_SIMD_AVX2 ? "avx2"
                                                                  : "scalar";
    CHECK(strcmp(ws_utf8_impl(), expect_impl) == 0);
    setup_impls(true);
    test_cases(&g);
    test_all_short_sequences(&g);
    test_alignments(&g);
    test_large(&g);
    test_incremental();
    if (getenv("URINGWS_SIMD") == NULL)
        run_dispatch_children(argv[0]);
    guarded_free(&g_feed_buf);
    guarded_free(&g);
    printf("%lu checks run\n", g_checks);
    return check_exit_status("test_utf8");
}
