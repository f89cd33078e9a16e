/* Pending ciphertext of a session: a list of chunks whose bytes never move once written, so
 * a send can read them while the session keeps appending, and the per-thread pool the chunks
 * come from. Everything BoringSSL or the record sealer writes lands here (bio.c, write.c);
 * the engine takes it out with ws_tls_pending_out() and ws_tls_consume_out(). This unit
 * moves bytes and never calls BoringSSL; the one piece of TLS it knows is the record length,
 * to hand record.c one record at a time when BoringSSL's output must be resealed. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "tls_internal.h"

/* One block of pending ciphertext. Bytes [head, tail) are pending; a send may be reading
 * them, so they never move. New bytes go to [tail, cap) or a new chunk. */
struct ws_tls_chunk {
    struct ws_tls_chunk *next;
    uint32_t head, tail, cap;
    uint8_t data[];
};

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

int ws__tls_out_append(ws_tls_conn_t *c, const uint8_t *p, size_t n)
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
 * Commit what was written with ws__tls_out_commit(). */
uint8_t *ws__tls_out_reserve(ws_tls_conn_t *c, size_t n)
{
    struct ws_tls_chunk *t = c->out_tail;
    if (t == NULL || t->cap - t->tail < n)
        t = chunk_add(c, n);
    return t != NULL ? t->data + t->tail : NULL;
}

void ws__tls_out_commit(ws_tls_conn_t *c, size_t n)
{
    c->out_tail->tail += (uint32_t)n;
    c->out_bytes += n;
}

/* The records BoringSSL wrote after ws_tls_own_tx(), sealed again as ours. BoringSSL hands
 * its write buffer over whole, so p holds whole records. */
int ws__tls_out_reseal(ws_tls_conn_t *c, const uint8_t *p, size_t n)
{
    while (n > 0) {
        if (n < WS_TLS_REC_HEADER)
            return -EPROTO;
        size_t len = WS_TLS_REC_HEADER + ((size_t)p[3] << 8 | p[4]);
        if (len > n)
            return -EPROTO;
        uint8_t *out = ws__tls_out_reserve(c, len);
        if (out == NULL)
            return -ENOMEM;
        size_t w = ws_tls_rec_reseal(c->tx, &c->bssl_seq, p, len, out);
        if (w == 0)
            return -EPROTO;
        ws__tls_out_commit(c, w);
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

void ws__tls_out_free(ws_tls_conn_t *c)
{
    chunks_put(c->out_head);
}
