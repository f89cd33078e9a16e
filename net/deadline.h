/* Connection deadlines (net/deadline.c). */
#ifndef URINGWS_NET_DEADLINE_H
#define URINGWS_NET_DEADLINE_H

struct ws_worker;
struct ws_conn;

/* (Re)arms conn->timer at the earliest deadline of its state, or disarms it. */
void ws_deadline_schedule(struct ws_worker *c, struct ws_conn *conn);

#endif
