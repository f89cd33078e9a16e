/* Counted keys under striped locks (per-address connection counts, distinct rooms) and the
 * origin allow-list. See limits.h. */
#include "limits.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uringws/http.h"

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

uint32_t ws_keycount_keys(const ws_keycount_t *t)
{
    return atomic_load_explicit(&t->nkeys, memory_order_relaxed);
}

bool ws_peer_key(const struct sockaddr *sa, socklen_t len, uint8_t key[16])
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

/* ---- origins ------------------------------------------------------------------------- */

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t';
}

int ws_origins_parse(const char *list, ws_origins_t *out, char *err, size_t errlen)
{
    ws_origins_t o;
    memset(&o, 0, sizeof(o));
    const char *why = NULL;
    size_t total = strlen(list);
    /* A copy even for a check only: entries are cut out of it in place (NUL-terminated). */
    o.text = malloc(total + 1);
    if (!o.text)
        return -ENOMEM;
    memcpy(o.text, list, total + 1);
    char *base = o.text;
    size_t i = 0;
    for (;;) {
        size_t b = i, e;
        while (b < total && is_space(base[b]))
            b++;
        e = b;
        while (e < total && base[e] != ',')
            e++;
        size_t next = e;
        while (e > b && is_space(base[e - 1]))
            e--;
        if (e == b) {
            why = "origin: empty entry in the list";
            break;
        }
        if (e - b > WS_ORIGIN_LEN) {
            why = "origin: an entry is longer than 256 bytes";
            break;
        }
        for (size_t k = b; k < e && !why; k++) {
            unsigned char ch = (unsigned char)base[k];
            if (ch <= 0x20 || ch == 0x7f)
                why = "origin: an entry holds a space or control character";
        }
        if (why)
            break;
        base[e] = '\0';
        if (strcmp(base + b, "none") == 0) {
            o.allow_none = true;
        } else {
            if (o.n == WS_ORIGINS_MAX) {
                why = "origin: more than 64 entries";
                break;
            }
            o.entry[o.n++] = base + b;
        }
        if (next >= total)
            break;
        i = next + 1;
    }
    if (why) {
        if (err && errlen)
            snprintf(err, errlen, "%s", why);
    }
    if (why || !out) {
        free(o.text);
        return why ? -EINVAL : 0;
    }
    *out = o;
    return 0;
}

void ws_origins_free(ws_origins_t *o)
{
    free(o->text);
    memset(o, 0, sizeof(*o));
}

bool ws_origins_allow(const ws_origins_t *o, ws_slice_t origin)
{
    if (origin.len == 0)
        return o->allow_none;
    for (unsigned i = 0; i < o->n; i++) {
        if (strlen(o->entry[i]) == origin.len && ws_slice_eq_ci(origin, o->entry[i]))
            return true;
    }
    return false;
}
