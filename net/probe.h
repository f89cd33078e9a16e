/* What the running kernel's io_uring can do, probed once at start-up on a scratch ring, and
 * the one log line per feature. The cores build their rings from the flags found here and
 * fall back further (with a log line) if their own setup is refused anyway. */
#ifndef URINGWS_NET_PROBE_H
#define URINGWS_NET_PROBE_H

#include <stdbool.h>

#include "compat.h"
#include "uringws/server.h"

typedef struct ws_features {
    unsigned kernel_major, kernel_minor;
    unsigned setup_flags; /* IORING_SETUP_* the kernel accepted, CQSIZE/CLAMP included */
    bool single_issuer;
    bool defer_taskrun;
    bool coop_taskrun;
    bool submit_all;
    bool multishot_accept; /* 5.19 */
    bool direct_fds;       /* sparse file table + accept into it (5.19) */
    bool multishot_recv;   /* 6.0 */
    bool buf_ring;         /* 5.19 */
    bool msg_ring;         /* 5.18 */
    bool send_zc;          /* 6.0 */
    bool bundles;          /* 6.10 */
    bool ext_arg;
} ws_features_t;

/* Probes. Returns 0, or -ENOSYS (after logging a clear error) when the kernel is older than
 * 5.19 or io_uring is unavailable or lacks something the engine cannot do without. */
int ws_probe_features(const ws_server_config_t *cfg, ws_features_t *f);
/* Logs one line per feature, found or missing, and what the engine will use. */
void ws_probe_log(const ws_features_t *f, const ws_server_config_t *cfg);

/* Creates a ring with `flags`, dropping flags the kernel refuses one by one in the order
 * DEFER_TASKRUN, SINGLE_ISSUER, COOP_TASKRUN, SUBMIT_ALL (logging each when `log` is set).
 * On success *used holds the flags in effect. Returns 0 or -errno. */
int ws_probe_ring_create(struct io_uring *ring, unsigned sq_entries, unsigned cq_entries,
                         unsigned flags, unsigned *used, bool log);

#endif
