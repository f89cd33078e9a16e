/* The TLS transport under a connection (wss, net/conn_tls.c): the ws_transport_ops_t of
 * connections accepted on a TLS listener. Userspace TLS runs through tls/tls.c on
 * the same ring as plain connections: ciphertext from the provided-buffer recv is fed to the
 * session and its plaintext goes to the same HTTP/WebSocket input; queued frames are
 * encrypted when the socket has no send in flight and the ciphertext leaves in one send.
 * With kernel TLS (tls/ktls.c) the session is handed to the kernel after the handshake and
 * the connection goes back to the plain send path. Built only with WITH_TLS; without it no
 * connection is ever attached. The server-level part (context, kTLS policy) is
 * net/tls_server.c. */
#ifndef URINGWS_NET_CONN_TLS_H
#define URINGWS_NET_CONN_TLS_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compat.h"
#include "conn.h"

struct ws_worker;
struct ws_conn;

/* What the TLS transport calls in the connection above it. The connection (net/conn.c)
 * hands its own at attach, so the transport never calls up by name: calls between the two
 * go one way (scripts/layers.sh). */
typedef struct ws_conn_up {
    /* plaintext received: the HTTP head or WebSocket frames (may be modified in place) */
    void (*input)(struct ws_worker *c, struct ws_conn *conn, uint8_t *p, size_t n);
    /* arm the recv again (after the kTLS hand-off stopped it) */
    void (*arm_recv)(struct ws_worker *c, struct ws_conn *conn);
    /* cancel the operation of user_data kind `kind` (WS_UD_RECV) */
    void (*cancel)(struct ws_worker *c, struct ws_conn *conn, unsigned kind);
    /* finish after what is queued (the peer's close_notify) */
    void (*finish)(struct ws_worker *c, struct ws_conn *conn);
} ws_conn_up_t;

/* Encrypt more queued frames only while less than this much ciphertext is pending, so that
 * a slow reader's backlog stays in the send queue (where the slow-consumer limits see it)
 * and not in TLS output. 16 KiB lets the first response ride with the session tickets. */
#define WS_TLS_OUT_LOW (16u * 1024u)

#ifdef WS_WITH_TLS

/* The transport's hooks (ws_transport_ops_t, net/conn.h); ws_conn_tls_attach sets conn->tp. */
extern const ws_transport_ops_t ws_conn_tls_transport;

/* A new TLS connection: allocates its session and sets conn->tp; up (static, not copied) is
 * how it reaches the connection. 0 or -ENOMEM. */
int ws_conn_tls_attach(struct ws_worker *c, struct ws_conn *conn, const ws_conn_up_t *up);

#else

static inline int ws_conn_tls_attach(struct ws_worker *c, struct ws_conn *conn,
                                     const ws_conn_up_t *up)
{
    (void)c;
    (void)conn;
    (void)up;
    return -EOPNOTSUPP; /* no TLS listener exists in this build */
}

#endif

#endif
