/* BoringSSL server sessions driven through a custom BIO: ciphertext is read straight from the
 * caller's receive buffer during ws_tls_feed(), and ciphertext written by BoringSSL lands in
 * a list of chunks that never move, so the engine can gather all of it into one send while
 * it keeps writing. No socket calls here, no blocking, no per-connection buffer at idle.
 *
 * Idle cost per connection (measured in tests/test_tls.c with mallinfo2, printed there): the
 * SSL object and its established session state (read/write AEAD contexts, SSL_SESSION) plus
 * this struct. BoringSSL frees its record buffers whenever they are empty, which is why its
 * SSL_MODE_RELEASE_BUFFERS is defined as 0: there is nothing to switch on. We add nothing
 * while idle: pending-output chunks are freed as soon as they are sent, and the handshake
 * configuration (certificate references, cipher lists) is shed once the handshake ends. */
#include "uringws/tls.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/mem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#ifdef WS_WITH_KTLS
#include "record.h"
#include "uringws/keys.h"
#endif

/* Largest plaintext per record (RFC 8446 5.1, RFC 5246 6.2.1). */
#define WS_TLS_MAX_PLAIN 16384u
/* Largest record body we accept from a peer. RFC 8446 5.2 caps TLS 1.3 ciphertext at
 * 2^14 + 256. TLS 1.2 would allow 2^14 + 2048, but only for CBC padding and compression,
 * neither of which we negotiate: with AEAD suites a legitimate 1.2 record is at most
 * 2^14 + 8 (explicit nonce) + 16 (tag). So one ceiling serves both versions, and it is
 * checked on the header, before BoringSSL buffers the body. */
#define WS_TLS_MAX_RECORD_BODY (WS_TLS_MAX_PLAIN + 256u)
/* Upper bound of the record overhead we produce: header 5 + explicit nonce 8 + tag 16, or
 * header 5 + content type 1 + tag 16. Used only to check max_out_bytes before writing. */
#define WS_TLS_RECORD_OVERHEAD 32u
/* Pending-output chunk sizes: small first (most connections have a few small frames
 * pending), doubling while output keeps piling up, back to small once drained. The sizes
 * include the chunk header so allocations land on round malloc sizes. */
#define WS_TLS_CHUNK_MIN 512u
#define WS_TLS_CHUNK_MAX (64u * 1024u)

enum {
    WS_TLS_CT_CHANGE_CIPHER_SPEC = 20,
    WS_TLS_CT_ALERT = 21,
    WS_TLS_CT_HANDSHAKE = 22,
    WS_TLS_CT_APPLICATION_DATA = 23,
};

struct ws_tls_ctx {
    SSL_CTX *ssl_ctx;
    size_t max_out_bytes;
};

/* One block of pending ciphertext. Bytes [head, tail) are pending; a send may be reading
 * them, so they never move. New bytes go to [tail, cap) or a new chunk. */
struct ws_tls_chunk {
    struct ws_tls_chunk *next;
    uint32_t head, tail, cap;
    uint8_t data[];
};

/* Flags owned by ws_tls_conn. */
enum {
    WS_TLS_F_HANDSHAKE_DONE = 1u << 0,
    WS_TLS_F_SEEN_RECORD = 1u << 1, /* a valid first record header arrived */
    WS_TLS_F_PEER_CLOSED = 1u << 2, /* close_notify or orderly EOF */
    WS_TLS_F_SENT_CLOSE = 1u << 3,
    WS_TLS_F_FAILED = 1u << 4,
    WS_TLS_F_TX_OFFLOADED = 1u << 5,
    WS_TLS_F_RX_OFFLOADED = 1u << 6,
    WS_TLS_F_WRITE_REFUSED = 1u << 7, /* the BIO refused a write because TX is offloaded */
    WS_TLS_F_OOM = 1u << 8,           /* the BIO could not allocate an output chunk */
};

/* One server session. Owned by one thread (the connection's core); freed by
 * ws_tls_conn_free(). The SSL object owns the BIO, and the BIO points back here. */
struct ws_tls_conn {
    SSL *ssl;
    /* Ciphertext being fed: only non-empty during ws_tls_feed(). */
    const uint8_t *in;
    size_t in_len;
    /* Pending ciphertext, oldest first. */
    struct ws_tls_chunk *out_head, *out_tail;
    size_t out_bytes;
    size_t max_out_bytes;
    uint32_t next_chunk;
    uint32_t flags;
    /* Record scanner state: where the next record header starts in the input stream. */
    uint32_t body_left;
    uint8_t hdr[5];
    uint8_t hdr_have;
    ws_tls_err_t err;
    const char *reason;
#ifdef WS_WITH_KTLS
    /* Set by ws_tls_own_tx(): records are sealed here, not by SSL_write. bssl_seq is
     * BoringSSL's own write counter, for the records it still writes (reseal in bio_write). */
    ws_tls_rec_t *tx;
    uint64_t bssl_seq;
#endif
};

/* ---- BIO: the only path between BoringSSL and this connection's bytes ---- */

static BIO_METHOD *g_bio_method;
static pthread_once_t g_bio_once = PTHREAD_ONCE_INIT;

static int out_append(ws_tls_conn_t *c, const uint8_t *p, size_t n);
static int out_resealed(ws_tls_conn_t *c, const uint8_t *p, size_t n);

static int bio_read(BIO *b, char *out, int len)
{
    ws_tls_conn_t *c = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (c->in_len == 0) {
        /* Retry, not EOF: BoringSSL reports SSL_ERROR_WANT_READ and keeps its state. */
        BIO_set_retry_read(b);
        return -1;
    }
    size_t n = (size_t)len < c->in_len ? (size_t)len : c->in_len;
    memcpy(out, c->in, n);
    c->in += n;
    c->in_len -= n;
    return (int)n;
}

