/* The TLS transport of a connection (wss), see conn_tls.h. The rules it keeps:
 *  - every received byte is fed to the session before the recv completion returns, so the
 *    provided buffer goes back to the ring at once; plaintext goes up to the connection's
 *    input, the same code as plain connections;
 *  - frames stay plaintext in the send queue until the socket has no send in flight; then
 *    everything queued (up to send_max_bytes) is encrypted with one ws_tls_writev (small
 *    frames share records) and the pending ciphertext leaves in ONE send. A broadcast block
 *    is still built once; each TLS recipient encrypts its own copy, which is inherent to
 *    userspace TLS;
 *  - a TLS failure is counted per category, logged at -v, and ends the connection after the
 *    alert BoringSSL queued (if any): nothing unencrypted is ever sent;
 *  - the kTLS hand-off happens once, after the handshake, when nothing is in flight either
 *    way: the recv is cancelled first so that every byte received so far went through
 *    BoringSSL (ws_ktls_offload's precondition), then re-armed as recvmsg (RX in the kernel)
 *    or recv (RX still here). With TX in the kernel the plain send path sends frames by
 *    reference. That part never ran on the build machine (no kTLS in its kernel).
 * Nothing here parses HTTP or WebSocket bytes. */
#include "conn_tls.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "conn.h"
#include "conn_send.h"
#include "log.h"
#include "worker.h"
#include "server_internal.h"
#include "uringws/tls.h"
#ifdef WS_WITH_KTLS
#include "uringws/ktls.h"
#endif

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

/* TLS record content types, and the handshake message types kernel_input tells apart. */
enum {
    WS_CT_ALERT = 21,
    WS_CT_HANDSHAKE = 22,
    WS_CT_APPLICATION_DATA = 23,
    WS_HS_CLIENT_HELLO = 1,
    WS_HS_KEY_UPDATE = 24,
};

/* Flags owned by ws_conn_tls. */
enum {
    WS_CT_F_UP = 1u << 0,             /* handshake done (and counted) */
    WS_CT_F_FAILED = 1u << 1,         /* session failed: input dropped, only the alert goes out */
    WS_CT_F_PEER_CLOSED = 1u << 2,    /* close_notify or EOF from the peer: input ignored */
    WS_CT_F_CLOSE_QUEUED = 1u << 3,   /* our close_notify is queued (or sent, kernel TX) */
    WS_CT_F_KTLS_DUE = 1u << 4,       /* the kTLS hand-off is still to be done */
    WS_CT_F_KTLS_STOP = 1u << 5,      /* the recv was cancelled for the hand-off */
    WS_CT_F_CLOSE_INFLIGHT = 1u << 6, /* kernel TX: the close_notify sendmsg is in flight */
    WS_CT_F_OWN_TRIED = 1u << 7,      /* ws_tls_own_tx() was tried (it sticks either way) */
};

/* Per TLS connection; owned by the connection (freed in its finalize, when nothing of it
 * is in flight: a send may point into the session's pending output until then). */
typedef struct ws_conn_tls {
    ws_tls_conn_t *s;
    const ws_conn_up_t *up; /* the connection above */
    uint32_t flags;
    unsigned kernel; /* WS_TLS_TX / WS_TLS_RX now handled by kernel TLS */
    size_t inflight; /* ciphertext bytes of the send in flight (userspace TX) */
    size_t acct;     /* pending ciphertext counted in the core's queue_bytes gauge */
    /* RX in the kernel: recvmsg header and the control buffer for TLS_GET_RECORD_TYPE,
     * written by the kernel when the recvmsg completes. */
    struct msghdr rmsg;
    struct iovec riov;
    union {
        char buf[CMSG_SPACE(sizeof(uint8_t))];
        struct cmsghdr align;
    } rctl;
} ws_conn_tls_t;

/* ---- connection helpers ------------------------------------------------------------ */

