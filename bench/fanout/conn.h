/* One client WebSocket connection of the fan-out load generator: non-blocking connect from a
 * chosen loopback source address, optional TLS (BoringSSL through tls.c, verification off),
 * the HTTP upgrade, a streaming frame reader that keeps only the first WS_FO_META payload
 * bytes of each data frame, and masked frame writes into a per-connection output buffer. It
 * owns no schedule or statistics: it reports to the loop's callbacks and never allocates per
 * message (the output buffer grows and is reused). */
#ifndef URINGWS_BENCH_FANOUT_CONN_H
#define URINGWS_BENCH_FANOUT_CONN_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "fanout.h"
#include "uringws/frame.h"

enum ws_fo_conn_state {
    WS_FO_C_IDLE,       /* not started */
    WS_FO_C_CONNECTING, /* TCP connect in flight */
    WS_FO_C_TLS,        /* TLS handshake */
    WS_FO_C_UPGRADE,    /* HTTP request sent, waiting for 101 */
    WS_FO_C_OPEN,
    WS_FO_C_DEAD,
};

/* Why a connection ended, for the error counters. */
enum ws_fo_fail {
    WS_FO_FAIL_CONNECT,
    WS_FO_FAIL_HANDSHAKE, /* TLS or HTTP upgrade */
    WS_FO_FAIL_CLOSED,    /* after the upgrade: close frame, EOF, reset or protocol error */
};

typedef struct ws_fo_conn {
    int fd;
    uint8_t state;   /* enum ws_fo_conn_state */
    bool pollout;    /* EPOLLOUT is in the interest set */
    uint8_t hdr_len; /* bytes of a split frame header held in hdr */
    bool in_payload; /* a header was parsed, its payload is being read */
    uint8_t opcode;  /* of the frame being read */
    uint8_t want;    /* payload bytes to keep: WS_FO_META for data, all of a control frame */
    uint8_t got;     /* of those, kept so far in keep */
    uint32_t index;  /* in the worker's connection array */
    uint32_t room;
    int32_t pub;     /* global publisher id, or -1 for a pure subscriber */
    uint64_t remain; /* payload bytes of the current frame still to come */
    SSL *ssl;
    char *head; /* HTTP response head while upgrading, else NULL */
    uint16_t head_len;
    char key[25]; /* Sec-WebSocket-Key sent, base64 of 16 random bytes */
    uint8_t hdr[14];
    uint8_t keep[WS_CONTROL_MAX];
    uint8_t *out; /* unsent bytes are out[out_off..out_len) */
    uint32_t out_off, out_len, out_cap;
    int64_t started_ns; /* connect() time, for the handshake deadline */
    /* Publisher schedule (owned by the worker): message k is due at t0 + offset + k/rate. */
    uint64_t seq;
    int64_t next_ns;
} ws_fo_conn_t;

typedef struct ws_fo_loop ws_fo_loop_t;
struct ws_fo_loop {
    int epfd;
    uint8_t *rbuf;      /* WS_FO_READ_CHUNK bytes shared by every connection of the loop */
    uint8_t *pbuf;      /* wss: WS_FO_READ_CHUNK bytes for decrypted input */
    const uint8_t *cur; /* wss: ciphertext not yet taken by BoringSSL, cur[0..cur_len) */
    size_t cur_len;
    SSL_CTX *ssl_ctx;
    const ws_fo_config_t *cfg;
    void (*on_open)(ws_fo_loop_t *l, ws_fo_conn_t *c);
    void (*on_message)(ws_fo_loop_t *l, ws_fo_conn_t *c, const uint8_t meta[WS_FO_META],
                       int64_t now);
    /* Called once; the connection is already closed and DEAD. */
    void (*on_fail)(ws_fo_loop_t *l, ws_fo_conn_t *c, enum ws_fo_fail why, unsigned code);
};

/* Seeds this process's mask generator from getrandom(); call once per process. */
void ws_fo_rand_seed(void);

/* Starts a non-blocking connect from `src` (NULL: any) to the configured target. Returns 0,
 * or -errno after reporting WS_FO_FAIL_CONNECT through on_fail. */
int ws_fo_conn_start(ws_fo_loop_t *l, ws_fo_conn_t *c, const struct sockaddr_storage *src);
/* Handles epoll events for the connection. */
void ws_fo_conn_event(ws_fo_loop_t *l, ws_fo_conn_t *c, uint32_t events);
/* Queues one masked binary message of `size` bytes starting with `meta`. Returns 0, or
 * -ENOBUFS when the unsent backlog is past WS_FO_MAX_BACKLOG (nothing queued). */
int ws_fo_conn_send(ws_fo_loop_t *l, ws_fo_conn_t *c, const uint8_t meta[WS_FO_META],
                    uint32_t size);
/* Writes what is queued; arms EPOLLOUT when the socket is full. */
void ws_fo_conn_flush(ws_fo_loop_t *l, ws_fo_conn_t *c);
/* Fails the connection as `why` (closes it and calls on_fail). */
void ws_fo_conn_fail(ws_fo_loop_t *l, ws_fo_conn_t *c, enum ws_fo_fail why, unsigned code);
/* Closes without reporting (end of run) and frees its buffers. */
void ws_fo_conn_close(ws_fo_conn_t *c);
/* Closes with a reset at the end of the run, leaving no TIME_WAIT behind. */
void ws_fo_conn_abort(ws_fo_conn_t *c);
/* Unsent bytes. */
static inline uint32_t ws_fo_conn_backlog(const ws_fo_conn_t *c)
{
    return c->out_len - c->out_off;
}

#endif