static int bio_write(BIO *b, const char *p, int len)
{
    ws_tls_conn_t *c = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (len <= 0)
        return 0;
    if (c->flags & WS_TLS_F_TX_OFFLOADED) {
        /* The kernel owns the write sequence now; a record from BoringSSL would reuse a
         * nonce and break the stream. Fail the operation instead. */
        c->flags |= WS_TLS_F_WRITE_REFUSED;
        return -1;
    }
#ifdef WS_WITH_KTLS
    if (c->tx != NULL) {
        /* We seal now; BoringSSL's record (an alert, close_notify, a KeyUpdate) is opened
         * and sealed again with our sequence number. */
        int r = out_resealed(c, (const uint8_t *)p, (size_t)len);
        if (r != 0) {
            c->flags |= r == -ENOMEM ? WS_TLS_F_OOM : WS_TLS_F_WRITE_REFUSED;
            return -1;
        }
        return len;
    }
#endif
    if (out_append(c, (const uint8_t *)p, (size_t)len) != 0) {
        c->flags |= WS_TLS_F_OOM;
        return -1;
    }
    return len;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    /* Writes complete at once, so a flush has nothing to do. Everything else is unsupported
     * and BoringSSL does not need it from a transport BIO. */
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static void bio_method_init(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "uringws");
    if (m == NULL)
        return;
    if (!BIO_meth_set_read(m, bio_read) || !BIO_meth_set_write(m, bio_write) ||
        !BIO_meth_set_ctrl(m, bio_ctrl)) {
        BIO_meth_free(m);
        return;
    }
    g_bio_method = m;
}

/* ---- pending output ---- */

/* Output chunks come from a per-thread pool, one free list per standard size. A session
 * belongs to one thread, and under load every send allocates and frees up to a few 64 KiB
 * chunks: through malloc that was 7% of a wss fan-out core (free coalescing large chunks,
 * and trimming that faulted the pages back in). The pool keeps at most WS_TLS_POOL_BYTES
 * per thread; an odd-sized chunk (one record larger than the size it asked for) always goes
 * back to malloc. */
#define WS_TLS_POOL_BYTES   (8u * 1024u * 1024u)
#define WS_TLS_POOL_CLASSES 8 /* 512 B to 64 KiB */
_Static_assert(WS_TLS_CHUNK_MIN << (WS_TLS_POOL_CLASSES - 1) == WS_TLS_CHUNK_MAX,
               "one pool class per chunk size");

struct ws_tls_pool {
    struct ws_tls_chunk *free[WS_TLS_POOL_CLASSES];
    size_t bytes;
};

static pthread_key_t g_pool_key;
static pthread_once_t g_pool_once = PTHREAD_ONCE_INIT;
static bool g_pool_ok;

static void pool_destroy(void *arg)
{
    struct ws_tls_pool *pool = arg;
    for (int i = 0; i < WS_TLS_POOL_CLASSES; i++) {
        while (pool->free[i] != NULL) {
            struct ws_tls_chunk *k = pool->free[i];
            pool->free[i] = k->next;
            free(k);
        }
    }
    free(pool);
}

static void pool_key_init(void)
{
    g_pool_ok = pthread_key_create(&g_pool_key, pool_destroy) == 0;
}

/* This thread's pool, created on first use; NULL when none can be had (then plain malloc). */
static struct ws_tls_pool *pool_get(void)
{
    pthread_once(&g_pool_once, pool_key_init);
    if (!g_pool_ok)
        return NULL;
    struct ws_tls_pool *pool = pthread_getspecific(g_pool_key);
    if (pool == NULL && (pool = calloc(1, sizeof(*pool))) != NULL &&
        pthread_setspecific(g_pool_key, pool) != 0) {
        free(pool);
        pool = NULL;
    }
    return pool;
}

/* The pool class of a chunk of `size` bytes, or -1 for an odd size. */
static int pool_class(size_t size)
{
    for (int i = 0; i < WS_TLS_POOL_CLASSES; i++)
        if (size == (size_t)WS_TLS_CHUNK_MIN << i)
            return i;
    return -1;
}

static struct ws_tls_chunk *chunk_get(size_t size)
{
    int cls = pool_class(size);
    struct ws_tls_pool *pool = cls >= 0 ? pool_get() : NULL;
    if (pool != NULL && pool->free[cls] != NULL) {
        struct ws_tls_chunk *k = pool->free[cls];
        pool->free[cls] = k->next;
        pool->bytes -= size;
        return k;
    }
    return malloc(size);
}

static void chunk_put(struct ws_tls_chunk *k)
{
    size_t size = k->cap + sizeof(*k);
    int cls = pool_class(size);
    struct ws_tls_pool *pool = cls >= 0 ? pool_get() : NULL;
    if (pool == NULL || pool->bytes + size > WS_TLS_POOL_BYTES) {
        free(k);
        return;
    }
    k->next = pool->free[cls];
    pool->free[cls] = k;
    pool->bytes += size;
}

/* Returns every chunk of the list starting at h to the pool. */
static void chunks_put(struct ws_tls_chunk *h)
{
    while (h != NULL) {
        struct ws_tls_chunk *next = h->next;
        chunk_put(h);
        h = next;
    }
}

/* Size of a new chunk that must hold at least n bytes: the growing default, else the
 * smallest pool size that fits, else exactly n. */
