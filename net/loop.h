/* The per-worker event loop (net/loop.c): setup, one io_uring_submit_and_wait per pass,
 * completion dispatch by user_data kind, cross-core drain, the timer tick, end-of-pass
 * connection work and the shutdown sequence. Called by net/server.c. */
#ifndef URINGWS_NET_LOOP_H
#define URINGWS_NET_LOOP_H

#include "worker.h"

/* Thread body parts, called by server.c in the worker's own thread. */
int ws_loop_setup(ws_worker_t *c);            /* ring, files, buffers: 0 or -errno */
void ws_loop_run(ws_worker_t *c);             /* the loop; returns after shutdown */
void ws_loop_teardown_thread(ws_worker_t *c); /* what must run on the owning thread */

/* Frees what is left after the thread is gone (rooms map, pools): main thread, after all
 * workers have been joined and the cross-core queues drained. */
void ws_loop_free(ws_worker_t *c);

#endif
