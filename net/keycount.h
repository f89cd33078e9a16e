/* Counted keys shared by every core: connections per remote address for --max-conns-per-ip,
 * distinct rooms for --max-rooms. The table is the only admission state that cores share; it
 * is touched once per connection (accept, teardown) or per room join/leave, never per
 * message. */
#ifndef URINGWS_NET_KEYCOUNT_H
#define URINGWS_NET_KEYCOUNT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "uringws/common.h"

/* A map key -> count shared by all cores, split into lock stripes by the key's hash: each
 * stripe has its own mutex and chains, so two cores contend only when their keys share a
 * stripe, and a count is exact across cores (no per-core share that one core could exhaust
 * while another has room). An entry exists while its count is above 0. */
typedef struct ws_keycount ws_keycount_t;

#define WS_KEY_MAX 64 /* bytes of one key (a room name is at most WS_ROOM_MAX) */

ws_keycount_t *ws_keycount_new(void) WS_WARN_UNUSED;
void ws_keycount_free(ws_keycount_t *t);

/* Counts one more holder of key. per_key_max (0 = no limit) caps the holders of one key,
 * max_keys (0 = no limit) the distinct keys. Returns 0, -EUSERS when the key already has
 * per_key_max holders, -ENOSPC when the key is new and max_keys keys exist, -ENOMEM, or
 * -EINVAL for a key longer than WS_KEY_MAX. */
int ws_keycount_acquire(ws_keycount_t *t, const void *key, size_t len, uint32_t per_key_max,
                        uint32_t max_keys) WS_WARN_UNUSED;
/* Drops one holder of key (acquired before); the last one removes the entry. */
void ws_keycount_release(ws_keycount_t *t, const void *key, size_t len);
/* Holders of key (0 when absent), and distinct keys: for tests and metrics. */
uint32_t ws_keycount_get(ws_keycount_t *t, const void *key, size_t len);
uint32_t ws_keycount_keys(const ws_keycount_t *t);
/* Calls fn for every key with its count, one stripe locked at a time (so the whole is not one
 * instant's snapshot); fn must not call back into t. Stops at fn's first nonzero return and
 * returns it; else 0. */
typedef int ws_keycount_fn(void *arg, const uint8_t *key, size_t len, uint32_t count);
int ws_keycount_each(ws_keycount_t *t, ws_keycount_fn *fn, void *arg);

/* The per-address key of a peer: 16 bytes, IPv4 as its IPv4-mapped IPv6 form so that a
 * client counts the same on a dual-stack and an IPv4 listener. Returns false for other
 * address families (then the connection is not counted). */
bool ws_keycount_peer_key(const struct sockaddr *sa, socklen_t len, uint8_t key[16]);

#endif
