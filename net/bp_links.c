/* The backplane's connections (net/bp_internal.h). One Redis: one link, two connections,
 * for good. A Cluster: a topology connection to a seed (or, when that fails, the next seed
 * or a master already known) asks CLUSTER SLOTS at start, every 10 s (every second while a
 * link is down or slots have no master), and whenever a redirection or a lost link says the
 * map changed; each master in the map gets a link, a link whose node left the map is closed
 * (reopened if it comes back). All connections share one handler kind: a completion's id is
 * 0 for the topology connection, 1 + 2i and 2 + 2i for link i's publish and subscribe. */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bp_internal.h"
#include "cluster.h"
#include "log.h"
#include "worker.h"

#define LINKS_MAX       256
#define REFRESH_MS      10000
#define REFRESH_SOON_MS 1000

/* ---- links ----------------------------------------------------------------------------- */

static void conn_up(ws_worker_t *c, ws_redis_t *r)
{
    (void)c;
    bp_link_t *l = r->owner;
    if (l->pub.up && l->sub.up && !l->up) {
        l->up = true;
        l->bp->lops->up(l);
    }
}

/* Either connection lost: the other goes too (what was in flight on one is tied to the
 * other), and with a Cluster the map is asked for again (a failover may be under way). */
static void conn_down(ws_worker_t *c, ws_redis_t *r, const char *why)
{
    (void)c;
    bp_link_t *l = r->owner;
    l->up = false;
    l->bp->lops->down(l, why);
    ws_redis_t *other = r == &l->pub ? &l->sub : &l->pub;
    if (other->fd >= 0)
        ws_redis_reset(other, "the other backplane connection was lost");
    ws__bp_links_refresh(l->bp);
}

static void pub_reply(ws_worker_t *c, ws_redis_t *r, redisReply *rep)
{
    (void)c;
    bp_link_t *l = r->owner;
    l->bp->lops->pub_reply(l, rep);
}

static void sub_reply(ws_worker_t *c, ws_redis_t *r, redisReply *rep)
{
    (void)c;
    bp_link_t *l = r->owner;
    l->bp->lops->sub_reply(l, rep);
}

static const ws_redis_ops_t pub_ops = {.up = conn_up, .reply = pub_reply, .down = conn_down};
static const ws_redis_ops_t sub_ops = {.up = conn_up, .reply = sub_reply, .down = conn_down};

static bp_link_t *link_new(ws_backplane_t *bp, const ws_redis_target_t *t)
{
    if (bp->nlinks == LINKS_MAX)
        return NULL;
    bp_link_t **v = realloc(bp->link, (bp->nlinks + 1) * sizeof(*v));
    if (!v)
        return NULL;
    bp->link = v;
    bp_link_t *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->bp = bp;
    l->target = *t;
    l->idx = bp->nlinks;
    l->open = true;
    l->subq.size = sizeof(bp_chan_t *);
    l->flight.size = sizeof(bp_flight_t);
    bp->link[bp->nlinks++] = l;
    ws_redis_init(&l->pub, bp->c, &l->target, &pub_ops, l, "publish", bp->kind, 1 + 2 * l->idx);
    ws_redis_init(&l->sub, bp->c, &l->target, &sub_ops, l, "subscribe", bp->kind, 2 + 2 * l->idx);
    return l;
}

static void link_close(bp_link_t *l, const char *why)
{
    ws_redis_close(&l->pub);
    ws_redis_close(&l->sub);
    l->open = l->up = false;
    l->bp->lops->down(l, why);
}

bp_link_t *ws__bp_link_for(ws_backplane_t *bp, const bp_chan_t *ch)
{
    if (!bp->conf->cluster)
        return bp->link[0];
    if (!bp->have_map || bp->slot_link[ch->slot] == WS_CLUSTER_NO_NODE)
        return NULL;
    return bp->link[bp->slot_link[ch->slot]];
}

static bp_link_t *find_where(ws_backplane_t *bp, const char *where)
{
    for (unsigned i = 0; i < bp->nlinks; i++)
        if (strcmp(bp->link[i]->target.where, where) == 0)
            return bp->link[i];
    return NULL;
}

bp_link_t *ws__bp_link_find(ws_backplane_t *bp, const char *host, int port)
{
    char where[sizeof bp->ctl_target.where], ps[8];
    snprintf(ps, sizeof ps, "%d", port);
    ws__bp_where(where, sizeof where, host, ps);
    bp_link_t *l = find_where(bp, where);
    return l && l->open ? l : NULL;
}

