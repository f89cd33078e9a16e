/* sendzc: measures IORING_OP_SEND against IORING_OP_SEND_ZC on a loopback TCP connection, the
 * way the server sends (one send in flight per socket, partial sends resumed, the same
 * immutable buffer reused as a broadcast block would be), so that the choice of send opcode
 * in net/ rests on a number printed here rather than on belief. For each frame size it prints
 * throughput, the sender's CPU time per MiB and, for SEND_ZC, whether the kernel reported
 * that it copied the data anyway (IORING_SEND_ZC_REPORT_USAGE, kernel 6.2+).
 *
 * Usage: sendzc [--mib N] [--sizes 4k,16k,64k,256k,1m]   (loopback only, by construction) */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "compat.h"

#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif

struct run {
    uint64_t bytes;  /* sent in total */
    double wall_s;   /* first submit to last completion (and last notification) */
    double cpu_s;    /* the sending thread's CPU time over the same span */
    uint64_t sends;  /* send operations completed (partial ones included) */
    uint64_t notifs; /* SEND_ZC notifications received */
    uint64_t copied; /* notifications saying the kernel copied instead */
    bool zc_refused; /* the kernel refused SEND_ZC on this socket (-EOPNOTSUPP) */
};

static double now_s(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int err)
{
    fprintf(stderr, "sendzc: %s: %s\n", what, strerror(err));
    exit(1);
}

/* The receiving end: drains the socket as fast as it can until EOF. */
static void *drain(void *arg)
{
    int fd = (int)(intptr_t)arg;
    size_t cap = 1 << 20;
    char *buf = malloc(cap);
    if (!buf)
        die("malloc", ENOMEM);
    while (recv(fd, buf, cap, 0) > 0) {
    }
    free(buf);
    return NULL;
}

/* A connected loopback pair: *tx is the sending end, *rx the receiving one. */
static void tcp_pair(int *tx, int *rx)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 1) < 0 ||
        getsockname(l, (struct sockaddr *)&a, &alen) < 0)
        die("listen on 127.0.0.1", errno);
    *tx = socket(AF_INET, SOCK_STREAM, 0);
    if (*tx < 0 || connect(*tx, (struct sockaddr *)&a, sizeof(a)) < 0)
        die("connect", errno);
    *rx = accept(l, NULL, NULL);
    if (*rx < 0)
        die("accept", errno);
    close(l);
    int one = 1;
    setsockopt(*tx, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Sends `total` bytes of buf[0..size) frames over a fresh pair, one send in flight. */
static struct run run_one(bool zc, const uint8_t *buf, size_t size, uint64_t total)
{
    struct run r = {0};
    struct io_uring ring;
    int ret = io_uring_queue_init(64, &ring, 0);
    if (ret < 0)
        die("io_uring_queue_init", -ret);
    int tx, rx;
    tcp_pair(&tx, &rx);
    pthread_t th;
    if (pthread_create(&th, NULL, drain, (void *)(intptr_t)rx) != 0)
        die("pthread_create", EAGAIN);

    double w0 = now_s(CLOCK_MONOTONIC), c0 = now_s(CLOCK_THREAD_CPUTIME_ID);
    size_t off = 0; /* bytes of the current frame already sent */
    bool in_flight = false, sending = true;
    uint64_t notifs_owed = 0;
    while (sending || in_flight || notifs_owed) {
        if (sending && !in_flight) {
            struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
            if (zc)
                io_uring_prep_send_zc(sqe, tx, buf + off, size - off, MSG_NOSIGNAL,
                                      IORING_SEND_ZC_REPORT_USAGE);
            else
                io_uring_prep_send(sqe, tx, buf + off, size - off, MSG_NOSIGNAL);
            in_flight = true;
        }
        struct io_uring_cqe *cqe;
        ret = io_uring_submit_and_wait(&ring, 1);
        if (ret < 0)
            die("io_uring_submit_and_wait", -ret);
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&ring, head, cqe)
        {
            seen++;
            if (cqe->flags & IORING_CQE_F_NOTIF) {
                r.notifs++;
                notifs_owed--;
                if (cqe->res & IORING_NOTIF_USAGE_ZC_COPIED)
                    r.copied++;
                continue;
            }
            in_flight = false;
            if (cqe->flags & IORING_CQE_F_MORE)
                notifs_owed++;
            if (cqe->res == -EOPNOTSUPP || cqe->res == -EINVAL) {
                r.zc_refused = true;
                sending = false;
                continue;
            }
            if (cqe->res < 0)
                die("send", -cqe->res);
            r.sends++;
            r.bytes += (uint64_t)cqe->res;
            off += (size_t)cqe->res;
            if (off == size)
                off = 0;
            if (r.bytes >= total && off == 0)
                sending = false;
        }
        io_uring_cq_advance(&ring, seen);
    }
    r.wall_s = now_s(CLOCK_MONOTONIC) - w0;
    r.cpu_s = now_s(CLOCK_THREAD_CPUTIME_ID) - c0;
    shutdown(tx, SHUT_WR);
    pthread_join(th, NULL);
    close(tx);
    close(rx);
    io_uring_queue_exit(&ring);
    return r;
}

