/* Kernel and io_uring feature probing on a scratch ring at start-up, and ring creation with
 * flag-by-flag fallback. Opcode support comes from io_uring's probe; features without their
 * own opcode are inferred from opcodes that arrived in the same release (noted below) or
 * tried for real (buffer rings, sparse files). */
#include "probe.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "log.h"

int ws_probe_ring_create(struct io_uring *ring, unsigned sq_entries, unsigned cq_entries,
                         unsigned flags, unsigned *used, bool log)
{
    static const struct {
        unsigned flag;
        const char *name;
    } order[] = {
        {IORING_SETUP_DEFER_TASKRUN, "DEFER_TASKRUN"},
        {IORING_SETUP_SINGLE_ISSUER, "SINGLE_ISSUER"},
        {IORING_SETUP_COOP_TASKRUN, "COOP_TASKRUN"},
        {IORING_SETUP_SUBMIT_ALL, "SUBMIT_ALL"},
    };
    size_t i = 0;
    for (;;) {
        struct io_uring_params p;
        memset(&p, 0, sizeof(p));
        p.flags = flags;
        p.cq_entries = cq_entries;
        int rc = io_uring_queue_init_params(sq_entries, ring, &p);
        if (rc == 0) {
            *used = flags;
            return 0;
        }
        if (rc != -EINVAL)
            return rc;
        while (i < sizeof(order) / sizeof(order[0]) && !(flags & order[i].flag))
            i++;
        if (i == sizeof(order) / sizeof(order[0]))
            return rc;
        if (log)
            ws_log_warn("io_uring: kernel refused IORING_SETUP_%s; retrying without it",
                        order[i].name);
        flags &= ~order[i].flag;
        /* Without deferred task work, cooperative task work is the next best thing. */
        if (order[i].flag == IORING_SETUP_DEFER_TASKRUN)
            flags |= IORING_SETUP_COOP_TASKRUN;
        i++;
    }
}

static bool probe_buf_ring(struct io_uring *ring)
{
    long page = sysconf(_SC_PAGESIZE);
    void *mem =
        mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return false;
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof(reg));
    reg.ring_addr = (uint64_t)(uintptr_t)mem;
    reg.ring_entries = 1;
    reg.bgid = 7;
    bool ok = io_uring_register_buf_ring(ring, &reg, 0) == 0;
    if (ok)
        io_uring_unregister_buf_ring(ring, 7);
    munmap(mem, (size_t)page);
    return ok;
}

