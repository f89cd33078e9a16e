/* Command-line values: integers, sizes with k/m/g suffixes, durations and choices, each
 * checked against its range; a bad one ends the program with exit status 2 and a line
 * naming the option, the value and what it should be. */
#ifndef URINGWS_TOOLS_CLI_VALUES_H
#define URINGWS_TOOLS_CLI_VALUES_H

#include <stdint.h>

/* The program's name in messages. */
extern const char *ws_cli_values_prog;

_Noreturn void ws_cli_values_die(const char *opt, const char *val, const char *want);
/* A decimal integer in [min, max]. */
uint64_t ws_cli_values_u64(const char *opt, const char *s, uint64_t min, uint64_t max,
                           const char *want);
/* Bytes: a decimal integer with an optional k, m or g suffix (KiB, MiB, GiB), in [min, max]. */
uint64_t ws_cli_values_size(const char *opt, const char *s, uint64_t min, uint64_t max,
                            const char *want);
/* Index of s in the NULL-terminated names. */
int ws_cli_values_choice(const char *opt, const char *s, const char *const *names,
                         const char *want);
/* Milliseconds: "30" (seconds), "500ms", "30s", "2m", in [min_ms, max_ms]. */
uint32_t ws_cli_values_duration(const char *opt, const char *s, uint32_t min_ms, uint32_t max_ms);

#endif
