/* Counted keys under striped locks (per-address connection counts, distinct rooms). See
 * keycount.h. */
#include "keycount.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define STRIPES 64  /* lock stripes; a power of two */
#define CHAINS  256 /* hash chains per stripe (16384 in all): short chains up to ~100k keys */

typedef struct kc_entry {
    struct kc_entry *next;
    uint64_t hash;
    uint32_t count;
    uint8_t len;
    uint8_t key[];
} kc_entry_t;

typedef struct kc_stripe {
    pthread_mutex_t lock;
    kc_entry_t *chain[CHAINS];
} kc_stripe_t;

struct ws_keycount {
    _Atomic uint32_t nkeys; /* distinct keys; reserved before an insert, so never over max */
    kc_stripe_t stripe[STRIPES];
};

static uint64_t key_hash(const void *key, size_t len)
{
    const uint8_t *p = key;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    h ^= h >> 29; /* the low bits pick stripe and chain: mix the high ones in */
    h *= 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 32);
}

ws_keycount_t *ws_keycount_new(void)
{
    ws_keycount_t *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    for (unsigned i = 0; i < STRIPES; i++)
        pthread_mutex_init(&t->stripe[i].lock, NULL);
    return t;
}

void ws_keycount_free(ws_keycount_t *t)
{
    if (!t)
        return;
    for (unsigned i = 0; i < STRIPES; i++) {
        for (unsigned j = 0; j < CHAINS; j++) {
            kc_entry_t *e = t->stripe[i].chain[j];
            while (e) {
                kc_entry_t *next = e->next;
                free(e);
                e = next;
            }
        }
        pthread_mutex_destroy(&t->stripe[i].lock);
    }
    free(t);
}

/* The stripe of hash h (locked by the caller) and the link that points at key's entry, or at
 * the NULL ending its chain. */
static kc_entry_t **find(kc_stripe_t *s, uint64_t h, const void *key, size_t len)
{
    kc_entry_t **pp = &s->chain[(h / STRIPES) % CHAINS];
    while (*pp && !((*pp)->hash == h && (*pp)->len == len && memcmp((*pp)->key, key, len) == 0))
        pp = &(*pp)->next;
    return pp;
}

int ws_keycount_acquire(ws_keycount_t *t, const void *key, size_t len, uint32_t per_key_max,
                        uint32_t max_keys)
{
    if (len > WS_KEY_MAX)
        return -EINVAL;
    uint64_t h = key_hash(key, len);
    kc_stripe_t *s = &t->stripe[h % STRIPES];
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    kc_entry_t **pp = find(s, h, key, len);
    if (*pp) {
        if (per_key_max && (*pp)->count >= per_key_max)
            rc = -EUSERS;
        else
            (*pp)->count++;
        goto out;
    }
    uint32_t prev = atomic_fetch_add_explicit(&t->nkeys, 1, memory_order_relaxed);
    if (max_keys && prev >= max_keys) {
        rc = -ENOSPC;
        goto undo;
    }
    kc_entry_t *e = malloc(sizeof(*e) + len);
    if (!e) {
        rc = -ENOMEM;
        goto undo;
    }
    e->next = NULL;
    e->hash = h;
    e->count = 1;
    e->len = (uint8_t)len;
    memcpy(e->key, key, len);
    *pp = e;
    goto out;
undo:
    atomic_fetch_sub_explicit(&t->nkeys, 1, memory_order_relaxed);
out:
    pthread_mutex_unlock(&s->lock);
    return rc;
}

void ws_keycount_release(ws_keycount_t *t, const void *key, size_t len)
{
    if (len > WS_KEY_MAX)
        return;
    uint64_t h = key_hash(key, len);
    kc_stripe_t *s = &t->stripe[h % STRIPES];
    pthread_mutex_lock(&s->lock);
    kc_entry_t **pp = find(s, h, key, len);
    kc_entry_t *e = *pp;
    if (e && --e->count == 0) {
        *pp = e->next;
        free(e);
        atomic_fetch_sub_explicit(&t->nkeys, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&s->lock);
}

uint32_t ws_keycount_get(ws_keycount_t *t, const void *key, size_t len)
{
    if (len > WS_KEY_MAX)
        return 0;
    uint64_t h = key_hash(key, len);
    kc_stripe_t *s = &t->stripe[h % STRIPES];
    pthread_mutex_lock(&s->lock);
    kc_entry_t *e = *find(s, h, key, len);
    uint32_t n = e ? e->count : 0;
    pthread_mutex_unlock(&s->lock);
    return n;
}

int ws_keycount_each(ws_keycount_t *t, ws_keycount_fn *fn, void *arg)
{
    int rc = 0;
    for (unsigned i = 0; i < STRIPES && rc == 0; i++) {
        kc_stripe_t *s = &t->stripe[i];
        pthread_mutex_lock(&s->lock);
        for (unsigned j = 0; j < CHAINS && rc == 0; j++)
            for (const kc_entry_t *e = s->chain[j]; e && rc == 0; e = e->next)
                rc = fn(arg, e->key, e->len, e->count);
        pthread_mutex_unlock(&s->lock);
    }
    return rc;
}

uint32_t ws_keycount_keys(const ws_keycount_t *t)
{
    return atomic_load_explicit(&t->nkeys, memory_order_relaxed);
}

bool ws_keycount_peer_key(const struct sockaddr *sa, socklen_t len, uint8_t key[16])
{
    if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        return true;
    }
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        memcpy(key, mapped, 12);
        memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return true;
    }
    return false;
}
