/* Command line of the fan-out load generator: fills the run configuration from argv. */
#ifndef URINGWS_BENCH_FANOUT_ARGS_H
#define URINGWS_BENCH_FANOUT_ARGS_H

#include "fanout.h"

#define WS_FO_EXIT_USAGE 2

/* Fills cfg from argv and checks the options against each other and the target URL against
 * loopback. Prints why and exits with WS_FO_EXIT_USAGE on a bad command line; prints the help
 * and exits 0 on --help. */
void ws_fo_args_parse(ws_fo_config_t *cfg, int argc, char **argv);

/* Parses a --cpus list ("1", "0-3", "1,3,5-6") into cpus[0..max). Returns how many CPUs, or
 * -EINVAL. */
int ws_fo_args_cpus(const char *s, int *cpus, int max);

/* The --mode name of m. */
const char *ws_fo_args_mode_name(enum ws_fo_mode m);

#endif
