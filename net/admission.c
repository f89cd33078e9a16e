/* Who gets in: the counts behind max_conns (server-wide, atomic), max_conns_per_ip and
 * max_rooms (the server's key-count tables, net/keycount.c), this core's share of max_pending,
 * and the Origin allow-list. Each count is taken and given back in this file; the
 * connection's flags say which it holds. */
#include "admission.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "keycount.h"
#include "log.h"
#include "worker.h"
#include "server_internal.h"

/* A head-phase connection younger than this is never evicted: a burst of legitimate clients
 * (a reconnect storm, a load balancer draining into this server) connects faster than their
 * heads arrive, and cutting them would turn a burst into failed handshakes. Trickling
 * slowloris sockets are older than this by the time they matter. */
#define EVICT_MIN_AGE_MS 500

static int refuse(ws_refusal_t *out, int status, const char *why, int err)
{
    out->status = status;
    out->why = why;
    return err;
}

/* Counts the connection against max_conns_per_ip. */
static int count_peer(ws_worker_t *c, ws_conn_t *conn, const struct sockaddr *peer,
                      socklen_t peer_len, ws_refusal_t *out)
{
    if (!peer || !c->srv->ip_counts || !ws_keycount_peer_key(peer, peer_len, conn->peer))
        return 0;
    int rc = ws_keycount_acquire(c->srv->ip_counts, conn->peer, sizeof(conn->peer),
                                 c->cfg->max_conns_per_ip, 0);
    if (rc == 0) {
        conn->flags |= WS_CONN_F_IP_COUNTED;
        return 0;
    }
    if (rc == -EUSERS) {
        ws_metric_inc(&c->m->ip_rejects);
        return refuse(out, 429, "too many connections from this address", -EUSERS);
    }
    ws_log_error("conn %u: out of memory counting its address", conn->idx);
    return refuse(out, 503, "too many connections", -EUSERS);
}

int ws_admission_accept(ws_worker_t *c, ws_conn_t *conn, const struct sockaddr *peer,
                        socklen_t peer_len, ws_refusal_t *out)
{
    uint32_t prev = atomic_fetch_add_explicit(&c->srv->open_conns, 1, memory_order_relaxed);
    if (prev >= c->cfg->max_conns) {
        atomic_fetch_sub_explicit(&c->srv->open_conns, 1, memory_order_relaxed);
        ws_metric_inc(&c->m->conn_rejects);
        return refuse(out, 503, "too many connections", -EUSERS);
    }
    conn->flags |= WS_CONN_F_COUNTED;
    ws_metric_inc(&c->m->conns_current);
    return count_peer(c, conn, peer, peer_len, out);
}

/* Past this core's share of max_pending the oldest head-phase connection is closed (no
 * response; it had its chance) once it has been sending its head for EVICT_MIN_AGE_MS (or
 * half the head deadline, if shorter). Trickling heads (slowloris) thus cycle through a
 * bounded set instead of filling max_conns; younger ones are all kept, bounded by
 * max_conns. */
ws_conn_t *ws_admission_evictee(ws_worker_t *c)
{
    if (c->nheads < c->max_heads || !ws_qlink_first(&c->heads))
        return NULL;
    ws_conn_t *old = ws_container_of(ws_qlink_first(&c->heads), ws_conn_t, head_link);
    uint64_t min_age = c->cfg->handshake_timeout_ms / 2;
    if (min_age > EVICT_MIN_AGE_MS)
        min_age = EVICT_MIN_AGE_MS;
    if (c->now_ms - old->t_accept < min_age)
        return NULL;
    ws_log_verbose("conn %u: evicted after %llu ms without a complete request head (%u "
                   "connections in the head phase on this core)",
                   old->idx, (unsigned long long)(c->now_ms - old->t_accept), c->nheads);
    ws_metric_inc(&c->m->pending_evictions);
    return old;
}

int ws_admission_upgrade(ws_worker_t *c, ws_conn_t *conn, const ws_handshake_t *hs, bool joins_room,
                         ws_refusal_t *out)
{
    if (c->cfg->origins && !ws_origins_allow(&c->srv->origins, hs->origin)) {
        ws_metric_inc(&c->m->origin_rejects);
        ws_log_verbose("conn %u: Origin '%.*s' not allowed", conn->idx,
                       (int)(hs->origin.len > 200 ? 200 : hs->origin.len),
                       hs->origin.len ? (const char *)hs->origin.base : "");
        return refuse(out, 403, hs->origin.len ? "origin not allowed" : "Origin header required",
                      -EACCES);
    }
    if (!joins_room || !c->srv->room_counts)
        return 0;
    int rc = ws_keycount_acquire(c->srv->room_counts, hs->room, hs->room_len, 0, c->cfg->max_rooms);
    if (rc < 0) {
        ws_metric_inc(&c->m->room_rejects);
        ws_log_verbose("conn %u: room '%s' refused: %s", conn->idx, hs->room,
                       rc == -ENOSPC ? "room limit reached" : strerror(-rc));
        return refuse(out, 503, rc == -ENOSPC ? "too many rooms" : "out of memory",
                      rc == -ENOSPC ? -EUSERS : rc);
    }
    conn->flags |= WS_CONN_F_ROOM_COUNTED;
    return 0;
}

void ws_admission_room_release(ws_worker_t *c, ws_conn_t *conn, const char *name, size_t len)
{
    if (conn->flags & WS_CONN_F_ROOM_COUNTED) {
        conn->flags &= ~WS_CONN_F_ROOM_COUNTED;
        ws_keycount_release(c->srv->room_counts, name, len);
    }
}

void ws_admission_release(ws_worker_t *c, ws_conn_t *conn)
{
    if (conn->flags & WS_CONN_F_COUNTED) {
        conn->flags &= ~WS_CONN_F_COUNTED;
        atomic_fetch_sub_explicit(&c->srv->open_conns, 1, memory_order_relaxed);
        ws_metric_sub(&c->m->conns_current, 1);
    }
    if (conn->flags & WS_CONN_F_IP_COUNTED) {
        conn->flags &= ~WS_CONN_F_IP_COUNTED;
        ws_keycount_release(c->srv->ip_counts, conn->peer, sizeof(conn->peer));
    }
}