static size_t parse_size(const char *s)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end == 'k' || *end == 'K')
        v <<= 10, end++;
    else if (*end == 'm' || *end == 'M')
        v <<= 20, end++;
    if (end == s || (*end && *end != ',') || v == 0 || v > (64u << 20)) {
        fprintf(stderr, "sendzc: bad size '%s' (1 .. 64m, k/m suffixes)\n", s);
        exit(2);
    }
    return (size_t)v;
}

int main(int argc, char **argv)
{
    uint64_t mib = 512;
    const char *sizes = "4k,16k,64k,256k,1m";
    static const struct option opts[] = {{"mib", required_argument, NULL, 'm'},
                                         {"sizes", required_argument, NULL, 's'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    for (int o; (o = getopt_long(argc, argv, "m:s:h", opts, NULL)) != -1;) {
        switch (o) {
        case 'm':
            mib = strtoull(optarg, NULL, 10);
            if (mib == 0 || mib > 65536) {
                fprintf(stderr, "sendzc: --mib takes 1 .. 65536\n");
                return 2;
            }
            break;
        case 's':
            sizes = optarg;
            break;
        case 'h':
            printf("usage: sendzc [--mib N (per run, default 512)] [--sizes 4k,16k,64k,256k,1m]\n"
                   "Compares IORING_OP_SEND and IORING_OP_SEND_ZC over a loopback TCP pair.\n");
            return 0;
        default:
            return 2;
        }
    }
    size_t maxsz = 0;
    for (const char *p = sizes; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
        size_t size = parse_size(p);
        if (size > maxsz)
            maxsz = size;
    }
    uint8_t *buf = aligned_alloc(4096, (maxsz + 4095) & ~(size_t)4095);
    if (!buf)
        die("aligned_alloc", ENOMEM);
    memset(buf, 0x5a, maxsz);

    printf("| frame | SEND GB/s | SEND_ZC GB/s | SEND cpu ms/GiB | SEND_ZC cpu ms/GiB | "
           "ZC copied by kernel |\n|---|---|---|---|---|---|\n");
    for (const char *p = sizes; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
        size_t size = parse_size(p);
        uint64_t total = mib << 20;
        struct run s = run_one(false, buf, size, total);
        struct run z = run_one(true, buf, size, total);
        double gib = 1024.0 * 1024 * 1024;
        if (z.zc_refused) {
            printf("| %zu B | %.2f | refused | %.0f | - | - |\n", size, s.bytes / s.wall_s / 1e9,
                   s.cpu_s * 1e3 / (s.bytes / gib));
            continue;
        }
        printf("| %zu B | %.2f | %.2f | %.0f | %.0f | %llu of %llu |\n", size,
               s.bytes / s.wall_s / 1e9, z.bytes / z.wall_s / 1e9, s.cpu_s * 1e3 / (s.bytes / gib),
               z.cpu_s * 1e3 / (z.bytes / gib), (unsigned long long)z.copied,
               (unsigned long long)z.notifs);
    }
    free(buf);
    return 0;
}