/* Keeps the queue_bytes gauge equal to queued plaintext plus pending ciphertext. */
static void account(ws_worker_t *c, ws_conn_tls_t *t)
{
    size_t now = ws_tls_out_bytes(t->s);
    if (now > t->acct)
        ws_metric_add(&c->m->queue_bytes, now - t->acct);
    else if (now < t->acct)
        ws_metric_sub(&c->m->queue_bytes, t->acct - now);
    t->acct = now;
}

/* Releases queued frames that can no longer be sent. With TX in userspace none of them is
 * in flight (a send carries ciphertext, never the queue's own bytes), so all go, including
 * a partly encrypted head; with TX in the kernel the plain path's rules apply. */
static void drop_queue(ws_worker_t *c, ws_conn_t *conn)
{
    ws_conn_send_drop(c, conn, !(conn->tls->kernel & WS_TLS_TX));
}

/* The session is over: count and log why, drop what was never encrypted, and end the
 * connection after the pending output (the fatal alert, when BoringSSL queued one). */
static void fail(ws_worker_t *c, ws_conn_t *conn, ws_tls_err_t e, const char *reason)
{
    ws_conn_tls_t *t = conn->tls;
    if (t->flags & WS_CT_F_FAILED)
        return;
    t->flags |= WS_CT_F_FAILED;
    t->flags &= ~(unsigned)WS_CT_F_KTLS_DUE;
    if ((unsigned)e >= WS_TLS_ERR__COUNT || e == WS_TLS_ERR_NONE)
        e = WS_TLS_ERR_INTERNAL;
    ws_metric_inc(&c->m->tls_errors[e]);
    ws_log_verbose("conn %u: TLS error (%s)%s: %s", conn->idx, ws_tls_err_name(e),
                   t->flags & WS_CT_F_UP ? "" : " in the handshake", reason ? reason : "");
    if (conn->ep)
        conn->ep->close(c, conn);
    drop_queue(c, conn);
    conn->tls->up->finish(c, conn);
}

static void session_failed(ws_worker_t *c, ws_conn_t *conn)
{
    const char *why = NULL;
    ws_tls_err_t e = ws_tls_error(conn->tls->s, &why);
    fail(c, conn, e, why);
}

/* close_notify (or, with RX in the kernel, its alert record) arrived: finish after what is
 * queued (a WebSocket close reply may be among it), with our own close_notify last. */
static void peer_closed(ws_worker_t *c, ws_conn_t *conn)
{
    conn->tls->flags |= WS_CT_F_PEER_CLOSED;
    ws_log_debug("conn %u: peer sent close_notify", conn->idx);
    if (conn->ep)
        conn->ep->close(c, conn);
    conn->tls->up->finish(c, conn);
}

static enum ws_tls_cipher_family cipher_family(const char *name)
{
    if (strstr(name, "AES_128_GCM"))
        return WS_TLS_AES128GCM;
    if (strstr(name, "AES_256_GCM"))
        return WS_TLS_AES256GCM;
    if (strstr(name, "CHACHA20"))
        return WS_TLS_CHACHA20;
    return WS_TLS_CIPHER_OTHER;
}

static void established(ws_worker_t *c, ws_conn_t *conn)
{
    ws_conn_tls_t *t = conn->tls;
    t->flags |= WS_CT_F_UP;
    const char *cipher = ws_tls_cipher_name(t->s);
    unsigned v = ws_tls_version(t->s) == WS_TLS_V1_3 ? 1 : 0;
    ws_metric_inc(&c->m->tls_handshakes[v][cipher_family(cipher)]);
    ws_slice_t alpn = ws_tls_alpn(t->s);
    ws_log_debug("conn %u: TLS established: %s %s, ALPN %.*s", conn->idx, ws_tls_version_name(t->s),
                 cipher, alpn.len ? (int)alpn.len : 4, alpn.len ? (const char *)alpn.base : "none");
    if (c->srv->ktls_active)
        t->flags |= WS_CT_F_KTLS_DUE;
}