static size_t chunk_size_for(const ws_tls_conn_t *c, size_t n)
{
    size_t need = n + sizeof(struct ws_tls_chunk), size = c->next_chunk;
    while (size < need && size < WS_TLS_CHUNK_MAX)
        size *= 2;
    return size < need ? need : size;
}

/* Appends a new empty chunk for at least n bytes; NULL when out of memory. */
static struct ws_tls_chunk *chunk_add(ws_tls_conn_t *c, size_t n)
{
    size_t size = chunk_size_for(c, n);
    if (size > UINT32_MAX)
        return NULL;
    struct ws_tls_chunk *t = chunk_get(size);
    if (t == NULL)
        return NULL;
    t->next = NULL;
    t->head = t->tail = 0;
    t->cap = (uint32_t)(size - sizeof(*t));
    if (c->out_tail != NULL)
        c->out_tail->next = t;
    else
        c->out_head = t;
    c->out_tail = t;
    if (c->next_chunk < WS_TLS_CHUNK_MAX)
        c->next_chunk *= 2;
    return t;
}

static int out_append(ws_tls_conn_t *c, const uint8_t *p, size_t n)
{
    while (n > 0) {
        struct ws_tls_chunk *t = c->out_tail;
        if (t != NULL && t->tail < t->cap) {
            size_t k = t->cap - t->tail;
            if (k > n)
                k = n;
            memcpy(t->data + t->tail, p, k);
            t->tail += (uint32_t)k;
            c->out_bytes += k;
            p += k;
            n -= k;
            continue;
        }
        if (chunk_add(c, n) == NULL)
            return -ENOMEM;
    }
    return 0;
}

#ifdef WS_WITH_KTLS
/* Contiguous room for n bytes at the end of the pending output (a record is sealed in
 * place, so it cannot straddle chunks; the rest of a chunk too small for it stays unused).
 * Commit what was written with out_commit(). */
static uint8_t *out_reserve(ws_tls_conn_t *c, size_t n)
{
    struct ws_tls_chunk *t = c->out_tail;
    if (t == NULL || t->cap - t->tail < n)
        t = chunk_add(c, n);
    return t != NULL ? t->data + t->tail : NULL;
}

static void out_commit(ws_tls_conn_t *c, size_t n)
{
    c->out_tail->tail += (uint32_t)n;
    c->out_bytes += n;
}

/* The records BoringSSL wrote after ws_tls_own_tx(), sealed again as ours. BoringSSL hands
 * its write buffer over whole, so p holds whole records. */
static int out_resealed(ws_tls_conn_t *c, const uint8_t *p, size_t n)
{
    while (n > 0) {
        if (n < WS_TLS_REC_HEADER)
            return -EPROTO;
        size_t len = WS_TLS_REC_HEADER + ((size_t)p[3] << 8 | p[4]);
        if (len > n)
            return -EPROTO;
        uint8_t *out = out_reserve(c, len);
        if (out == NULL)
            return -ENOMEM;
        size_t w = ws_tls_rec_reseal(c->tx, &c->bssl_seq, p, len, out);
        if (w == 0)
            return -EPROTO;
        out_commit(c, w);
        p += len;
        n -= len;
    }
    return 0;
}
#endif

int ws_tls_pending_out(const ws_tls_conn_t *c, struct iovec *iov, int max)
{
    int n = 0;
    for (const struct ws_tls_chunk *k = c->out_head; k != NULL && n < max; k = k->next) {
        if (k->tail == k->head)
            continue;
        iov[n].iov_base = (void *)(k->data + k->head);
        iov[n].iov_len = k->tail - k->head;
        n++;
    }
    return n;
}

size_t ws_tls_out_bytes(const ws_tls_conn_t *c)
{
    return c->out_bytes;
}

void ws_tls_consume_out(ws_tls_conn_t *c, size_t n)
{
    if (n > c->out_bytes)
        n = c->out_bytes; /* caller bug; never walk past the list */
    c->out_bytes -= n;
    /* Every chunk but the tail is full, so a drained chunk before the tail can go now. */
    while (n > 0) {
        struct ws_tls_chunk *h = c->out_head;
        size_t avail = h->tail - h->head;
        if (n < avail) {
            h->head += (uint32_t)n;
            break;
        }
        n -= avail;
        h->head = h->tail;
        if (h == c->out_tail)
            break;
        c->out_head = h->next;
        chunk_put(h);
    }
    if (c->out_bytes == 0 && c->out_head != NULL) {
        /* Drained: an idle connection holds no output memory. Nothing sent is still being
         * read by the kernel, since the caller consumed it all. */
        chunks_put(c->out_head);
        c->out_head = c->out_tail = NULL;
        c->next_chunk = WS_TLS_CHUNK_MIN;
    }
}

/* ---- errors ---- */

static const char *const g_err_names[WS_TLS_ERR__COUNT] = {
    [WS_TLS_ERR_NONE] = "none",
    [WS_TLS_ERR_GARBAGE] = "garbage",
    [WS_TLS_ERR_BAD_RECORD] = "bad_record",
    [WS_TLS_ERR_OVERSIZE] = "oversize_record",
    [WS_TLS_ERR_HANDSHAKE] = "handshake",
    [WS_TLS_ERR_RENEGOTIATION] = "renegotiation",
    [WS_TLS_ERR_PEER_ALERT] = "peer_alert",
    [WS_TLS_ERR_TRUNCATED] = "truncated",
    [WS_TLS_ERR_PROTOCOL] = "protocol",
    [WS_TLS_ERR_OFFLOADED] = "offloaded_write",
    [WS_TLS_ERR_INTERNAL] = "internal",
};

