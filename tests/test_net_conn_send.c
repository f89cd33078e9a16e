/* The slow-consumer policy (net/conn_send.c) without a ring, on one connection and a clock
 * the test moves: a burst over --max-queue opens an episode but closes nobody; a window in
 * which the socket took the excess passes, and the episode ends once the queue is within
 * the limits, and the next window is judged on the excess at its own start; a window in
 * which the socket did not take that ends in the 1008 close (policy close) or in
 * the oldest frames dropped down to 3/4 of the limits (drop-oldest); a lone message larger
 * than the limit is never over; the queue_bytes gauge follows the queue throughout. */
#include <string.h>

#include "../net/conn_send.h"
#include "../net/worker.h"
#include "check.h"
#include "uringws/block.h"
#include "uringws/frame.h"

static ws_server_config_t cfg;
static ws_metrics_t m;
static ws_worker_t w;
static ws_conn_t conn;
static const ws_transport_ops_t bare = {.name = "test"};

static void setup(enum ws_slow_policy policy)
{
    ws_server_config_defaults(&cfg);
    cfg.max_queue = 1000;
    cfg.max_queue_frames = 100;
    cfg.slow_grace_ms = 1000;
    cfg.slow_policy = policy;
    memset(&m, 0, sizeof(m));
    memset(&w, 0, sizeof(w));
    w.cfg = &cfg;
    w.m = &m;
    w.now_ms = 50000;
    ws_bref_pool_init(&w.brefs);
    ws_timer_wheel_init(&w.wheel, w.now_ms, 250);
    memset(&conn, 0, sizeof(conn));
    conn.tp = &bare;
    conn.state = WS_CONN_OPEN;
    conn.t_rx = conn.t_ping = conn.t_open = w.now_ms;
    ws_sendq_init(&conn.sq);
    ws_timer_init(&conn.timer, NULL);
    ws_dlink_init(&conn.pending);
}

static void teardown(void)
{
    ws_conn_send_drop(&w, &conn, true);
    CHECK_EQ_U(m.queue_bytes, 0);
    CHECK_EQ_U(w.brefs.live, 0);
    ws_timer_del(&w.wheel, &conn.timer);
    ws_bref_pool_free(&w.brefs);
}

/* A broadcast message of `len` payload bytes, delivered the way a room does it. */
static void deliver(size_t len)
{
    static uint8_t payload[4096];
    ws_block_t *b = ws_block_frame(WS_OP_TEXT, payload, len);
    REQUIRE(b != NULL);
    ws_bref_t *br = ws_bref_new(&w.brefs, b, 1);
    REQUIRE(br != NULL);
    ws_conn_send_deliver(&w, &conn, br);
    CHECK_EQ_U(m.queue_bytes, conn.sq.bytes);
}

/* The socket takes up to `bytes` of what is queued. */
static void socket_takes(size_t bytes)
{
    struct iovec iov[64];
    size_t have;
    ws_sendq_gather(&conn.sq, iov, 64, 1u << 20, &have);
    conn.flags |= WS_CONN_F_SEND;
    ws_conn_send_done(&w, &conn, (int)(bytes < have ? bytes : have));
    CHECK_EQ_U(m.queue_bytes, conn.sq.bytes);
}

static bool closing(void)
{
    return (conn.flags & WS_CONN_F_NEED_CLOSE) != 0;
}

static void burst_is_not_slow(void)
{
    setup(WS_SLOW_CLOSE);
    for (int i = 0; i < 8; i++)
        deliver(300); /* 2.4 kB queued at once: over the limit */
    CHECK(conn.flags & WS_CONN_F_OVER);
    CHECK(!closing());
    CHECK_EQ_U(m.queue_over, 1);
    w.now_ms += 600;
    socket_takes(1500); /* the excess, and more */
    w.now_ms += 500;    /* the window is over: it passed */
    ws_conn_send_backpressure(&w, &conn);
    CHECK(!closing());
    socket_takes(1u << 20);
    CHECK(!(conn.flags & WS_CONN_F_OVER)); /* within the limits: the episode ended */
    CHECK_EQ_U(m.slow_closes, 0);
    teardown();
}

static void stuck_reader_is_closed(void)
{
    setup(WS_SLOW_CLOSE);
    for (int i = 0; i < 8; i++)
        deliver(300);
    w.now_ms += 999;
    ws_conn_send_backpressure(&w, &conn);
    CHECK(!closing()); /* still inside its window */
    w.now_ms += 1;
    ws_conn_send_backpressure(&w, &conn);
    CHECK(closing());
    CHECK_EQ_U(conn.close_code, WS_CLOSE_POLICY);
    CHECK_EQ_U(m.slow_closes, 1);
    teardown();
}

/* A window's target is the excess when it opened; what queued later is the next window's. */
static void trickle_is_judged_again(void)
{
    setup(WS_SLOW_CLOSE);
    for (int i = 0; i < 10; i++)
        deliver(300); /* over from the 4th on (by 216 bytes then), 2 kB over at the end */
    w.now_ms += 1000;
    socket_takes(500); /* more than the first window's 216 bytes: it passes */
    ws_conn_send_backpressure(&w, &conn);
    CHECK(!closing());
    CHECK(conn.flags & WS_CONN_F_OVER);
    w.now_ms += 1000;
    socket_takes(200); /* far less than the 1.5 kB over at the second window's start */
    ws_conn_send_backpressure(&w, &conn);
    CHECK(closing());
    teardown();
}

static void drop_oldest_trims(void)
{
    setup(WS_SLOW_DROP_OLDEST);
    for (int i = 0; i < 20; i++)
        deliver(300);
    uint64_t queued = conn.sq.bytes;
    w.now_ms += 1000;
    ws_conn_send_backpressure(&w, &conn);
    CHECK(!closing());
    CHECK(conn.sq.bytes <= cfg.max_queue / 4 * 3);
    CHECK(conn.sq.bytes < queued);
    CHECK(m.slow_drop_frames > 0);
    CHECK_EQ_U(m.slow_drop_bytes, queued - conn.sq.bytes);
    CHECK(!(conn.flags & WS_CONN_F_OVER));
    teardown();
}

static void lone_big_message_is_not_over(void)
{
    setup(WS_SLOW_CLOSE);
    deliver(3000); /* one message over max_queue, within max_message */
    CHECK(!ws_conn_send_over(&w, &conn));
    CHECK(!(conn.flags & WS_CONN_F_OVER));
    w.now_ms += 5000;
    ws_conn_send_backpressure(&w, &conn);
    CHECK(!closing());
    teardown();
}

int main(void)
{
    burst_is_not_slow();
    stuck_reader_is_closed();
    trickle_is_judged_again();
    drop_oldest_trims();
    lone_big_message_is_not_over();
    return check_exit_status("test_net_conn_send");
}
