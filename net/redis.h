/* One outbound Redis connection on a worker's ring (net/redis.c): connect, send and recv are
 * io_uring operations tagged with its owner's handler kind and its number there (the owner
 * routes the completions back with ws_redis_cqe, so one kind serves any number), commands
 * are formatted and replies parsed by hiredis (redisFormatCommandArgv, redisReader), nothing
 * blocks. A lost connection is reported to the owner and retried with backoff; the owner
 * re-issues what it needs (AUTH and SELECT are the connection's own). */
#ifndef URINGWS_NET_REDIS_H
#define URINGWS_NET_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "timer.h"

struct ws_worker;
struct ws_redis;
struct redisReply;
struct redisReader;

/* Where and how to connect (parsed from --backplane, net/backplane.c). */
typedef struct ws_redis_target {
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char user[128], pass[256]; /* empty: no AUTH */
    int db;                    /* SELECT when > 0 */
    char where[160];           /* host:port, for logs (never the password) */
} ws_redis_target_t;

typedef struct ws_redis_ops {
    /* connected, AUTH and SELECT answered: commands may be sent */
    void (*up)(struct ws_worker *c, struct ws_redis *r);
    /* a reply (or a pub/sub message) in order; the callee must not keep it */
    void (*reply)(struct ws_worker *c, struct ws_redis *r, struct redisReply *rep);
    /* the connection is gone (why: for the log); a reconnect is scheduled */
    void (*down)(struct ws_worker *c, struct ws_redis *r, const char *why);
} ws_redis_ops_t;

typedef struct ws_redis {
    struct ws_worker *c;
    const ws_redis_ops_t *ops;
    void *owner;
    const ws_redis_target_t *target;
    const char *name; /* "publish" or "subscribe", for logs */
    int fd;
    unsigned kind; /* the owner's handler kind */
    uint32_t id;   /* the owner's number for this connection (its completions carry it) */
    uint32_t gen;  /* bumped on every (re)connect: older completions are stale */
    bool up;
    bool closing;
    bool send_armed, recv_armed;
    unsigned handshake; /* replies to AUTH/SELECT still to come */
    struct redisReader *reader;
    /* Formatted commands: `out` collects them while `snd` is being sent (its bytes from
     * snd_off on; the kernel reads it until the send completes, so it never moves then). */
    char *out, *snd;
    size_t out_len, out_cap, snd_len, snd_off, snd_cap;
    char rbuf[16384];
    ws_timer_t timer;
    uint32_t backoff_ms;
    uint64_t reconnects;
} ws_redis_t;

#define WS_REDIS_ID_MAX (UINT32_MAX / 4) /* ids leave room for the operation */

/* Sets r up on worker c and starts connecting; its completions carry (kind, id) and the
 * owner of kind hands them to ws_redis_cqe. */
void ws_redis_init(ws_redis_t *r, struct ws_worker *c, const ws_redis_target_t *t,
                   const ws_redis_ops_t *ops, void *owner, const char *name, unsigned kind,
                   uint32_t id);
/* The connection number a completion of kind names. */
static inline uint32_t ws_redis_cqe_id(uint32_t idx)
{
    return idx / 4;
}
struct ws_cqe;
void ws_redis_cqe(ws_redis_t *r, const struct ws_cqe *e);
/* Queues one command (argv[0..argc), binary-safe); sent in order once up. 0 or -ENOMEM;
 * -ENOTCONN while the connection is down (nothing queued). */
int ws_redis_command(ws_redis_t *r, int argc, const char **argv, const size_t *lens);
/* Ends the connection as if it failed (down is reported, a reconnect scheduled). */
void ws_redis_reset(ws_redis_t *r, const char *why);
/* Stops (server stop, or a node that left the cluster): the socket is shut down; nothing is
 * reported any more until ws_redis_open. */
void ws_redis_close(ws_redis_t *r);
/* Connects again after ws_redis_close (to r->target, which may have changed). */
void ws_redis_open(ws_redis_t *r);
/* Frees what close left (after the ring is gone). */
void ws_redis_free(ws_redis_t *r);

#endif