const char *ws_tls_err_name(ws_tls_err_t e)
{
    if ((unsigned)e >= WS_TLS_ERR__COUNT)
        return "unknown";
    return g_err_names[e];
}

static int fail(ws_tls_conn_t *c, ws_tls_err_t e, const char *reason)
{
    if (c->flags & WS_TLS_F_FAILED)
        return -EPROTO; /* the first failure is the cause; later ones are its echoes */
    c->flags |= WS_TLS_F_FAILED;
    c->err = e;
    c->reason = reason;
    return -EPROTO;
}

/* Maps BoringSSL's error queue (thread-local, emptied here) to a category. The first error
 * from the SSL library names the cause; errors from libcrypto (e.g. CIPHER_R_BAD_DECRYPT)
 * come before it and are less specific. */
static int fail_ssl(ws_tls_conn_t *c, int ssl_err)
{
    uint32_t first = 0, first_ssl = 0, e;
    while ((e = ERR_get_error()) != 0) {
        if (first == 0)
            first = e;
        if (first_ssl == 0 && ERR_GET_LIB(e) == ERR_LIB_SSL)
            first_ssl = e;
    }
    uint32_t code = first_ssl != 0 ? first_ssl : first;
    bool done = c->flags & WS_TLS_F_HANDSHAKE_DONE;

    if (code == 0 || ssl_err == SSL_ERROR_SYSCALL) {
        if ((c->flags & WS_TLS_F_WRITE_REFUSED) && !(c->flags & WS_TLS_F_TX_OFFLOADED))
            return fail(c, WS_TLS_ERR_INTERNAL, "a record from BoringSSL did not reseal");
        if (c->flags & WS_TLS_F_WRITE_REFUSED)
            return fail(c, WS_TLS_ERR_OFFLOADED, "TLS needed to write after TX moved to kTLS");
        if (c->flags & WS_TLS_F_OOM)
            return fail(c, WS_TLS_ERR_INTERNAL, "out of memory for TLS output");
        if (code == 0)
            return fail(c, WS_TLS_ERR_INTERNAL, "TLS library failed without a reason");
    }
    const char *reason = ERR_reason_error_string(code);
    if (reason == NULL)
        reason = "unknown TLS error";
    int lib = ERR_GET_LIB(code), r = ERR_GET_REASON(code);
    if (r == ERR_R_MALLOC_FAILURE)
        return fail(c, WS_TLS_ERR_INTERNAL, reason);
    if (lib != ERR_LIB_SSL)
        return fail(c, done ? WS_TLS_ERR_PROTOCOL : WS_TLS_ERR_HANDSHAKE, reason);
    if (r >= SSL_AD_REASON_OFFSET)
        return fail(c, WS_TLS_ERR_PEER_ALERT, reason);
    switch (r) {
    case SSL_R_NO_RENEGOTIATION:
        return fail(c, WS_TLS_ERR_RENEGOTIATION, reason);
    case SSL_R_ENCRYPTED_LENGTH_TOO_LONG:
    case SSL_R_DATA_LENGTH_TOO_LONG:
    case SSL_R_RECORD_TOO_LARGE:
        return fail(c, WS_TLS_ERR_OVERSIZE, reason);
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST:
        return fail(c, WS_TLS_ERR_GARBAGE, reason);
    case SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC:
    case SSL_R_DECRYPTION_FAILED:
    case SSL_R_BAD_PACKET_LENGTH:
    case SSL_R_UNEXPECTED_RECORD:
    case SSL_R_INVALID_OUTER_RECORD_TYPE:
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_TOO_MANY_EMPTY_FRAGMENTS:
    case SSL_R_TOO_MANY_WARNING_ALERTS:
    case SSL_R_BAD_ALERT:
        return fail(c, WS_TLS_ERR_BAD_RECORD, reason);
    default:
        return fail(c, done ? WS_TLS_ERR_PROTOCOL : WS_TLS_ERR_HANDSHAKE, reason);
    }
}

ws_tls_err_t ws_tls_error(const ws_tls_conn_t *c, const char **reason)
{
    if (reason != NULL)
        *reason = c->reason != NULL ? c->reason : "";
    return c->err;
}

/* ---- record scanner ---- */

/* Walks the record headers of the incoming stream before BoringSSL sees the bytes. It
 * names the failures BoringSSL would report vaguely or late: bytes that are not TLS at all
 * (plain HTTP to the TLS port), and records longer than any legitimate one, refused on the
 * header instead of after buffering up to 16 KiB of body. It also knows when the stream sits
 * on a record boundary, which the kTLS RX hand-off needs. An SSLv2-format ClientHello (first
 * byte 0x80) counts as garbage: no client able to negotiate TLS 1.2 or later sends one. */
static int scan_records(ws_tls_conn_t *c, const uint8_t *p, size_t n, uint8_t *alert)
{
    size_t i = 0;
    while (i < n) {
        if (c->body_left > 0) {
            size_t k = n - i < c->body_left ? n - i : c->body_left;
            c->body_left -= (uint32_t)k;
            i += k;
            continue;
        }
        c->hdr[c->hdr_have++] = p[i++];
        if (c->hdr_have < sizeof(c->hdr))
            continue;
        c->hdr_have = 0;
        uint8_t type = c->hdr[0];
        uint32_t len = (uint32_t)c->hdr[3] << 8 | c->hdr[4];
        if (!(c->flags & WS_TLS_F_SEEN_RECORD)) {
            /* A ClientHello record: type handshake, legacy version 3.x. */
            if (type != WS_TLS_CT_HANDSHAKE || c->hdr[1] != 3) {
                *alert = 0;
                return fail(c, WS_TLS_ERR_GARBAGE, "first bytes are not a TLS handshake record");
            }
            c->flags |= WS_TLS_F_SEEN_RECORD;
        }
        if (type < WS_TLS_CT_CHANGE_CIPHER_SPEC || type > WS_TLS_CT_APPLICATION_DATA ||
            c->hdr[1] != 3) {
            *alert = SSL_AD_UNEXPECTED_MESSAGE;
            return fail(c, WS_TLS_ERR_BAD_RECORD, "record of unknown type or version");
        }
        if (len > WS_TLS_MAX_RECORD_BODY) {
            *alert = SSL_AD_RECORD_OVERFLOW;
            return fail(c, WS_TLS_ERR_OVERSIZE, "record length over 2^14+256");
        }
        c->body_left = len;
    }
    return 0;
}

