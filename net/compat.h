/* The one place that papers over liburing 2.3 (Debian 12): kernel flag names and helpers that
 * newer liburing releases have and 2.3 lacks. Everything is guarded with #ifndef so a newer
 * liburing wins. Never include <linux/io_uring.h> next to <liburing.h>: they share an include
 * guard and one silently hides the other. */
#ifndef URINGWS_NET_COMPAT_H
#define URINGWS_NET_COMPAT_H

#include <liburing.h>
#include <stdint.h>

/* Setup and feature flags (kernel 6.1 .. 6.10). */
#ifndef IORING_SETUP_SINGLE_ISSUER
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#endif
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif
#ifndef IORING_FEAT_RECVSEND_BUNDLE
#define IORING_FEAT_RECVSEND_BUNDLE (1U << 14)
#endif

/* Send/recv flags. */
#ifndef IORING_RECVSEND_BUNDLE
#define IORING_RECVSEND_BUNDLE (1U << 4)
#endif
#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_CQE_F_BUF_MORE
#define IORING_CQE_F_BUF_MORE (1U << 4)
#endif

/* Socket commands through IORING_OP_URING_CMD (kernel 6.7 for SETSOCKOPT). */
#ifndef SOCKET_URING_OP_SETSOCKOPT
#define SOCKET_URING_OP_SIOCINQ    0
#define SOCKET_URING_OP_SIOCOUTQ   1
#define SOCKET_URING_OP_GETSOCKOPT 2
#define SOCKET_URING_OP_SETSOCKOPT 3
#endif

/* io_uring_prep_cmd_sock() arrived in liburing 2.5. Its fields overlay 2.3's struct layout:
 * cmd_op is the low half of `off`, level/optname the two halves of `addr`, optlen sits in
 * `file_index` and optval in `addr3`. The kernel copies optval at issue time, so it only has
 * to live until the SQE is submitted. */
static inline void ws_prep_cmd_setsockopt(struct io_uring_sqe *sqe, int fd, int level, int optname,
                                          const void *optval, int optlen)
{
    io_uring_prep_rw(IORING_OP_URING_CMD, sqe, fd, NULL, 0, 0);
    sqe->cmd_op = SOCKET_URING_OP_SETSOCKOPT;
    sqe->addr = (uint64_t)(uint32_t)level | ((uint64_t)(uint32_t)optname << 32);
    sqe->file_index = (uint32_t)optlen;
    sqe->addr3 = (uint64_t)(uintptr_t)optval;
}

/* A single-shot accept into a direct descriptor the kernel picks. liburing 2.3's
 * io_uring_prep_accept_direct(..., IORING_FILE_INDEX_ALLOC) stores the index plus one, which
 * wraps to 0 ("not direct") and so installs a regular fd; the kernel wants the raw ~0U. */
static inline void ws_prep_accept_direct_alloc(struct io_uring_sqe *sqe, int fd,
                                               struct sockaddr *addr, socklen_t *addrlen)
{
    io_uring_prep_accept(sqe, fd, addr, addrlen, 0);
    sqe->file_index = IORING_FILE_INDEX_ALLOC;
}

_Static_assert(sizeof(struct io_uring_sqe) == 64, "SQE layout changed: recheck ws_prep_cmd_*");
_Static_assert(__builtin_offsetof(struct io_uring_sqe, addr3) == 48, "optval must land at 48");
_Static_assert(__builtin_offsetof(struct io_uring_sqe, file_index) == 44, "optlen must land at 44");

#endif
