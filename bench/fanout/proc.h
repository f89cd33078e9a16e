/* What the kernel reports about CPU and memory use, for the fan-out load generator: this
 * process's CPU time and pinning, a CPU's busy time from /proc/stat, and a server process's
 * CPU time and RSS from /proc/PID. Readings only; nothing here changes a process. */
#ifndef URINGWS_BENCH_FANOUT_PROC_H
#define URINGWS_BENCH_FANOUT_PROC_H

#include <stdint.h>

/* The one CPU this process is pinned to, or -1 when it may run on several. */
int ws_fo_proc_pinned_cpu(void);

/* Busy and total time of CPU `cpu` from /proc/stat, in clock ticks. Busy counts every
 * non-idle state, steal included: time the hypervisor or another process took from the CPU
 * the worker is pinned to was not available to the worker. Returns 0 or -errno. */
int ws_fo_proc_cpu_ticks(int cpu, uint64_t *busy, uint64_t *total);

/* CPU seconds (user + system) this process has used. */
double ws_fo_proc_self_cpu_s(void);

/* CPU seconds (utime + stime) of process pid from /proc/PID/stat, or -1. */
double ws_fo_proc_cpu_s(int pid);

/* VmRSS of process pid in bytes, or -1. */
long long ws_fo_proc_rss(int pid);

#endif
