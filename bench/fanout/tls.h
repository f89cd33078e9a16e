/* The BoringSSL side of the fan-out client's wss connections: the client context, one SSL
 * object per connection that reads its ciphertext from the loop's cursor, and the mapping of
 * SSL results to byte counts and -errno. It holds no connection state of its own. */
#ifndef URINGWS_BENCH_FANOUT_TLS_H
#define URINGWS_BENCH_FANOUT_TLS_H

#include <sys/types.h>

#include <openssl/ssl.h>

#include "conn.h"

/* Creates the client TLS context (verification off, ALPN http/1.1). NULL on failure. */
SSL_CTX *ws_fo_tls_ctx_new(void);

/* A client SSL object for socket `fd`: it writes to the socket and reads the ciphertext the
 * worker puts at l->cur, with SNI from the configured host. NULL on failure. */
SSL *ws_fo_tls_new(ws_fo_loop_t *l, int fd);

/* Maps an SSL_read/SSL_write result r to bytes, 0 at a clean end, -EAGAIN or -errno. */
ssize_t ws_fo_tls_result(SSL *ssl, int r);

#endif