/* ---- kTLS hand-off ----------------------------------------------------------------- */

#ifdef WS_WITH_KTLS

static atomic_flag refusal_logged = ATOMIC_FLAG_INIT;

/* Called by the send path with no send in flight. Returns true while it waits for the
 * recv to stop (the caller must not send meanwhile: the queued frames go out through
 * whichever path the hand-off leaves). */
static bool ktls_step(ws_worker_t *c, ws_conn_t *conn)
{
    ws_conn_tls_t *t = conn->tls;
    if (ws_tls_out_bytes(t->s) != 0)
        return false; /* what BoringSSL wrote (tickets) must be on the wire first */
    if ((t->flags & (WS_CT_F_FAILED | WS_CT_F_PEER_CLOSED)) ||
        (conn->flags & WS_CONN_F_FLUSH_CLOSE) ||
        (conn->state != WS_CONN_HTTP && conn->state != WS_CONN_OPEN)) {
        /* Closing anyway: not worth it. Put back a recv the hand-off stopped (one still
         * being cancelled is re-armed by its last completion). */
        t->flags &= ~(unsigned)WS_CT_F_KTLS_DUE;
        if (!(conn->flags & WS_CONN_F_RECV)) {
            t->flags &= ~(unsigned)WS_CT_F_KTLS_STOP;
            conn->tls->up->arm_recv(c, conn);
        }
        return false;
    }
    if (conn->flags & WS_CONN_F_RECV) {
        /* Bytes may already sit in ring buffers behind CQEs not yet seen; they are
         * ciphertext for BoringSSL. Stop the recv and wait for its last completion. */
        if (!(t->flags & WS_CT_F_KTLS_STOP)) {
            t->flags |= WS_CT_F_KTLS_STOP;
            conn->tls->up->cancel(c, conn, WS_UD_RECV);
        }
        return true;
    }
    t->flags &= ~(unsigned)(WS_CT_F_KTLS_DUE | WS_CT_F_KTLS_STOP);
    int r = ws_ktls_offload(t->s, conn->fd, WS_TLS_TX | WS_TLS_RX);
    if (r > 0) {
        t->kernel = (unsigned)r;
        ws_metric_sub(&c->m->conns_by_transport[conn->transport], 1);
        conn->transport = WS_TRANSPORT_KTLS;
        ws_metric_inc(&c->m->conns_by_transport[conn->transport]);
        ws_metric_inc(&c->m->ktls_offloads[t->kernel & 3u]);
        ws_log_debug("conn %u: kTLS: %s handed to the kernel", conn->idx,
                     t->kernel == (WS_TLS_TX | WS_TLS_RX) ? "TX and RX" : "TX");
    } else {
        ws_metric_inc(&c->m->ktls_refused);
        if (!atomic_flag_test_and_set(&refusal_logged))
            ws_log_info("kTLS hand-off refused (%s, %s): such connections stay in userspace TLS "
                        "(logged once)",
                        strerror(-r), ws_tls_cipher_name(t->s));
        else
            ws_log_debug("conn %u: kTLS hand-off refused: %s", conn->idx, strerror(-r));
    }
    conn->tls->up->arm_recv(c, conn);
    return false;
}

/* The kernel-TX close_notify: an alert record (type 21) through the TLS_SET_RECORD_TYPE
 * control message. The message is the same for every connection and never written after
 * its initialisation, so all cores share one. */
static uint8_t close_alert[2] = {1 /* warning */, 0 /* close_notify */};
static struct iovec close_iov;
static union {
    char buf[CMSG_SPACE(sizeof(uint8_t))];
    struct cmsghdr align;
} close_ctl;
static struct msghdr close_msg;
static pthread_once_t close_once = PTHREAD_ONCE_INIT;

