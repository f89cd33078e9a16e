/* Publishing by room name (ws_broadcast_publish_name), on two workers without rings (their
 * cross-core queues drained by hand): a message published by name on a core without
 * members, or on the room's home core, reaches a member on the other core once, in the
 * order the home core saw (one core's publishes keep theirs); a room without members drops it; a
 * name that is empty or too long is -EINVAL; every block and room struct is freed (ASan checks the
 * leaks). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../net/broadcast.h"
#include "../net/conn_send.h"
#include "../net/server_internal.h"
#include "check.h"
#include "uringws/frame.h"

static ws_server_t srv;
static ws_worker_t w[2];
static ws_metrics_t m[2];
static uint8_t dirty[2][2];
static unsigned dirty_list[2][2];
static const ws_transport_ops_t bare = {.name = "test"};

static void setup(void)
{
    ws_server_config_defaults(&srv.cfg);
    srv.ncores = 2;
    REQUIRE(ws_xcore_init(&srv.xcore, 2) == 0);
    for (unsigned i = 0; i < 2; i++) {
        ws_worker_t *c = &w[i];
        c->id = i;
        c->ncores = 2;
        c->srv = &srv;
        c->cfg = &srv.cfg;
        c->m = &m[i];
        c->xdirty = dirty[i];
        c->xdirty_list = dirty_list[i];
        c->now_ms = 1000;
        REQUIRE(ws_room_map_init(&c->rooms) == 0);
        ws_bref_pool_init(&c->brefs);
        ws_timer_wheel_init(&c->wheel, c->now_ms, 250);
    }
}

/* What the loop does for core dst: its cross-core events, then the pass's batches. */
static void drain(unsigned dst)
{
    ws_worker_t *c = &w[dst];
    c->nxdirty = 0;
    w[1 - dst].nxdirty = 0;
    memset(dirty, 0, sizeof(dirty));
    ws_xev_t ev;
    while (ws_xcore_q_pop(ws_xcore_q(&srv.xcore, 1 - dst, dst), &ev))
        ws_broadcast_on_event(c, &ev);
    ws_broadcast_flush(c);
}

/* A name whose home core is `home`. */
static size_t name_with_home(unsigned home, char *out, size_t cap)
{
    for (int i = 0;; i++) {
        int n = snprintf(out, cap, "room-%d", i);
        if (ws_room_home(ws_room_hash(out, (size_t)n), 2) == home)
            return (size_t)n;
    }
}

static ws_block_t *text(const char *s)
{
    ws_block_t *b = ws_block_frame(WS_OP_TEXT, (const uint8_t *)s, strlen(s));
    REQUIRE(b != NULL);
    return b;
}

/* The payloads queued on conn, in order, joined by '|'. */
static void queued(ws_conn_t *conn, char *out, size_t cap)
{
    struct iovec iov[16];
    size_t bytes, k = 0;
    unsigned n = ws_sendq_gather(&conn->sq, iov, 16, 1u << 20, &bytes);
    out[0] = 0;
    for (unsigned i = 0; i < n; i++) {
        /* One entry may be a batch of frames; short unmasked frames have a 2-byte header. */
        const uint8_t *p = iov[i].iov_base, *end = p + iov[i].iov_len;
        while (p < end) {
            size_t len = p[1] & 0x7f;
            k += (size_t)snprintf(out + k, cap - k, "%s%.*s", k ? "|" : "", (int)len,
                                  (const char *)p + 2);
            p += 2 + len;
        }
    }
}

int main(void)
{
    setup();
    char name[32];
    size_t len = name_with_home(0, name, sizeof(name)); /* home 0, member on core 1 */
    ws_conn_t member;
    memset(&member, 0, sizeof(member));
    member.tp = &bare;
    member.state = WS_CONN_OPEN;
    ws_sendq_init(&member.sq);
    ws_timer_init(&member.timer, NULL);
    ws_dlink_init(&member.pending);
    ws_dlink_init(&member.member);
    REQUIRE(ws_broadcast_join(&w[1], &member, name, len) == 0);
    drain(0); /* the JOIN */

    /* The home orders: its own publish now, core 1's (kept in their order) when it drains. */
    CHECK_INT(ws_broadcast_publish_name(&w[1], name, len, text("a1")), 0); /* not home: via 0 */
    CHECK_INT(ws_broadcast_publish_name(&w[0], name, len, text("b1")), 0); /* on the home core */
    CHECK_INT(ws_broadcast_publish_name(&w[1], name, len, text("a2")), 0);
    drain(0);
    drain(1);
    char got[128];
    queued(&member, got, sizeof(got));
    CHECK(strcmp(got, "b1|a1|a2") == 0);
    if (strcmp(got, "b1|a1|a2") != 0)
        fprintf(stderr, "queued: %s\n", got);

    /* Rooms nobody is in, with either home: dropped, and freed. */
    char empty[32];
    size_t elen = name_with_home(0, empty, sizeof(empty));
    if (elen == len && memcmp(empty, name, len) == 0)
        snprintf(empty, sizeof(empty), "nobody"), elen = 6;
    CHECK_INT(ws_broadcast_publish_name(&w[1], empty, elen, text("x")), 0);
    CHECK_INT(ws_broadcast_publish_name(&w[0], empty, elen, text("y")), 0);
    drain(0);
    drain(1);
    CHECK_EQ_U(member.sq.frames, 3);

    CHECK_INT(ws_broadcast_publish_name(&w[0], "", 0, text("z")), -EINVAL);
    char big[WS_ROOM_MAX + 2];
    memset(big, 'a', sizeof(big));
    CHECK_INT(ws_broadcast_publish_name(&w[0], big, sizeof(big), text("z")), -EINVAL);

    ws_broadcast_leave(&w[1], &member);
    drain(0); /* LEAVE */
    drain(1); /* LEAVE_ACK: core 1's struct goes */
    CHECK_EQ_U(w[0].rooms.count, 0);
    CHECK_EQ_U(w[1].rooms.count, 0);
    ws_conn_send_drop(&w[1], &member, true);
    for (unsigned i = 0; i < 2; i++) {
        CHECK_EQ_U(w[i].brefs.live, 0);
        ws_room_map_free(&w[i].rooms);
        ws_bref_pool_free(&w[i].brefs);
    }
    ws_xcore_free(&srv.xcore);
    return check_exit_status("test_net_publish");
}