int ws_probe_features(const ws_server_config_t *cfg, ws_features_t *f)
{
    (void)cfg;
    memset(f, 0, sizeof(*f));
    struct utsname u;
    if (uname(&u) == 0)
        sscanf(u.release, "%u.%u", &f->kernel_major, &f->kernel_minor);
    if (f->kernel_major < 5 || (f->kernel_major == 5 && f->kernel_minor < 19)) {
        ws_log_error("kernel %s is too old: uringws needs Linux 5.19 or newer (io_uring "
                     "multishot accept, provided buffer rings, MSG_RING)",
                     u.release);
        return -ENOSYS;
    }
    struct io_uring ring;
    unsigned want = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
                    IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
    int rc = ws_probe_ring_create(&ring, 8, 64, want, &f->setup_flags, true);
    if (rc < 0) {
        ws_log_error("io_uring is not available: %s (is it disabled by "
                     "/proc/sys/kernel/io_uring_disabled or a seccomp policy?)",
                     strerror(-rc));
        return -ENOSYS;
    }
    f->single_issuer = f->setup_flags & IORING_SETUP_SINGLE_ISSUER;
    f->defer_taskrun = f->setup_flags & IORING_SETUP_DEFER_TASKRUN;
    f->coop_taskrun = f->setup_flags & IORING_SETUP_COOP_TASKRUN;
    f->submit_all = f->setup_flags & IORING_SETUP_SUBMIT_ALL;
    f->ext_arg = ring.features & IORING_FEAT_EXT_ARG;
    f->bundles = ring.features & IORING_FEAT_RECVSEND_BUNDLE;

    struct io_uring_probe *probe = io_uring_get_probe_ring(&ring);
    if (!probe) {
        ws_log_error("io_uring probe failed: kernel too old (needs 5.19+)");
        io_uring_queue_exit(&ring);
        return -ENOSYS;
    }
    static const struct {
        int op;
        const char *name;
    } need[] = {
        {IORING_OP_ACCEPT, "ACCEPT"},     {IORING_OP_RECV, "RECV"},
        {IORING_OP_SEND, "SEND"},         {IORING_OP_SENDMSG, "SENDMSG"},
        {IORING_OP_TIMEOUT, "TIMEOUT"},   {IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"},
        {IORING_OP_CLOSE, "CLOSE"},       {IORING_OP_SHUTDOWN, "SHUTDOWN"},
        {IORING_OP_MSG_RING, "MSG_RING"}, {IORING_OP_SOCKET, "SOCKET (5.19)"},
    };
    rc = 0;
    for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
        if (!io_uring_opcode_supported(probe, need[i].op)) {
            ws_log_error("io_uring lacks IORING_OP_%s: kernel too old (needs 5.19+)", need[i].name);
            rc = -ENOSYS;
        }
    }
    if (rc == 0) {
        /* IORING_OP_SOCKET and multishot accept (with IORING_FILE_INDEX_ALLOC) are both
         * 5.19; SEND_ZC and multishot recv are both 6.0. */
        f->multishot_accept = true;
        f->msg_ring = true;
        f->send_zc = io_uring_opcode_supported(probe, IORING_OP_SEND_ZC);
        f->multishot_recv = f->send_zc;
        f->buf_ring = probe_buf_ring(&ring);
        if (!f->buf_ring) {
            ws_log_error("io_uring provided buffer rings are missing: kernel too old "
                         "(needs 5.19+)");
            rc = -ENOSYS;
        }
        f->direct_fds = io_uring_register_files_sparse(&ring, 1) == 0;
        if (f->direct_fds)
            io_uring_unregister_files(&ring);
    }
    io_uring_free_probe(probe);
    io_uring_queue_exit(&ring);
    return rc;
}

static const char *yn(bool v)
{
    return v ? "yes" : "no";
}

void ws_probe_log(const ws_features_t *f, const ws_server_config_t *cfg)
{
    ws_log_info("kernel %u.%u", f->kernel_major, f->kernel_minor);
    ws_log_info("io_uring single issuer: %s", yn(f->single_issuer));
    ws_log_info("io_uring defer taskrun: %s%s", yn(f->defer_taskrun),
                f->defer_taskrun ? "" : (f->coop_taskrun ? " (coop taskrun instead)" : ""));
    ws_log_info("io_uring submit all: %s", yn(f->submit_all));
    ws_log_info("io_uring multishot accept: %s", yn(f->multishot_accept));
    ws_log_info("io_uring direct descriptors: %s%s", yn(f->direct_fds),
                !f->direct_fds        ? " (regular fds)"
                : cfg->use_direct_fds ? " (in use)"
                                      : " (not used: regular fds requested)");
    ws_log_info("io_uring multishot recv: %s%s", yn(f->multishot_recv),
                f->multishot_recv ? "" : " (single-shot recv, re-armed per completion)");
    ws_log_info("io_uring buffer rings: %s", yn(f->buf_ring));
    ws_log_info("io_uring msg_ring: %s", yn(f->msg_ring));
    ws_log_info("io_uring send_zc: %s%s", yn(f->send_zc),
                f->send_zc
                    ? " (not used: on loopback the kernel copies anyway, see docs/benchmarks.md)"
                    : "");
    ws_log_info("io_uring bundles: %s%s", yn(f->bundles),
                f->bundles ? " (not used: sendmsg gathers queued frames)" : "");
}
