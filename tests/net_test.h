/* Tiny assertion helpers shared by the tests/test_net_*.c programs: CHECK prints the failed
 * expression with its location and makes the program exit 1 at the end (or at once with
 * REQUIRE). */
#ifndef URINGWS_TESTS_NET_TEST_H
#define URINGWS_TESTS_NET_TEST_H

#include <stdio.h>
#include <stdlib.h>

static int net_test_failures;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
            net_test_failures++;                                                                   \
        }                                                                                          \
    } while (0)

#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, #cond);             \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

#define CHECK_EQ_U(a, b)                                                                           \
    do {                                                                                           \
        unsigned long long va_ = (unsigned long long)(a), vb_ = (unsigned long long)(b);           \
        if (va_ != vb_) {                                                                          \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%llu != %llu)\n", __FILE__, __LINE__,  \
                    #a, #b, va_, vb_);                                                             \
            net_test_failures++;                                                                   \
        }                                                                                          \
    } while (0)

static inline int net_test_result(const char *name)
{
    if (net_test_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, net_test_failures);
        return 1;
    }
    printf("%s: ok\n", name);
    return 0;
}

#endif
