/* Queueing for a connection, the slow-consumer policy, and submitting its sends
 * (net/conn_send.c). Nothing here tears a connection down or closes it: queued bytes and
 * deferred closes are picked up by the connection's end-of-pass work (net/conn_io.c). */
#ifndef URINGWS_NET_CONN_SEND_H
#define URINGWS_NET_CONN_SEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "conn.h"
#include "sendq.h"

struct ws_worker;
struct ws_sendctx;

/* Queues bytes (HTTP responses): takes ownership of buf (malloc'd). Returns 0 or -ENOMEM
 * (buf freed). */
int ws_conn_send_owned(struct ws_worker *c, ws_conn_t *conn, uint8_t *buf, uint32_t len);
/* Queues a copy of len bytes. 0 or -ENOMEM. */
int ws_conn_send_copy(struct ws_worker *c, ws_conn_t *conn, const void *p, size_t len);
/* Queues a control frame (payload cut at 125 bytes). 0 or -ENOMEM. */
int ws_conn_send_control(struct ws_worker *c, ws_conn_t *conn, uint8_t opcode, const void *payload,
                         size_t len);
/* Queues a close frame with code and reason (cut to fit), counted as sent. 0 or -ENOMEM. */
int ws_conn_send_close_frame(struct ws_worker *c, ws_conn_t *conn, unsigned code, const char *why);

/* Queues one reference of br (the caller counted it in br->refs) for a broadcast. A queue
 * over the limits for longer than slow_grace is a slow consumer: under slow_policy close the
 * connection is scheduled for its 1008 (and br is not queued); in every failure the
 * reference is released here. */
void ws_conn_send_deliver(struct ws_worker *c, ws_conn_t *conn, ws_bref_t *br);

/* The slow-consumer rule, after frames were queued and when the timer fires: starts a
 * backpressure episode when the queue went over the limits, ends it when it is back within
 * them, and judges it at the end of each slow_grace window. */
void ws_conn_send_backpressure(struct ws_worker *c, ws_conn_t *conn);
/* Whether the queue is over max_queue or max_queue_frames (a lone entry never is). */
bool ws_conn_send_over(const struct ws_worker *c, const ws_conn_t *conn);
/* Frames left the send queue (sent, or encrypted into the session's output): ends a
 * backpressure episode once the queue is within the limits again. */
void ws_conn_send_shrank(struct ws_worker *c, ws_conn_t *conn);

/* A close with code for the end of the pass (from places that must not close now: a room's
 * delivery loop, the slow-consumer verdict). Only for open connections; the first wins. */
void ws_conn_send_close_later(struct ws_worker *c, ws_conn_t *conn, unsigned code, const char *why);

/* Drops what no send has started (all: everything, once nothing is in flight), keeping the
 * gauge. */
void ws_conn_send_drop(struct ws_worker *c, ws_conn_t *conn, bool all);
/* Keeps the worker's queue_bytes gauge: a queue went from `before` to `after` bytes. */
void ws_conn_send_account(struct ws_worker *c, uint64_t before, uint64_t after);
/* True when nothing waits to be sent and no send is in flight (TLS ciphertext included: it
 * is in flight whenever it exists). */
bool ws_conn_send_idle(const ws_conn_t *conn);

/* With no send in flight: lets the transport send first, else submits what is unsent.
 * Returns true when nothing is left and the connection asked to end after its queue
 * (F_FLUSH_CLOSE): the caller lingers (ws_conn_linger). */
bool ws_conn_send_start(struct ws_worker *c, ws_conn_t *conn);
/* Submits iov[0..n) as the connection's one send: a send for one entry, else a sendmsg
 * through s (s->iov is iov; conn->sctx then holds s). A single send gives s back unless
 * `keep` (it reads from s's cork area). */
void ws_conn_send_iov(struct ws_worker *c, ws_conn_t *conn, struct ws_sendctx *s,
                      const struct iovec *iov, unsigned n, bool keep);
/* The send completed with res (bytes, or -errno): the queue, the gauge, the stall clock and
 * the transport learn what went out. */
void ws_conn_send_done(struct ws_worker *c, ws_conn_t *conn, int res);

#endif