bool ws__bp_links_all_up(const ws_backplane_t *bp)
{
    if (!bp->conf->cluster)
        return bp->link[0]->up;
    if (!bp->have_map)
        return false;
    for (unsigned i = 0; i < bp->nlinks; i++)
        if (bp->link[i]->open && !bp->link[i]->up)
            return false;
    for (unsigned s = 0; s < WS_CLUSTER_SLOTS; s++)
        if (bp->slot_link[s] == WS_CLUSTER_NO_NODE)
            return false;
    return true;
}

/* ---- the Cluster's map ----------------------------------------------------------------- */

static void ask(ws_backplane_t *bp)
{
    if (!bp->ctl.up || bp->ctl_asked) {
        bp->ctl_again = bp->ctl_asked;
        return;
    }
    const char *argv[2] = {"CLUSTER", "SLOTS"};
    size_t lens[2] = {7, 5};
    if (ws_redis_command(&bp->ctl, 2, argv, lens) == 0)
        bp->ctl_asked = true;
}

void ws__bp_links_refresh(ws_backplane_t *bp)
{
    if (bp->conf->cluster && !bp->stopped)
        ask(bp);
}

/* The link of master n of the map (opened or made), or NULL when it cannot be reached. */
static bp_link_t *master_link(ws_backplane_t *bp, const ws_cluster_node_t *n)
{
    char host[NI_MAXHOST];
    snprintf(host, sizeof host, "%s", n->host);
    if (!host[0] &&
        getnameinfo((const struct sockaddr *)&bp->ctl_target.addr, bp->ctl_target.addr_len, host,
                    sizeof host, NULL, 0, NI_NUMERICHOST) != 0)
        return NULL;                         /* "": the node that answered */
    ws_redis_target_t t = bp->conf->seed[0]; /* user and password */
    t.db = 0;
    if (ws__bp_target_numeric(&t, host, n->port) < 0) {
        ws_log_error("backplane: the cluster announces '%s', not an address: its slots have "
                     "no connection (set cluster-preferred-endpoint-type ip)",
                     host);
        return NULL;
    }
    bp_link_t *l = find_where(bp, t.where);
    if (!l)
        return link_new(bp, &t);
    if (!l->open) {
        l->target = t;
        l->open = true;
        ws_redis_open(&l->pub);
        ws_redis_open(&l->sub);
    }
    return l;
}

static void apply(ws_backplane_t *bp, const ws_cluster_map_t *m)
{
    uint16_t idx[WS_CLUSTER_NODES_MAX];
    bool used[LINKS_MAX] = {false};
    for (unsigned i = 0; i < m->nnodes; i++) {
        bp_link_t *l = master_link(bp, &m->node[i]);
        idx[i] = l ? (uint16_t)l->idx : WS_CLUSTER_NO_NODE;
        if (l)
            used[l->idx] = true;
    }
    bool changed = !bp->have_map;
    for (unsigned s = 0; s < WS_CLUSTER_SLOTS; s++) {
        uint16_t v = m->slot[s] == WS_CLUSTER_NO_NODE ? WS_CLUSTER_NO_NODE : idx[m->slot[s]];
        changed |= bp->slot_link[s] != v;
        bp->slot_link[s] = v;
    }
    bp->have_map = true;
    for (unsigned i = 0; i < bp->nlinks; i++)
        if (bp->link[i]->open && !used[i])
            link_close(bp->link[i], "it no longer serves slots");
    if (changed)
        ws_log_info("backplane: cluster map from %s: %u masters", bp->ctl_target.where, m->nnodes);
    bp->lops->topology(bp);
}

static void ctl_reply(ws_worker_t *c, ws_redis_t *r, redisReply *rep)
{
    (void)c;
    ws_backplane_t *bp = r->owner;
    bp->ctl_asked = false;
    int rc = rep->type == REDIS_REPLY_ERROR ? -EPROTO : ws_cluster_parse_slots(rep, bp->map);
    if (rc < 0) {
        if (!bp->ctl_failed)
            ws_log_error("backplane: CLUSTER SLOTS from %s: %.200s", bp->ctl_target.where,
                         rc == -EPROTO ? rep->str : "a reply of another shape");
        bp->ctl_failed = true;
        return;
    }
    bp->ctl_failed = false;
    apply(bp, bp->map);
    if (bp->ctl_again) {
        bp->ctl_again = false;
        ask(bp);
    }
}

