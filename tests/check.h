/* Assertion helpers shared by every unit test (tests/test_*.c). A failed check prints
 * "file:line: CHECK failed: <what>" (or "REQUIRE failed") on stderr, then:
 *
 *   CHECK(cond)            counts the failure and goes on;
 *   REQUIRE(cond)          exits 1 at once: use it where later lines depend on cond (a NULL
 *                          guard, a length about to be used, a protocol step that must work);
 *   CHECK_INT(a, b)        a == b as signed integers, both values printed; counts;
 *   REQUIRE_INT(a, b)      the same, exits at once;
 *   CHECK_EQ_U(a, b)       a == b as unsigned integers, both values printed; counts;
 *   REQUIRE_MSG(cond, ...) prints the printf-style message instead of cond, exits at once.
 *
 * main ends with `return check_exit_status("test_name");`: 0 and "test_name: ok" when no
 * check failed, else 1. A test may define CHECK_ON_FAIL() before including this header; it
 * runs after each failure is printed (to add a seed, or a library's error queue). After
 * CHECK_MAX_FAILURES counted failures the program exits, so that a broken loop does not
 * print millions of lines. */
#ifndef URINGWS_TESTS_CHECK_H
#define URINGWS_TESTS_CHECK_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef CHECK_ON_FAIL
#define CHECK_ON_FAIL() ((void)0)
#endif

#define CHECK_MAX_FAILURES 100

static int check_failures;

static inline void check_report_(const char *file, int line, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static inline void check_report_(const char *file, int line, const char *kind, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s:%d: %s failed: ", file, line, kind);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* Counts one failure; exits when it must stop (REQUIRE) or when there are too many. */
static inline void check_count_(int fatal)
{
    if (fatal)
        exit(1);
    if (++check_failures >= CHECK_MAX_FAILURES) {
        fprintf(stderr, "%d checks failed, stopping\n", check_failures);
        exit(1);
    }
}

/* The public macros stringify their arguments themselves: an argument passed on to another
 * macro is expanded first (NULL would print as ((void *)0)). */
#define CHECK_FAIL_(fatal, ...)                                                                    \
    do {                                                                                           \
        check_report_(__FILE__, __LINE__, (fatal) ? "REQUIRE" : "CHECK", __VA_ARGS__);             \
        CHECK_ON_FAIL();                                                                           \
        check_count_(fatal);                                                                       \
    } while (0)

#define CHECK_COND_(fatal, cond, text)                                                             \
    do {                                                                                           \
        if (!(cond))                                                                               \
            CHECK_FAIL_(fatal, "%s", text);                                                        \
    } while (0)

#define CHECK_INT_(fatal, a, b, ta, tb)                                                            \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_)                                                                              \
            CHECK_FAIL_(fatal, "%s == %s (%lld != %lld)", ta, tb, a_, b_);                         \
    } while (0)

#define CHECK(cond)       CHECK_COND_(0, cond, #cond)
#define REQUIRE(cond)     CHECK_COND_(1, cond, #cond)
#define CHECK_INT(a, b)   CHECK_INT_(0, a, b, #a, #b)
#define REQUIRE_INT(a, b) CHECK_INT_(1, a, b, #a, #b)

#define CHECK_EQ_U(a, b)                                                                           \
    do {                                                                                           \
        unsigned long long ua_ = (unsigned long long)(a), ub_ = (unsigned long long)(b);           \
        if (ua_ != ub_)                                                                            \
            CHECK_FAIL_(0, "%s == %s (%llu != %llu)", #a, #b, ua_, ub_);                           \
    } while (0)

#define REQUIRE_MSG(cond, ...)                                                                     \
    do {                                                                                           \
        if (!(cond))                                                                               \
            CHECK_FAIL_(1, __VA_ARGS__);                                                           \
    } while (0)

/* What main returns: 1 when any check failed (and how many), else 0 after "name: ok". */
static inline int check_exit_status(const char *name)
{
    if (check_failures != 0) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, check_failures);
        return 1;
    }
    printf("%s: ok\n", name);
    return 0;
}

#endif