static void close_msg_init(void)
{
    close_iov.iov_base = close_alert;
    close_iov.iov_len = sizeof(close_alert);
    close_msg.msg_iov = &close_iov;
    close_msg.msg_iovlen = 1;
    close_msg.msg_control = close_ctl.buf;
    close_msg.msg_controllen = sizeof(close_ctl.buf);
    struct cmsghdr *cm = CMSG_FIRSTHDR(&close_msg);
    cm->cmsg_level = SOL_TLS;
    cm->cmsg_type = TLS_SET_RECORD_TYPE;
    cm->cmsg_len = CMSG_LEN(sizeof(uint8_t));
    *CMSG_DATA(cm) = WS_CT_ALERT;
}

static void send_kernel_close_notify(ws_worker_t *c, ws_conn_t *conn)
{
    pthread_once(&close_once, close_msg_init);
    struct io_uring_sqe *sqe = ws_worker_sqe(c);
    io_uring_prep_sendmsg(sqe, conn->fd, &close_msg, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, ws_ud_make(WS_UD_SEND, conn->idx, conn->gen));
    conn->flags |= WS_CONN_F_SEND;
    conn->tls->flags |= WS_CT_F_CLOSE_QUEUED | WS_CT_F_CLOSE_INFLIGHT;
    ws_metric_inc(&c->m->sends);
}

/* RX in the kernel: what recvmsg returned is plaintext of one record type. */
static void kernel_input(ws_worker_t *c, ws_conn_t *conn, uint8_t *buf, size_t n)
{
    ws_conn_tls_t *t = conn->tls;
    int type = ws_ktls_record_type(&t->rmsg);
    if (type == WS_CT_APPLICATION_DATA) {
        conn->tls->up->input(c, conn, buf, n);
        return;
    }
    if (type == WS_CT_ALERT && n >= 2 && buf[1] == 0) {
        peer_closed(c, conn);
        return;
    }
    /* A KeyUpdate (or any other post-handshake message) cannot be followed on every kernel,
     * and a fatal alert ends the session anyway. A TLS 1.2 ClientHello is a renegotiation,
     * refused as in userspace (and counted the same). */
    if (type == WS_CT_HANDSHAKE && n >= 1 && buf[0] == WS_HS_CLIENT_HELLO) {
        fail(c, conn, WS_TLS_ERR_RENEGOTIATION,
             "ClientHello (renegotiation) with RX in kernel TLS");
        return;
    }
    fail(c, conn, type == WS_CT_ALERT ? WS_TLS_ERR_PEER_ALERT : WS_TLS_ERR_PROTOCOL,
         type == WS_CT_HANDSHAKE && n >= 1 && buf[0] == WS_HS_KEY_UPDATE
             ? "KeyUpdate with RX in kernel TLS"
         : type == WS_CT_HANDSHAKE ? "post-handshake message with RX in kernel TLS"
         : type == WS_CT_ALERT     ? "fatal alert"
                                   : "record of unexpected type from kernel TLS");
}

/* With RX in the kernel the recv is a recvmsg: kernel TLS needs the record type. */
static bool prep_recv(ws_worker_t *c, ws_conn_t *conn, struct io_uring_sqe *sqe)
{
    ws_conn_tls_t *t = conn->tls;
    if (!(t->kernel & WS_TLS_RX))
        return false;
    memset(&t->rctl, 0, sizeof(t->rctl));
    /* With buffer select the kernel reads into a provided buffer; the one iovec only gives
     * the length. */
    t->riov.iov_base = NULL;
    t->riov.iov_len = c->bufs.buf_size;
    memset(&t->rmsg, 0, sizeof(t->rmsg));
    t->rmsg.msg_iov = &t->riov;
    t->rmsg.msg_iovlen = 1;
    t->rmsg.msg_control = t->rctl.buf;
    t->rmsg.msg_controllen = sizeof(t->rctl.buf);
    io_uring_prep_recvmsg(sqe, conn->fd, &t->rmsg, 0);
    return true;
}

#else /* !WS_WITH_KTLS: no session is ever handed off */