/* ---- context ---- */

void ws_tls_config_init(ws_tls_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->min_version = WS_TLS_V1_2;
    cfg->ciphers12 = WS_TLS_DEFAULT_CIPHERS12;
    cfg->num_tickets = 2;
    cfg->ktls = false;
    cfg->max_out_bytes = 4u << 20;
}

static int set_err(char *err, size_t errlen, int r, const char *fmt, const char *arg)
{
    if (err != NULL && errlen > 0) {
        uint32_t e = ERR_peek_last_error();
        const char *why = e != 0 ? ERR_reason_error_string(e) : NULL;
        int k = snprintf(err, errlen, fmt, arg != NULL ? arg : "");
        if (why != NULL && k >= 0 && (size_t)k < errlen)
            snprintf(err + k, errlen - (size_t)k, " (%s)", why);
    }
    ERR_clear_error();
    return r;
}

static int check_readable(const char *path, const char *what, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        int r = -errno;
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "cannot open %s file %s: %s", what, path, strerror(-r));
        return r;
    }
    fclose(f);
    return 0;
}

/* ALPN: a WebSocket over TLS speaks HTTP/1.1 first. A client that offers ALPN without
 * http/1.1 cannot talk to us, and RFC 7301 3.2 says to answer no_application_protocol. A
 * client that offers no ALPN at all is fine (this callback is not called). */
