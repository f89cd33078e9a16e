/* Kernel TLS hand-off: installs the crypto_info of an established BoringSSL server session
 * (uringws/keys.h builds it and says where each byte comes from) on its socket, probes what
 * this kernel takes, and does the two record-level things a kTLS socket needs (close_notify
 * out, the record type of what came in). Policy (--ktls auto|off|require, the log line, the
 * metric) belongs to the engine. The setsockopt path only runs on a kernel with kTLS (not
 * the build machine's: the VM stage runs it). */
#ifndef URINGWS_KTLS_H
#define URINGWS_KTLS_H

#include <linux/tls.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "uringws/common.h"
#include "uringws/keys.h"
#include "uringws/tls.h"

/* Attaches the "tls" ULP to the connected TCP socket fd and installs TX then RX (the bits in
 * dirs). Returns the mask of directions now in the kernel (TX may succeed and RX fail on
 * kernels without RX for that cipher: the caller keeps RX in userspace), or -errno when
 * nothing was enabled: -ENOENT (no tls module, as on the build machine), -ENOPROTOOPT,
 * -EOPNOTSUPP, -EEXIST (a ULP is already attached), or an error of ws_keys_crypto_info().
 * When TCP_ULP succeeds but TLS_TX fails, the socket stays a plain TCP socket (the ULP's
 * base mode passes data through) and userspace TLS can go on. Key material is wiped before
 * returning; the captured secrets are forgotten once the socket was tried. The caller must
 * have sent every byte BoringSSL produced and, for RX, fed every byte received. */
int ws_ktls_enable(int fd, SSL *ssl, unsigned dirs) WS_WARN_UNUSED;

/* ws_ktls_enable() for a ws_tls session, with its preconditions checked: handshake done
 * (-ENOTCONN), no pending ciphertext (-EBUSY: send it first), not already handed off
 * (-EALREADY). RX is left out (and stays in userspace) unless the session is on a record
 * boundary. On success marks the session (ws_tls_set_offloaded) so BoringSSL never writes
 * or reads the handed-off directions again, and returns the mask. */
int ws_ktls_offload(ws_tls_conn_t *c, int fd, unsigned dirs) WS_WARN_UNUSED;

/* Whether the kernel accepts TCP_ULP "tls": tried once on a throwaway connected loopback
 * pair, then cached. Returns 0 when supported, else -errno (-ENOENT on the build machine).
 * Socket failures before the probe itself (no loopback, EMFILE) are returned uncached.
 * Success does not promise every cipher: ws_ktls_enable() can still refuse one. */
int ws_ktls_probe(void);
bool ws_ktls_supported(void);

/* The AEAD suites the server offers (TLS 1.2 and 1.3 x AES-128-GCM, AES-256-GCM,
 * ChaCha20-Poly1305), in the kernel's names. */
#define WS_KTLS_NSUITES 6
typedef struct ws_ktls_suite {
    uint16_t version; /* TLS_1_2_VERSION, TLS_1_3_VERSION */
    uint16_t cipher;  /* TLS_CIPHER_* */
    const char *name; /* "TLS 1.3 AES-128-GCM" */
} ws_ktls_suite_t;
extern const ws_ktls_suite_t ws_ktls_suites[WS_KTLS_NSUITES];

/* What the kernel takes, found by real hand-offs: for each suite a fresh loopback pair gets
 * TCP_ULP "tls", then TLS_TX and TLS_RX with zero keys, so the kernel must have (or load)
 * the cipher's crypto modules; a kernel with only tls.ko refuses here, not per session. */
typedef struct ws_ktls_support {
    int ulp;                 /* ws_ktls_probe(): 0 or -errno */
    int tx[WS_KTLS_NSUITES]; /* 0 or -errno of TLS_TX for ws_ktls_suites[i] */
    int rx[WS_KTLS_NSUITES]; /* 0 or -errno of TLS_RX */
} ws_ktls_support_t;
/* Fills out; returns 0, or -errno when the probe could not run or TCP_ULP is refused
 * (out->ulp). Not cached: the server calls it once at start. */
int ws_ktls_probe_suites(ws_ktls_support_t *out) WS_WARN_UNUSED;

/* With TX in the kernel: sends close_notify as a TLS alert record (type 21). 0 or -errno. */
int ws_ktls_send_close_notify(int fd);

/* With RX in the kernel: the TLS record type of what recvmsg() returned (23 application
 * data, 21 alert, 22 handshake), from the TLS_GET_RECORD_TYPE control message; -ENOENT
 * when there is none. Any type but 23 means: close the connection (a KeyUpdate cannot be
 * followed in the kernel on every version, an alert ends the session anyway). */
int ws_ktls_record_type(const struct msghdr *msg);

#endif
