/* The loop's handler table with an owner that is not a connection: a worker's loop runs on
 * this thread (one core, its own ring, no listener) with a pipe registered through
 * ws_worker_handler_add. The pipe's read completes into the owner's handler with the
 * user_data idx/gen it chose and the bytes written; the handler then arms a timer with a
 * callback on the worker's wheel, whose firing stops the loop through the stop eventfd.
 * Also: fixed kinds cannot be taken twice by _add, a kind given back is reused, and a
 * completion of an unowned kind is logged and dropped. Exits 77 without io_uring. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../net/loop.h"
#include "../net/server_internal.h"
#include "check.h"

typedef struct pipe_owner {
    int fds[2];
    char buf[32];
    unsigned kind;
    int reads;
    int res;
    uint64_t ud;
    ws_timer_t timer;
    int fired;
} pipe_owner_t;

static ws_server_t srv;
static ws_metrics_t metrics;

static void on_timer(void *ctx, ws_timer_t *t)
{
    ws_worker_t *c = ctx;
    pipe_owner_t *o = (pipe_owner_t *)((char *)t - offsetof(pipe_owner_t, timer));
    o->fired++;
    static const uint64_t one = 1;
    CHECK(write(c->stop_efd, &one, sizeof(one)) == sizeof(one));
}

static void on_pipe(ws_worker_t *c, void *owner, const ws_cqe_t *e)
{
    pipe_owner_t *o = owner;
    o->reads++;
    o->res = e->res;
    o->ud = e->ud;
    ws_timer_init(&o->timer, on_timer);
    ws_timer_add(&c->wheel, &o->timer, c->now_ms + 1);
}

static void table(ws_worker_t *c)
{
    ws_handler_t saved[WS_UD_KIND_MAX];
    memcpy(saved, c->handlers, sizeof(saved));
    CHECK_INT(ws_worker_handler_set(c, WS_UD_NONE, on_pipe, NULL, "x"), -EINVAL);
    CHECK_INT(ws_worker_handler_set(c, WS_UD_KIND_MAX, on_pipe, NULL, "x"), -EINVAL);
    int first = ws_worker_handler_add(c, on_pipe, NULL, "a");
    CHECK_INT(first, WS_UD_FIXED_MAX); /* the fixed kinds are all taken by their modules */
    int n = 1;
    while (ws_worker_handler_add(c, on_pipe, NULL, "fill") >= 0)
        n++;
    CHECK_INT(n, WS_UD_KIND_MAX - WS_UD_FIXED_MAX);
    CHECK_INT(ws_worker_handler_add(c, on_pipe, NULL, "full"), -ENOSPC);
    ws_worker_handler_del(c, (unsigned)first + 3);
    CHECK_INT(ws_worker_handler_add(c, on_pipe, NULL, "again"), first + 3);
    ws_worker_handler_del(c, WS_UD_RECV); /* a fixed kind is not given back */
    CHECK(c->handlers[WS_UD_RECV].fn != NULL);
    memcpy(c->handlers, saved, sizeof(saved));
}

int main(void)
{
    ws_server_config_t *cfg = &srv.cfg;
    ws_server_config_defaults(cfg);
    cfg->cores = 1;
    cfg->tick_ms = 10;
    cfg->max_conns = 16;
    if (ws_probe_features(cfg, &srv.feat) < 0) {
        printf("test_net_owner: io_uring unavailable: skipped\n");
        return 77;
    }
    srv.ncores = 1;
    ws_worker_t c;
    memset(&c, 0, sizeof(c));
    c.srv = &srv;
    c.cfg = cfg;
    c.m = &metrics;
    c.ncores = 1;
    c.nslots = 16;
    for (unsigned k = 0; k < WS_LSN_N; k++)
        c.lsn[k].fd = -1;
    c.stop_efd = eventfd(0, EFD_CLOEXEC);
    REQUIRE(c.stop_efd >= 0);
    REQUIRE_INT(ws_loop_setup(&c), 0);
    table(&c);

    pipe_owner_t o;
    memset(&o, 0, sizeof(o));
    REQUIRE(pipe(o.fds) == 0);
    int kind = ws_worker_handler_add(&c, on_pipe, &o, "pipe");
    REQUIRE(kind >= WS_UD_FIXED_MAX);
    o.kind = (unsigned)kind;
    struct io_uring_sqe *sqe = ws_worker_sqe(&c);
    io_uring_prep_read(sqe, o.fds[0], o.buf, sizeof(o.buf), 0);
    io_uring_sqe_set_data64(sqe, ws_ud_make(o.kind, 7, 3));
    /* A completion nobody owns (a kind given back) must not reach anyone. */
    int gone = ws_worker_handler_add(&c, on_pipe, &o, "gone");
    REQUIRE(gone >= 0);
    ws_worker_handler_del(&c, (unsigned)gone);
    sqe = ws_worker_sqe(&c);
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, ws_ud_make((unsigned)gone, 0, 0));
    REQUIRE(write(o.fds[1], "hello", 5) == 5);

    ws_loop_run(&c); /* returns once the timer's callback wrote the stop eventfd */

    CHECK_INT(o.reads, 1);
    CHECK_INT(o.res, 5);
    CHECK(memcmp(o.buf, "hello", 5) == 0);
    CHECK_EQ_U(ws_ud_kind(o.ud), o.kind);
    CHECK_EQ_U(ws_ud_idx(o.ud), 7);
    CHECK_EQ_U(ws_ud_gen(o.ud), 3);
    CHECK_INT(o.fired, 1);
    ws_loop_teardown_thread(&c);
    ws_loop_free(&c);
    close(o.fds[0]);
    close(o.fds[1]);
    close(c.stop_efd);
    return check_exit_status("test_net_owner");
}