static int alpn_select(SSL *ssl, const uint8_t **out, uint8_t *outlen, const uint8_t *in,
                       unsigned inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    static const char proto[] = "http/1.1";
    unsigned i = 0;
    while (i < inlen) {
        unsigned len = in[i++];
        if (len == 0 || len > inlen - i)
            return SSL_TLSEXT_ERR_ALERT_FATAL;
        if (len == sizeof(proto) - 1 && memcmp(in + i, proto, len) == 0) {
            *out = in + i;
            *outlen = (uint8_t)len;
            return SSL_TLSEXT_ERR_OK;
        }
        i += len;
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

int ws_tls_ctx_new(const ws_tls_config_t *cfg, ws_tls_ctx_t **out, char *err, size_t errlen)
{
    int r;
    *out = NULL;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (cfg->cert_file == NULL || cfg->key_file == NULL)
        return set_err(err, errlen, -EINVAL, "certificate and key files are required%s", NULL);
    if (cfg->min_version != WS_TLS_V1_2 && cfg->min_version != WS_TLS_V1_3)
        return set_err(err, errlen, -EINVAL, "minimum TLS version must be 1.2 or 1.3%s", NULL);
#ifndef WS_WITH_KTLS
    if (cfg->ktls)
        return set_err(err, errlen, -EOPNOTSUPP, "built without kTLS support%s", NULL);
#endif
    if ((r = check_readable(cfg->cert_file, "certificate", err, errlen)) != 0)
        return r;
    if ((r = check_readable(cfg->key_file, "key", err, errlen)) != 0)
        return r;
    pthread_once(&g_bio_once, bio_method_init);
    if (g_bio_method == NULL)
        return set_err(err, errlen, -ENOMEM, "cannot create the TLS transport%s", NULL);

    ws_tls_ctx_t *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL)
        return set_err(err, errlen, -ENOMEM, "out of memory%s", NULL);
    ctx->max_out_bytes = cfg->max_out_bytes;
    SSL_CTX *sc = ctx->ssl_ctx = SSL_CTX_new(TLS_method());
    if (sc == NULL) {
        r = set_err(err, errlen, -ENOMEM, "cannot create the TLS context%s", NULL);
        goto err;
    }
    if (!SSL_CTX_set_min_proto_version(sc, cfg->min_version) ||
        !SSL_CTX_set_max_proto_version(sc, TLS1_3_VERSION)) {
        r = set_err(err, errlen, -EINVAL, "cannot set the TLS versions%s", NULL);
        goto err;
    }
    const char *ciphers = cfg->ciphers12 != NULL ? cfg->ciphers12 : WS_TLS_DEFAULT_CIPHERS12;
    if (!SSL_CTX_set_strict_cipher_list(sc, ciphers)) {
        r = set_err(err, errlen, -EINVAL, "bad TLS 1.2 cipher list \"%s\"", ciphers);
        goto err;
    }
    SSL_CTX_set_options(sc, SSL_OP_CIPHER_SERVER_PREFERENCE |
                                (cfg->num_tickets == 0 ? SSL_OP_NO_TICKET : 0));
    SSL_CTX_set_num_tickets(sc, cfg->num_tickets);
    /* Resumption goes through tickets only: a server-side cache grows with the client
     * count and is per process anyway. */
    SSL_CTX_set_session_cache_mode(sc, SSL_SESS_CACHE_OFF);
    if (!SSL_CTX_use_certificate_chain_file(sc, cfg->cert_file)) {
        r = set_err(err, errlen, -EINVAL, "cannot load the certificate chain from %s",
                    cfg->cert_file);
        goto err;
    }
    if (!SSL_CTX_use_PrivateKey_file(sc, cfg->key_file, SSL_FILETYPE_PEM)) {
        /* BoringSSL checks the key against the certificate here already. */
        uint32_t e = ERR_peek_last_error();
        bool mismatch =
            ERR_GET_LIB(e) == ERR_LIB_X509 && (ERR_GET_REASON(e) == X509_R_KEY_TYPE_MISMATCH ||
                                               ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH);
        r = set_err(err, errlen, -EINVAL,
                    mismatch ? "the private key in %s does not match the certificate"
                             : "cannot load the private key from %s",
                    cfg->key_file);
        goto err;
    }
    if (!SSL_CTX_check_private_key(sc)) {
        r = set_err(err, errlen, -EINVAL, "the private key in %s does not match the certificate",
                    cfg->key_file);
        goto err;
    }
    SSL_CTX_set_alpn_select_cb(sc, alpn_select, NULL);
#ifdef WS_WITH_KTLS
    /* Always: userspace sealing (ws_tls_own_tx) derives its keys the same way. */
    if ((r = ws_keys_ctx_init(sc)) != 0) {
        r = set_err(err, errlen, r, "cannot prepare the kTLS hand-off%s", NULL);
        goto err;
    }
#endif
    *out = ctx;
    return 0;
err:
    ws_tls_ctx_free(ctx);
    return r;
}

void ws_tls_ctx_free(ws_tls_ctx_t *ctx)
{
    if (ctx == NULL)
        return;
    /* Sessions still alive keep the SSL_CTX through their own reference. */
    SSL_CTX_free(ctx->ssl_ctx);
    free(ctx);
}

/* ---- connection ---- */

ws_tls_conn_t *ws_tls_conn_new(ws_tls_ctx_t *ctx)
{
    ws_tls_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->max_out_bytes = ctx->max_out_bytes;
    c->next_chunk = WS_TLS_CHUNK_MIN;
    c->ssl = SSL_new(ctx->ssl_ctx);
    if (c->ssl == NULL)
        goto err;
    BIO *bio = BIO_new(g_bio_method);
    if (bio == NULL)
        goto err;
    BIO_set_data(bio, c);
    BIO_set_init(bio, 1);
    SSL_set_bio(c->ssl, bio, bio); /* one BIO for both directions; the SSL owns it */
    SSL_set_accept_state(c->ssl);
    /* Nothing needs the handshake configuration afterwards (renegotiation is refused), so
     * let BoringSSL free it when the handshake ends. */
    SSL_set_shed_handshake_config(c->ssl, 1);
    return c;
err:
    SSL_free(c->ssl);
    free(c);
    ERR_clear_error();
    return NULL;
}

void ws_tls_conn_free(ws_tls_conn_t *c)
{
    if (c == NULL)
        return;
    SSL_free(c->ssl); /* wipes its keys; the kTLS ex_data destructor wipes captured secrets */
#ifdef WS_WITH_KTLS
    if (c->tx != NULL) {
        ws_tls_rec_cleanup(c->tx);
        free(c->tx);
    }
#endif
    chunks_put(c->out_head);
    free(c);
}

/* BoringSSL seals some TLS 1.3 post-handshake messages only on the next write: the session
 * tickets issued at the end of the handshake, and the KeyUpdate answering a peer's request
 * ("Consumers which don't write data to the client will need to do a zero-byte write if
 * they wish to flush the tickets", ssl/tls13_server.cc). A zero-byte write moves them into
 * the pending output now, so that after every ws_tls_feed() all ciphertext BoringSSL owes
 * the peer is in our chunks. The kTLS hand-off depends on this: it requires the pending
 * output to be empty, and a ticket left inside BoringSSL would never be sent, or worse, be
 * sealed later with a sequence number the kernel already used. With nothing queued it
 * writes nothing (no empty record). With TX in the kernel the same call is how a peer's
 * KeyUpdate request is noticed: BoringSSL tries to answer it, the BIO refuses, and the
 * session fails with WS_TLS_ERR_OFFLOADED instead of silently never answering. */
static int flush_queued(ws_tls_conn_t *c)
{
    if (c->flags & WS_TLS_F_SENT_CLOSE)
        return 0;
    int r = SSL_write(c->ssl, "", 0);
    return r < 0 ? fail_ssl(c, SSL_get_error(c->ssl, r)) : 0;
}

/* Runs the handshake and then reads records until BoringSSL wants more input. BoringSSL
 * reads exactly the bytes of the record it is working on (no read-ahead), so when it asks
 * for more, all of c->in has been consumed: either processed or kept inside BoringSSL as the
 * start of an incomplete record. */
static int drive(ws_tls_conn_t *c, ws_tls_plain_fn on_plain, void *arg)
{
    if (!(c->flags & WS_TLS_F_HANDSHAKE_DONE)) {
        int r = SSL_do_handshake(c->ssl);
        if (r != 1) {
            int e = SSL_get_error(c->ssl, r);
            return e == SSL_ERROR_WANT_READ ? 0 : fail_ssl(c, e);
        }
        c->flags |= WS_TLS_F_HANDSHAKE_DONE;
    }
    uint8_t buf[WS_TLS_MAX_PLAIN];
    for (;;) {
        int r = SSL_read(c->ssl, buf, sizeof(buf));
        if (r > 0) {
            if (on_plain(arg, buf, (size_t)r) != 0)
                return -ECANCELED;
            if (c->flags & WS_TLS_F_FAILED)
                return -EPROTO; /* on_plain wrote and that failed */
            continue;
        }
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ)
            return flush_queued(c);
        if (e == SSL_ERROR_ZERO_RETURN) {
            c->flags |= WS_TLS_F_PEER_CLOSED;
            return 1;
        }
        return fail_ssl(c, e);
    }
}

