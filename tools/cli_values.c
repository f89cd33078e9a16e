/* Command-line values (tools/cli_values.h). */
#include "cli_values.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *ws_cli_values_prog = "uringws";

_Noreturn void ws_cli_values_die(const char *opt, const char *val, const char *want)
{
    fprintf(stderr, "%s: invalid value for %s: '%s' (%s)\n", ws_cli_values_prog, opt, val, want);
    exit(2);
}

/* The decimal number s starts with (no sign, at least one digit); *end after it. */
static uint64_t leading(const char *opt, const char *s, const char *want, char **end)
{
    errno = 0;
    if (!*s || *s == '-')
        ws_cli_values_die(opt, s, want);
    unsigned long long v = strtoull(s, end, 10);
    if (errno || *end == s)
        ws_cli_values_die(opt, s, want);
    return v;
}

uint64_t ws_cli_values_u64(const char *opt, const char *s, uint64_t min, uint64_t max,
                           const char *want)
{
    char *end;
    uint64_t v = leading(opt, s, want, &end);
    if (*end || v < min || v > max)
        ws_cli_values_die(opt, s, want);
    return v;
}

uint64_t ws_cli_values_size(const char *opt, const char *s, uint64_t min, uint64_t max,
                            const char *want)
{
    char *end;
    uint64_t v = leading(opt, s, want, &end);
    unsigned shift = 0;
    if (*end) {
        switch (*end) {
        case 'k':
        case 'K':
            shift = 10;
            break;
        case 'm':
        case 'M':
            shift = 20;
            break;
        case 'g':
        case 'G':
            shift = 30;
            break;
        default:
            ws_cli_values_die(opt, s, want);
        }
        end++;
        if (*end == 'i' || *end == 'I')
            end++;
        if (*end == 'b' || *end == 'B')
            end++;
        if (*end)
            ws_cli_values_die(opt, s, want);
    }
    if (shift && v > (UINT64_MAX >> shift))
        ws_cli_values_die(opt, s, want);
    v <<= shift;
    if (v < min || v > max)
        ws_cli_values_die(opt, s, want);
    return v;
}

/* Index of s in the NULL-terminated names; dies with `want` when absent. */
int ws_cli_values_choice(const char *opt, const char *s, const char *const *names, const char *want)
{
    for (int i = 0; names[i]; i++) {
        if (strcmp(s, names[i]) == 0)
            return i;
    }
    ws_cli_values_die(opt, s, want);
}

/* Duration in milliseconds: "30" (seconds), "500ms", "30s", "2m". */
uint32_t ws_cli_values_duration(const char *opt, const char *s, uint32_t min_ms, uint32_t max_ms)
{
    const char *want = "a duration such as 30, 30s, 500ms or 2m";
    char *end;
    unsigned long long v = leading(opt, s, want, &end);
    unsigned long long mult = 0;
    if (!*end || strcmp(end, "s") == 0)
        mult = 1000;
    else if (strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "m") == 0)
        mult = 60000;
    else
        ws_cli_values_die(opt, s, want);
    if (v > UINT32_MAX / mult)
        ws_cli_values_die(opt, s, want);
    v *= mult;
    if (v < min_ms || v > max_ms)
        ws_cli_values_die(opt, s, want);
    return (uint32_t)v;
}