static bool ktls_step(ws_worker_t *c, ws_conn_t *conn)
{
    (void)c;
    conn->tls->flags &= ~(unsigned)(WS_CT_F_KTLS_DUE | WS_CT_F_KTLS_STOP);
    return false;
}

static void send_kernel_close_notify(ws_worker_t *c, ws_conn_t *conn)
{
    (void)c;
    (void)conn;
}

static void kernel_input(ws_worker_t *c, ws_conn_t *conn, uint8_t *buf, size_t n)
{
    (void)c;
    (void)conn;
    (void)buf;
    (void)n;
}

static bool prep_recv(ws_worker_t *c, ws_conn_t *conn, struct io_uring_sqe *sqe)
{
    (void)c;
    (void)conn;
    (void)sqe;
    return false;
}

#endif

/* ---- connection hooks -------------------------------------------------------------- */

int ws_conn_tls_attach(ws_worker_t *c, ws_conn_t *conn, const ws_conn_up_t *up)
{
    ws_conn_tls_t *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->up = up;
    t->s = ws_tls_conn_new(c->srv->tls_ctx);
    if (!t->s) {
        free(t);
        return -ENOMEM;
    }
    conn->tls = t;
    conn->tp = &ws_conn_tls_transport;
    return 0;
}

static void tls_conn_free(ws_worker_t *c, ws_conn_t *conn)
{
    ws_conn_tls_t *t = conn->tls;
    if (t->acct)
        ws_metric_sub(&c->m->queue_bytes, t->acct);
    ws_tls_conn_free(t->s);
    free(t);
    conn->tls = NULL;
}

typedef struct plain_ctx {
    ws_worker_t *c;
    ws_conn_t *conn;
} plain_ctx_t;

static int on_plain(void *arg, uint8_t *p, size_t n)
{
    plain_ctx_t *x = arg;
    x->conn->tls->up->input(x->c, x->conn, p, n);
    return x->conn->state == WS_CONN_DEAD; /* torn down: the rest is of no use */
}

static void tls_input(ws_worker_t *c, ws_conn_t *conn, uint8_t *buf, size_t n)
{
    ws_conn_tls_t *t = conn->tls;
    /* After a failure, the peer's close_notify or our SHUT_WR, input is discarded. */
    if ((t->flags & (WS_CT_F_FAILED | WS_CT_F_PEER_CLOSED)) || conn->state == WS_CONN_LINGER ||
        conn->state == WS_CONN_DEAD)
        return;
    if (t->kernel & WS_TLS_RX) {
        kernel_input(c, conn, buf, n);
        return;
    }
    plain_ctx_t x = {c, conn};
    int r = ws_tls_feed(t->s, buf, n, on_plain, &x);
    if (!(t->flags & WS_CT_F_UP) && ws_tls_handshake_done(t->s))
        established(c, conn);
    if (r == -EPROTO)
        session_failed(c, conn);
    else if (r == 1)
        peer_closed(c, conn);
    /* -ECANCELED: the connection was torn down from inside; nothing to do. */
    if (ws_tls_out_bytes(t->s) && conn->state != WS_CONN_DEAD)
        ws_worker_pending(c, conn, WS_CONN_F_NEED_SEND); /* handshake flight, alert, tickets */
    account(c, t);
}