int ws_tls_feed(ws_tls_conn_t *c, const uint8_t *p, size_t n, ws_tls_plain_fn on_plain, void *arg)
{
    if (c->flags & WS_TLS_F_FAILED)
        return -EPROTO;
    if (c->flags & WS_TLS_F_RX_OFFLOADED)
        return -EOPNOTSUPP;
    if (c->flags & WS_TLS_F_PEER_CLOSED)
        return 1;
    uint8_t alert = 0;
    if (scan_records(c, p, n, &alert) != 0) {
        /* Tell a TLS peer why (plaintext before the handshake, encrypted after); bytes that
         * are not TLS at all get no answer. */
        if (alert != 0) {
            ERR_clear_error();
            SSL_send_fatal_alert(c->ssl, alert);
            ERR_clear_error();
        }
        return -EPROTO;
    }
    ERR_clear_error(); /* SSL_get_error() reads the thread's queue: start it empty */
    c->in = p;
    c->in_len = n;
    int r = drive(c, on_plain, arg);
    c->in = NULL;
    c->in_len = 0;
    return r;
}

int ws_tls_feed_eof(ws_tls_conn_t *c)
{
    if (c->flags & WS_TLS_F_FAILED)
        return -EPROTO;
    if (c->flags & WS_TLS_F_PEER_CLOSED)
        return 0;
    /* A connect-then-close (health checks, port scanners) sent nothing: not a TLS error. */
    if (!(c->flags & WS_TLS_F_SEEN_RECORD) && c->hdr_have == 0) {
        c->flags |= WS_TLS_F_PEER_CLOSED;
        return 0;
    }
    if (!(c->flags & WS_TLS_F_HANDSHAKE_DONE))
        return fail(c, WS_TLS_ERR_TRUNCATED, "EOF before the TLS handshake finished");
    if (c->hdr_have != 0 || c->body_left != 0)
        return fail(c, WS_TLS_ERR_TRUNCATED, "EOF inside a TLS record");
    c->flags |= WS_TLS_F_PEER_CLOSED;
    return 0;
}

static int write_check(ws_tls_conn_t *c, size_t n)
{
    if (c->flags & WS_TLS_F_FAILED)
        return -EPROTO;
    if (c->flags & WS_TLS_F_TX_OFFLOADED)
        return -EOPNOTSUPP;
    if (!(c->flags & WS_TLS_F_HANDSHAKE_DONE))
        return -ENOTCONN;
    if (c->flags & WS_TLS_F_SENT_CLOSE)
        return -EPIPE;
    size_t records = n / WS_TLS_MAX_PLAIN + 1;
    if (n > c->max_out_bytes || records * WS_TLS_RECORD_OVERHEAD + n > c->max_out_bytes ||
        c->out_bytes > c->max_out_bytes - n - records * WS_TLS_RECORD_OVERHEAD)
        return -ENOBUFS;
    ERR_clear_error();
    return 0;
}

