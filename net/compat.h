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