static bool tls_recv_ended(ws_worker_t *c, ws_conn_t *conn, int res)
{
    ws_conn_tls_t *t = conn->tls;
    if (res == 0) {
        /* EOF. A cut record or handshake is an error worth counting; a connect-and-close
         * or a client that ends between records without close_notify is not. */
        if (!(t->kernel & WS_TLS_RX) && !(t->flags & (WS_CT_F_FAILED | WS_CT_F_PEER_CLOSED)) &&
            conn->state != WS_CONN_LINGER && ws_tls_feed_eof(t->s) < 0) {
            const char *why = NULL;
            ws_tls_err_t e = ws_tls_error(t->s, &why);
            ws_metric_inc(&c->m->tls_errors[e]);
            ws_log_verbose("conn %u: TLS error (%s): %s", conn->idx, ws_tls_err_name(e), why);
        }
        return false;
    }
    if ((t->flags & (WS_CT_F_KTLS_DUE | WS_CT_F_KTLS_STOP)) &&
        (res > 0 || res == -ECANCELED || res == -ENOBUFS)) {
        if (t->flags & WS_CT_F_KTLS_DUE) {
            ws_worker_pending(c, conn, WS_CONN_F_NEED_SEND); /* the hand-off goes on there */
        } else {
            t->flags &= ~(unsigned)WS_CT_F_KTLS_STOP; /* given up meanwhile: receive again */
            conn->tls->up->arm_recv(c, conn);
        }
        return true;
    }
    if (res < 0 && res != -ENOBUFS && (t->kernel & WS_TLS_RX) && conn->state != WS_CONN_LINGER) {
        /* Kernel TLS reports a bad record as EBADMSG, an oversize one as EMSGSIZE. */
        ws_tls_err_t e = res == -EBADMSG    ? WS_TLS_ERR_BAD_RECORD
                         : res == -EMSGSIZE ? WS_TLS_ERR_OVERSIZE
                                            : WS_TLS_ERR_PROTOCOL;
        ws_metric_inc(&c->m->tls_errors[e]);
        ws_log_verbose("conn %u: TLS error (%s): kernel TLS receive: %s", conn->idx,
                       ws_tls_err_name(e), strerror(-res));
    }
    return false;
}

static bool tls_timed_out(ws_worker_t *c, ws_conn_t *conn)
{
    if (conn->tls->flags & WS_CT_F_UP)
        return false;
    ws_metric_inc(&c->m->tls_errors[WS_TLS_ERR_HS_TIMEOUT]);
    ws_log_verbose("conn %u: TLS error (handshake_timeout): no TLS handshake within %u ms",
                   conn->idx, c->cfg->handshake_timeout_ms);
    return true;
}

/* Encrypts queued frames (at most send_max_bytes: a larger message goes a batch at a time,
 * its head entry staying partly done) and releases them: from here on the ciphertext is
 * what gets sent. iov has room for max_iov entries. Returns 0 or the ws_tls_writev error. */
static int encrypt_queue(ws_worker_t *c, ws_conn_t *conn, struct iovec *iov, unsigned max_iov)
{
    ws_conn_tls_t *t = conn->tls;
    size_t cap = c->cfg->send_max_bytes, total;
    unsigned n = ws_sendq_gather(&conn->sq, iov, max_iov, cap, &total);
    if (n && iov[0].iov_len > cap) {
        iov[0].iov_len = cap;
        n = 1;
        total = cap;
    }
#ifdef WS_WITH_KTLS
    /* With the kTLS hand-off decided (not due, or done and refused), records are sealed
     * here from now on (tls/record.c): one copy of each frame instead of SSL_write's
     * buffer. A session that cannot (a KeyUpdate came first) keeps SSL_write. */
    if (!(t->flags & (WS_CT_F_KTLS_DUE | WS_CT_F_OWN_TRIED))) {
        t->flags |= WS_CT_F_OWN_TRIED;
        int o = ws_tls_own_tx(t->s);
        if (o != 0)
            ws_log_debug("conn %u: records stay with SSL_write: %s", conn->idx, strerror(-o));
    }
#endif
    int r = ws_tls_writev(t->s, iov, (int)n);
    uint64_t before = conn->sq.bytes;
    ws_sendq_complete(&conn->sq, r == 0 ? total : 0, &c->brefs);
    ws_metric_sub(&c->m->queue_bytes, before - conn->sq.bytes);
    ws_conn_send_shrank(c, conn);
    return r;
}