/* Encrypts p[0..n) as whole records; BoringSSL splits at 16 KiB. */
static int seal(ws_tls_conn_t *c, const uint8_t *p, size_t n)
{
    while (n > 0) {
        int k = n > (size_t)INT_MAX ? INT_MAX : (int)n;
        int r = SSL_write(c->ssl, p, k);
        if (r <= 0)
            return fail_ssl(c, SSL_get_error(c->ssl, r));
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

#ifdef WS_WITH_KTLS
/* ws_tls_writev() after ws_tls_own_tx(): full 16 KiB records, each gathered straight from
 * the caller's pieces into its place in the pending output and encrypted there. */
static int seal_own(ws_tls_conn_t *c, const struct iovec *iov, size_t total)
{
    size_t prefix = ws_tls_rec_prefix(c->tx), overhead = ws_tls_rec_overhead(c->tx);
    int i = 0;
    size_t off = 0;
    while (total > 0) {
        size_t n = total < WS_TLS_MAX_PLAIN ? total : WS_TLS_MAX_PLAIN;
        uint8_t *rec = out_reserve(c, n + overhead);
        if (rec == NULL)
            return fail(c, WS_TLS_ERR_INTERNAL, "out of memory for TLS output");
        for (size_t fill = 0; fill < n;) {
            size_t k = iov[i].iov_len - off;
            if (k > n - fill)
                k = n - fill;
            memcpy(rec + prefix + fill, (const uint8_t *)iov[i].iov_base + off, k);
            fill += k;
            off += k;
            if (off == iov[i].iov_len) {
                i++;
                off = 0;
            }
        }
        size_t len = ws_tls_rec_seal(c->tx, SSL3_RT_APPLICATION_DATA, rec, n);
        if (len == 0)
            return fail(c, WS_TLS_ERR_INTERNAL, "record encryption failed");
        out_commit(c, len);
        total -= n;
    }
    return 0;
}

int ws_tls_own_tx(ws_tls_conn_t *c)
{
    if (c->tx != NULL)
        return 0;
    if (c->flags & WS_TLS_F_FAILED)
        return -EPROTO;
    if (!(c->flags & WS_TLS_F_HANDSHAKE_DONE))
        return -ENOTCONN;
    if (c->flags & (WS_TLS_F_TX_OFFLOADED | WS_TLS_F_SENT_CLOSE))
        return -EALREADY;
    /* Everything BoringSSL owes the peer (tickets) must be sealed by it first: our records
     * continue its sequence. */
    int r = flush_queued(c);
    if (r != 0)
        return r;
    ws_tls_rec_t *tx = malloc(sizeof(*tx));
    if (tx == NULL)
        return -ENOMEM;
    if ((r = ws_tls_rec_init(tx, c->ssl)) != 0) {
        free(tx);
        return r;
    }
    c->bssl_seq = tx->seq;
    c->tx = tx;
    ws_keys_forget(c->ssl); /* the secret lives on in tx; kTLS cannot follow from here */
    return 0;
}

bool ws_tls_tx_owned(const ws_tls_conn_t *c)
{
    return c->tx != NULL;
}
#endif

int ws_tls_write(ws_tls_conn_t *c, const void *p, size_t n)
{
    int r = write_check(c, n);
    if (r != 0 || n == 0)
        return r;
#ifdef WS_WITH_KTLS
    if (c->tx != NULL) {
        struct iovec one = {.iov_base = (void *)p, .iov_len = n};
        return seal_own(c, &one, n);
    }
#endif
    return seal(c, p, n);
}

int ws_tls_writev(ws_tls_conn_t *c, const struct iovec *iov, int cnt)
{
    size_t total = 0;
    for (int i = 0; i < cnt; i++) {
        if (iov[i].iov_len > SIZE_MAX - total)
            return -EINVAL;
        total += iov[i].iov_len;
    }
    int r = write_check(c, total);
    if (r != 0 || total == 0)
        return r;
#ifdef WS_WITH_KTLS
    if (c->tx != NULL)
        return seal_own(c, iov, total);
#endif
    /* Gather small pieces into full records; large runs go straight from the caller's
     * memory (no copy) as whole 16 KiB records. */
    uint8_t buf[WS_TLS_MAX_PLAIN];
    size_t fill = 0;
    for (int i = 0; i < cnt; i++) {
        const uint8_t *p = iov[i].iov_base;
        size_t len = iov[i].iov_len;
        while (len > 0) {
            if (fill == 0 && len >= WS_TLS_MAX_PLAIN) {
                size_t k = len - len % WS_TLS_MAX_PLAIN;
                if ((r = seal(c, p, k)) != 0)
                    return r;
                p += k;
                len -= k;
                continue;
            }
            size_t k = WS_TLS_MAX_PLAIN - fill;
            if (k > len)
                k = len;
            memcpy(buf + fill, p, k);
            fill += k;
            p += k;
            len -= k;
            if (fill == WS_TLS_MAX_PLAIN) {
                if ((r = seal(c, buf, fill)) != 0)
                    return r;
                fill = 0;
            }
        }
    }
    return fill > 0 ? seal(c, buf, fill) : 0;
}

int ws_tls_shutdown(ws_tls_conn_t *c)
{
    if (c->flags & WS_TLS_F_FAILED)
        return -EPROTO;
    if (!(c->flags & WS_TLS_F_HANDSHAKE_DONE))
        return -ENOTCONN;
    if (c->flags & WS_TLS_F_TX_OFFLOADED)
        return -EOPNOTSUPP;
    if (c->flags & WS_TLS_F_SENT_CLOSE)
        return 0;
    ERR_clear_error();
    int r = SSL_shutdown(c->ssl); /* 0: close_notify queued, 1: both sides closed */
    if (r < 0)
        return fail_ssl(c, SSL_get_error(c->ssl, r));
    c->flags |= WS_TLS_F_SENT_CLOSE;
    return 0;
}

/* ---- state ---- */

bool ws_tls_handshake_done(const ws_tls_conn_t *c)
{
    return c->flags & WS_TLS_F_HANDSHAKE_DONE;
}

uint16_t ws_tls_version(const ws_tls_conn_t *c)
{
    return ws_tls_handshake_done(c) ? (uint16_t)SSL_version(c->ssl) : 0;
}

const char *ws_tls_version_name(const ws_tls_conn_t *c)
{
    return ws_tls_handshake_done(c) ? SSL_get_version(c->ssl) : "";
}

const char *ws_tls_cipher_name(const ws_tls_conn_t *c)
{
    const SSL_CIPHER *cipher = ws_tls_handshake_done(c) ? SSL_get_current_cipher(c->ssl) : NULL;
    return cipher != NULL ? SSL_CIPHER_standard_name(cipher) : "";
}

ws_slice_t ws_tls_alpn(const ws_tls_conn_t *c)
{
    const uint8_t *p = NULL;
    unsigned len = 0;
    SSL_get0_alpn_selected(c->ssl, &p, &len);
    return ws_slice(p, p != NULL ? len : 0);
}

SSL *ws_tls_ssl(ws_tls_conn_t *c)
{
    return c->ssl;
}

bool ws_tls_at_record_boundary(const ws_tls_conn_t *c)
{
    return c->hdr_have == 0 && c->body_left == 0 && !SSL_has_pending(c->ssl);
}

void ws_tls_set_offloaded(ws_tls_conn_t *c, unsigned dirs)
{
    if (dirs & WS_TLS_TX)
        c->flags |= WS_TLS_F_TX_OFFLOADED;
    if (dirs & WS_TLS_RX)
        c->flags |= WS_TLS_F_RX_OFFLOADED;
}

unsigned ws_tls_offloaded(const ws_tls_conn_t *c)
{
    return (c->flags & WS_TLS_F_TX_OFFLOADED ? WS_TLS_TX : 0u) |
           (c->flags & WS_TLS_F_RX_OFFLOADED ? WS_TLS_RX : 0u);
}
