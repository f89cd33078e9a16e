/* The TLS transport under a connection (wss): the hooks net/conn.c calls for connections
 * accepted on a TLS listener (conn->tls != NULL). Userspace TLS runs through tls/tls.c on
 * the same ring as plain connections: ciphertext from the provided-buffer recv is fed to the
 * session and its plaintext goes to the same HTTP/WebSocket input; queued frames are
 * encrypted when the socket has no send in flight and the ciphertext leaves in one send.
 * With kernel TLS (tls/ktls.c) the session is handed to the kernel after the handshake and
 * the connection goes back to the plain send path. Built only with WITH_TLS; without it
 * the hooks below are never reached (no connection has conn->tls) and compile to nothing. */
#ifndef URINGWS_NET_CONN_TLS_H
#define URINGWS_NET_CONN_TLS_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compat.h"
#include "metrics.h"

struct ws_worker;
struct ws_conn;
struct ws_server;

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

#ifdef WS_WITH_TLS

/* Server start: creates the TLS context from the configuration and decides the kTLS policy
 * (probe, log line). Returns 0, -ENOKEY (certificate or key unusable; one error line
 * logged), -EOPNOTSUPP (kTLS required but unavailable), -ENOMEM. */
int ws_conn_tls_server_init(struct ws_server *srv);
void ws_conn_tls_server_free(struct ws_server *srv);
/* The server-wide TLS facts /metrics shows (kTLS mode and probe, error category names). */
void ws_conn_tls_metrics_info(const struct ws_server *srv, ws_metrics_tls_t *out);

/* A new TLS connection: allocates its session; up (static, not copied) is how it reaches
 * the connection. 0 or -ENOMEM. */
int ws_conn_tls_attach(struct ws_worker *c, struct ws_conn *conn, const ws_conn_up_t *up);
/* Frees the session (no operation of the connection may be in flight). */
void ws_conn_tls_free(struct ws_worker *c, struct ws_conn *conn);

/* n bytes received (ciphertext, or plaintext when RX is in the kernel). */
void ws_conn_tls_input(struct ws_worker *c, struct ws_conn *conn, uint8_t *buf, size_t n);
/* The recv ended (no IORING_CQE_F_MORE) with res. Returns true when this module takes over
 * (the recv was stopped for the kTLS hand-off: do not re-arm, do not tear down). Counts a
 * truncated stream on EOF and kernel TLS receive errors. */
bool ws_conn_tls_recv_ended(struct ws_worker *c, struct ws_conn *conn, int res);
/* The send path, called with no send in flight. Returns true when it submitted (or must
 * wait); false hands the round to the plain path (kernel TX: frames go out as plaintext;
 * userspace: nothing is queued any more, so the caller may finish the connection). */
bool ws_conn_tls_send(struct ws_worker *c, struct ws_conn *conn);
/* The send this module submitted completed with `sent` bytes. */
void ws_conn_tls_sent(struct ws_worker *c, struct ws_conn *conn, size_t sent);
/* True when RX belongs to the kernel: arm with ws_conn_tls_prep_recvmsg instead of recv. */
bool ws_conn_tls_rx_in_kernel(const struct ws_conn *conn);
void ws_conn_tls_prep_recvmsg(struct ws_worker *c, struct ws_conn *conn, struct io_uring_sqe *sqe);
/* The handshake deadline passed. Returns true when it was the TLS handshake that did not
 * finish (counted and logged here), false when TLS is up and the HTTP head is late. */
bool ws_conn_tls_timed_out(struct ws_worker *c, struct ws_conn *conn);

#else

static inline int ws_conn_tls_server_init(struct ws_server *srv)
{
    (void)srv;
    return 0;
}
static inline void ws_conn_tls_server_free(struct ws_server *srv)
{
    (void)srv;
}
static inline void ws_conn_tls_metrics_info(const struct ws_server *srv, ws_metrics_tls_t *out)
{
    (void)srv;
    (void)out;
}
static inline int ws_conn_tls_attach(struct ws_worker *c, struct ws_conn *conn,
                                     const ws_conn_up_t *up)
{
    (void)c;
    (void)conn;
    (void)up;
    return -EOPNOTSUPP; /* no TLS listener exists in this build */
}
static inline void ws_conn_tls_free(struct ws_worker *c, struct ws_conn *conn)
{
    (void)c;
    (void)conn;
}
static inline void ws_conn_tls_input(struct ws_worker *c, struct ws_conn *conn, uint8_t *buf,
                                     size_t n)
{
    (void)c;
    (void)conn;
    (void)buf;
    (void)n;
}
static inline bool ws_conn_tls_recv_ended(struct ws_worker *c, struct ws_conn *conn, int res)
{
    (void)c;
    (void)conn;
    (void)res;
    return false;
}
static inline bool ws_conn_tls_send(struct ws_worker *c, struct ws_conn *conn)
{
    (void)c;
    (void)conn;
    return false;
}
static inline void ws_conn_tls_sent(struct ws_worker *c, struct ws_conn *conn, size_t sent)
{
    (void)c;
    (void)conn;
    (void)sent;
}
static inline bool ws_conn_tls_rx_in_kernel(const struct ws_conn *conn)
{
    (void)conn;
    return false;
}
static inline void ws_conn_tls_prep_recvmsg(struct ws_worker *c, struct ws_conn *conn,
                                            struct io_uring_sqe *sqe)
{
    (void)c;
    (void)conn;
    (void)sqe;
}
static inline bool ws_conn_tls_timed_out(struct ws_worker *c, struct ws_conn *conn)
{
    (void)c;
    (void)conn;
    return false;
}

#endif

#endif