/* One send of the pending ciphertext, gathered from the session's output chunks. */
static void submit(ws_worker_t *c, ws_conn_t *conn, ws_sendctx_t *s)
{
    ws_conn_tls_t *t = conn->tls;
    struct iovec single;
    struct iovec *iov = s ? s->iov : &single;
    int max = s ? (int)c->cfg->send_max_iov : 1;
    int n = ws_tls_pending_out(t->s, iov, max);
    size_t bytes = 0;
    for (int i = 0; i < n; i++)
        bytes += iov[i].iov_len;
    ws_conn_send_iov(c, conn, s, iov, (unsigned)n, false);
    t->inflight = bytes;
}

static bool tls_send(ws_worker_t *c, ws_conn_t *conn)
{
    ws_conn_tls_t *t = conn->tls;
    if ((t->flags & WS_CT_F_KTLS_DUE) && ktls_step(c, conn))
        return true;
    bool closing = (conn->flags & WS_CONN_F_FLUSH_CLOSE) && ws_sendq_empty(&conn->sq);
    if (t->kernel & WS_TLS_TX) {
        /* Frames go out as plaintext on the plain path; only close_notify is ours. */
        if (closing && !(t->flags & (WS_CT_F_CLOSE_QUEUED | WS_CT_F_FAILED))) {
            send_kernel_close_notify(c, conn);
            return true;
        }
        return false;
    }
    ws_sendctx_t *s = ws_worker_sctx_get(c);
    if (!(t->flags & WS_CT_F_FAILED) && (t->flags & WS_CT_F_UP)) {
        if (ws_tls_out_bytes(t->s) < WS_TLS_OUT_LOW && ws_sendq_has_unsent(&conn->sq)) {
            struct iovec single;
            int r = encrypt_queue(c, conn, s ? s->iov : &single, s ? c->cfg->send_max_iov : 1);
            if (r == -EPROTO) {
                session_failed(c, conn);
            } else if (r < 0) {
                /* -ENOBUFS cannot happen within max_out_bytes; anything else is a bug
                 * in the bookkeeping: end the connection rather than send garbage. */
                fail(c, conn, WS_TLS_ERR_INTERNAL, strerror(-r));
            }
            closing = (conn->flags & WS_CONN_F_FLUSH_CLOSE) && ws_sendq_empty(&conn->sq);
        }
        if (closing && !(t->flags & (WS_CT_F_CLOSE_QUEUED | WS_CT_F_FAILED))) {
            t->flags |= WS_CT_F_CLOSE_QUEUED;
            if (ws_tls_shutdown(t->s) < 0)
                ws_log_debug("conn %u: no close_notify: session failed", conn->idx);
        }
    }
    account(c, t);
    if (ws_tls_out_bytes(t->s) == 0) {
        if (s)
            ws_worker_sctx_put(c, s);
        /* Nothing to send. An empty queue lets the caller finish the connection; frames
         * queued before the handshake finished (a 503) wait for it. */
        return !ws_sendq_empty(&conn->sq);
    }
    submit(c, conn, s);
    return true;
}

static void tls_sent(ws_worker_t *c, ws_conn_t *conn, size_t sent)
{
    ws_conn_tls_t *t = conn->tls;
    if (t->flags & WS_CT_F_CLOSE_INFLIGHT) {
        t->flags &= ~(unsigned)WS_CT_F_CLOSE_INFLIGHT;
        return;
    }
    if (!t->inflight)
        return; /* a plaintext send of the plain path (kernel TX) */
    ws_tls_consume_out(t->s, sent);
    t->inflight = 0;
    account(c, t);
}

const ws_transport_ops_t ws_conn_tls_transport = {
    .name = "tls",
    .input = tls_input,
    .prep_recv = prep_recv,
    .recv_ended = tls_recv_ended,
    .send = tls_send,
    .sent = tls_sent,
    .timed_out = tls_timed_out,
    .free = tls_conn_free,
    .max_input = 16384, /* one TLS record's plaintext */
};