static void ctl_up(ws_worker_t *c, ws_redis_t *r)
{
    (void)c;
    ask(r->owner);
}

/* The next node to ask: the seeds, then the masters known. */
static void ctl_down(ws_worker_t *c, ws_redis_t *r, const char *why)
{
    (void)c;
    (void)why;
    ws_backplane_t *bp = r->owner;
    bp->ctl_asked = false;
    unsigned n = bp->conf->nseeds + bp->nlinks;
    for (unsigned tries = 0; tries < n; tries++) {
        unsigned k = ++bp->ctl_next % n;
        if (k < bp->conf->nseeds) {
            bp->ctl_target = bp->conf->seed[k];
            return;
        }
        if (bp->link[k - bp->conf->nseeds]->open) {
            bp->ctl_target = bp->link[k - bp->conf->nseeds]->target;
            return;
        }
    }
}

static const ws_redis_ops_t ctl_ops = {.up = ctl_up, .reply = ctl_reply, .down = ctl_down};

static void on_refresh(void *ctx, ws_timer_t *t)
{
    ws_worker_t *c = ctx;
    ws_backplane_t *bp = ws_container_of(t, ws_backplane_t, refresh);
    if (bp->stopped)
        return;
    ask(bp);
    bool soon = !ws__bp_links_all_up(bp);
    ws_timer_add(&c->wheel, &bp->refresh, c->now_ms + (soon ? REFRESH_SOON_MS : REFRESH_MS));
}

/* ---- start and stop -------------------------------------------------------------------- */

static void on_cqe(ws_worker_t *c, void *owner, const ws_cqe_t *e)
{
    (void)c;
    ws_backplane_t *bp = owner;
    uint32_t id = ws_redis_cqe_id(ws_ud_idx(e->ud));
    if (id == 0) {
        if (bp->conf->cluster)
            ws_redis_cqe(&bp->ctl, e);
        return;
    }
    unsigned i = (id - 1) / 2;
    if (i < bp->nlinks)
        ws_redis_cqe(id % 2 ? &bp->link[i]->pub : &bp->link[i]->sub, e);
}

int ws__bp_links_start(ws_backplane_t *bp, const bp_link_ops_t *ops)
{
    bp->lops = ops;
    int kind = ws_worker_handler_add(bp->c, on_cqe, bp, "backplane");
    if (kind < 0)
        return kind;
    bp->kind = (unsigned)kind;
    if (!bp->conf->cluster)
        return link_new(bp, &bp->conf->seed[0]) ? 0 : -ENOMEM;
    bp->slot_link = malloc(WS_CLUSTER_SLOTS * sizeof(*bp->slot_link));
    bp->map = malloc(sizeof(*bp->map));
    if (!bp->slot_link || !bp->map)
        return -ENOMEM;
    memset(bp->slot_link, 0xff, WS_CLUSTER_SLOTS * sizeof(*bp->slot_link));
    bp->ctl_target = bp->conf->seed[0];
    ws_redis_init(&bp->ctl, bp->c, &bp->ctl_target, &ctl_ops, bp, "topology", bp->kind, 0);
    ws_timer_init(&bp->refresh, on_refresh);
    ws_timer_add(&bp->c->wheel, &bp->refresh, bp->c->now_ms + REFRESH_SOON_MS);
    return 0;
}

void ws__bp_links_stop(ws_backplane_t *bp)
{
    if (bp->ctl.c) { /* started */
        ws_timer_del(&bp->c->wheel, &bp->refresh);
        ws_redis_close(&bp->ctl);
    }
    for (unsigned i = 0; i < bp->nlinks; i++) {
        ws_redis_close(&bp->link[i]->pub);
        ws_redis_close(&bp->link[i]->sub);
    }
}

void ws__bp_links_free(ws_backplane_t *bp)
{
    if (bp->conf->cluster)
        ws_redis_free(&bp->ctl);
    for (unsigned i = 0; i < bp->nlinks; i++) {
        ws_redis_free(&bp->link[i]->pub);
        ws_redis_free(&bp->link[i]->sub);
        ws__bp_ring_free(&bp->link[i]->subq);
        ws__bp_ring_free(&bp->link[i]->flight);
        free(bp->link[i]);
    }
    free(bp->link);
    free(bp->slot_link);
    free(bp->map);
}
