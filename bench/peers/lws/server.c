/*
 * libwebsockets broadcast server with rooms, as a peer for bench/compare.sh.
 *
 * The standard lws broadcast pattern (the minimal-ws-server ring / lws-mirror-protocol):
 * each room keeps a ring of recent messages and a list of its members; a received message
 * is appended to its room's ring and lws_callback_on_writable() is asked for every member;
 * each member's WRITEABLE callback writes the messages between its own tail and the ring
 * head while the socket is not choked. So every member of a room, the sender included,
 * gets every message in the room's order; text stays text, binary stays binary.
 * A member that falls a whole ring behind is closed (uringws closes slow consumers too).
 *
 * ws://host:PORT/<room>: the room is the percent-decoded path ("/" is "lobby").
 * Usage: lws-broadcast PORT
 */
#include <libwebsockets.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RING        1024u       /* messages kept per room */
#define MAX_MESSAGE (16u << 20) /* largest message accepted */

struct msg {
    unsigned char *buf; /* LWS_PRE bytes of headroom, then the payload */
    size_t len;
    int binary;
};

struct member;

struct room {
    struct room *next;
    char *name;
    struct msg ring[RING];
    uint64_t head; /* sequence number of the next message */
    struct member *members;
};

struct member {
    struct member *next;
    struct room *room;
    struct lws *wsi;
    uint64_t tail;     /* next sequence number to send */
    int lagged;        /* fell a whole ring behind: close */
    unsigned char *rx; /* message being assembled */
    size_t rx_len, rx_cap;
    int rx_binary;
    int rx_open; /* part of a message has arrived */
};

static struct room *rooms;
static volatile sig_atomic_t interrupted;

static struct room *room_get(const char *name)
{
    struct room *r;
    for (r = rooms; r; r = r->next)
        if (!strcmp(r->name, name))
            return r;
    r = calloc(1, sizeof(*r));
    if (!r || !(r->name = strdup(name))) {
        free(r);
        return NULL;
    }
    r->next = rooms;
    rooms = r;
    return r;
}

static void room_drop_if_empty(struct room *r)
{
    struct room **pp;
    if (r->members)
        return;
    for (pp = &rooms; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    for (unsigned i = 0; i < RING; i++)
        free(r->ring[i].buf);
    free(r->name);
    free(r);
}

static void room_name_from_uri(struct lws *wsi, char *out, size_t cap)
{
    char uri[1024];
    int n = lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI);
    char *q;
    if (n <= 0)
        uri[0] = '\0';
    if ((q = strchr(uri, '?')))
        *q = '\0';
    const char *p = uri[0] == '/' ? uri + 1 : uri;
    if (!*p || lws_urldecode(out, p, (int)cap) < 0 || !out[0])
        snprintf(out, cap, "lobby");
}

static int room_publish(struct member *from)
{
    struct room *r = from->room;
    struct msg *slot = &r->ring[r->head % RING];
    unsigned char *buf = malloc(LWS_PRE + from->rx_len + 1);
    if (!buf)
        return -1;
    memcpy(buf + LWS_PRE, from->rx, from->rx_len);
    free(slot->buf);
    slot->buf = buf;
    slot->len = from->rx_len;
    slot->binary = from->rx_binary;
    r->head++;
    for (struct member *m = r->members; m; m = m->next) {
        if (r->head - m->tail > RING)
            m->lagged = 1; /* its next message was just overwritten */
        lws_callback_on_writable(m->wsi);
    }
    return 0;
}

static int callback_broadcast(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                              void *in, size_t len)
{
    struct member *m = user;
    char name[512];

    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        room_name_from_uri(wsi, name, sizeof(name));
        memset(m, 0, sizeof(*m));
        m->wsi = wsi;
        if (!(m->room = room_get(name)))
            return -1;
        m->tail = m->room->head;
        m->next = m->room->members;
        m->room->members = m;
        return 0;

    case LWS_CALLBACK_CLOSED:
        if (m->room) {
            for (struct member **pp = &m->room->members; *pp; pp = &(*pp)->next)
                if (*pp == m) {
                    *pp = m->next;
                    break;
                }
            room_drop_if_empty(m->room);
            m->room = NULL;
        }
        free(m->rx);
        m->rx = NULL;
        return 0;

    case LWS_CALLBACK_RECEIVE:
        /* A message can arrive in several callbacks: its fragments, and pieces of a
         * frame larger than the protocol's rx buffer. */
        if (!m->rx_open) {
            m->rx_len = 0;
            m->rx_binary = lws_frame_is_binary(wsi);
            m->rx_open = 1;
        }
        if (m->rx_len + len > MAX_MESSAGE)
            return -1;
        if (m->rx_len + len > m->rx_cap) {
            size_t cap = m->rx_cap ? m->rx_cap : 256;
            while (cap < m->rx_len + len)
                cap *= 2;
            unsigned char *p = realloc(m->rx, cap);
            if (!p)
                return -1;
            m->rx = p;
            m->rx_cap = cap;
        }
        memcpy(m->rx + m->rx_len, in, len);
        m->rx_len += len;
        if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
            m->rx_open = 0;
            return room_publish(m);
        }
        return 0;

    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (!m->room)
            return 0;
        if (m->lagged) {
            lws_close_reason(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, NULL, 0);
            return -1;
        }
        while (m->tail != m->room->head) {
            struct msg *s = &m->room->ring[m->tail % RING];
            int n = lws_write(wsi, s->buf + LWS_PRE, s->len,
                              s->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
            if (n < (int)s->len)
                return -1;
            m->tail++;
            if (lws_send_pipe_choked(wsi)) {
                if (m->tail != m->room->head)
                    lws_callback_on_writable(wsi);
                break;
            }
        }
        return 0;

    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols protocols[] = {
    /* First in the list: clients that name no subprotocol get this one. */
    {"broadcast", callback_broadcast, sizeof(struct member), 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0}};

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

int main(int argc, char **argv)
{
    struct lws_context_creation_info info;
    struct lws_context *ctx;

    if (argc < 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    lws_set_log_level(LLL_ERR | LLL_WARN, NULL);

    memset(&info, 0, sizeof(info));
    info.port = atoi(argv[1]);
    info.protocols = protocols;
    info.options = LWS_SERVER_OPTION_HTTP_HEADERS_SECURITY_BEST_PRACTICES_ENFORCE;
    ctx = lws_create_context(&info);
    if (!ctx) {
        fprintf(stderr, "lws: context creation failed\n");
        return 1;
    }
    printf("lws listening on :%d\n", info.port);
    fflush(stdout);
    while (!interrupted && lws_service(ctx, 0) >= 0)
        ;
    lws_context_destroy(ctx);
    return 0;
}
