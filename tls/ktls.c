/* kTLS hand-off: the setsockopt sequence, the support probe (a real hand-off per suite on a
 * loopback pair), close_notify with TX in the kernel and the record type of a kernel RX
 * read. The keys come from tls/keys.c. */
#include "uringws/ktls.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ssl.h>

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

enum {
    WS_KTLS_CT_ALERT = 21,
    WS_KTLS_ALERT_WARNING = 1,
    WS_KTLS_ALERT_CLOSE_NOTIFY = 0,
};

int ws_ktls_enable(int fd, SSL *ssl, unsigned dirs)
{
    ws_keys_crypto_info_t tx, rx;
    size_t tx_len = 0, rx_len = 0;
    unsigned done = 0;
    int r;

    memset(&tx, 0, sizeof(tx));
    memset(&rx, 0, sizeof(rx));
    if (dirs == 0 || (dirs & ~(unsigned)(WS_TLS_TX | WS_TLS_RX)) != 0)
        return -EINVAL;
    /* RX alone would leave BoringSSL writing with keys the kernel does not follow through
     * a TLS 1.3 key update, and no kernel offers RX without TX: require TX. */
    if (!(dirs & WS_TLS_TX))
        return -EINVAL;
    /* Derive everything before touching the socket: a derivation failure must leave the
     * socket exactly as it was. */
    if ((r = ws_keys_crypto_info(ssl, WS_TLS_TX, &tx, &tx_len)) != 0)
        goto out;
    if ((dirs & WS_TLS_RX) && (r = ws_keys_crypto_info(ssl, WS_TLS_RX, &rx, &rx_len)) != 0)
        goto out;
    ws_keys_forget(ssl); /* past this point there is no retry */
    if (setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")) != 0) {
        r = -errno;
        goto out;
    }
    if (setsockopt(fd, SOL_TLS, TLS_TX, &tx, (socklen_t)tx_len) != 0) {
        r = -errno;
        goto out;
    }
    done |= WS_TLS_TX;
    if ((dirs & WS_TLS_RX) && setsockopt(fd, SOL_TLS, TLS_RX, &rx, (socklen_t)rx_len) == 0)
        done |= WS_TLS_RX;
    r = (int)done;
out:
    ws_keys_wipe(&tx);
    ws_keys_wipe(&rx);
    return r;
}

int ws_ktls_offload(ws_tls_conn_t *c, int fd, unsigned dirs)
{
    if (!ws_tls_handshake_done(c))
        return -ENOTCONN;
    if (ws_tls_offloaded(c) != 0 || ws_tls_tx_owned(c))
        return -EALREADY;
    if (ws_tls_out_bytes(c) != 0)
        return -EBUSY;
    if ((dirs & WS_TLS_RX) && !ws_tls_at_record_boundary(c))
        dirs &= ~(unsigned)WS_TLS_RX;
    int r = ws_ktls_enable(fd, ws_tls_ssl(c), dirs);
    if (r > 0)
        ws_tls_set_offloaded(c, (unsigned)r);
    return r;
}

/* A connected loopback pair: fds[0] listener, fds[1] client, fds[2] accepted (what the
 * server's sockets are). Returns 0 or -errno; on failure the fds made so far are closed. */
static int loopback_pair(int fds[3])
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(addr);
    fds[0] = fds[1] = fds[2] = -1;
    if ((fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        bind(fds[0], (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(fds[0], 1) != 0 ||
        getsockname(fds[0], (struct sockaddr *)&addr, &alen) != 0 ||
        (fds[1] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        connect(fds[1], (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
        (fds[2] = accept4(fds[0], NULL, NULL, SOCK_CLOEXEC)) < 0) {
        int r = -errno;
        for (int i = 0; i < 3; i++)
            if (fds[i] >= 0)
                close(fds[i]);
        return r;
    }
    return 0;
}

static void pair_close(int fds[3])
{
    for (int i = 0; i < 3; i++)
        close(fds[i]);
}

/* 1 = not probed yet; otherwise the cached result (0 or -errno). */
static _Atomic int g_probe = 1;

int ws_ktls_probe(void)
{
    int cached = atomic_load_explicit(&g_probe, memory_order_acquire);
    if (cached != 1)
        return cached;
    /* TCP_ULP needs an established connection, so the probe builds one on loopback. */
    int fds[3];
    int r = loopback_pair(fds);
    if (r != 0)
        return r;
    r = setsockopt(fds[2], IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")) == 0 ? 0 : -errno;
    atomic_store_explicit(&g_probe, r, memory_order_release);
    pair_close(fds);
    return r;
}

const ws_ktls_suite_t ws_ktls_suites[WS_KTLS_NSUITES] = {
    {TLS_1_2_VERSION, TLS_CIPHER_AES_GCM_128, "TLS 1.2 AES-128-GCM"},
    {TLS_1_2_VERSION, TLS_CIPHER_AES_GCM_256, "TLS 1.2 AES-256-GCM"},
    {TLS_1_2_VERSION, TLS_CIPHER_CHACHA20_POLY1305, "TLS 1.2 ChaCha20-Poly1305"},
    {TLS_1_3_VERSION, TLS_CIPHER_AES_GCM_128, "TLS 1.3 AES-128-GCM"},
    {TLS_1_3_VERSION, TLS_CIPHER_AES_GCM_256, "TLS 1.3 AES-256-GCM"},
    {TLS_1_3_VERSION, TLS_CIPHER_CHACHA20_POLY1305, "TLS 1.3 ChaCha20-Poly1305"},
};

static size_t crypto_info_len(uint16_t cipher)
{
    switch (cipher) {
    case TLS_CIPHER_AES_GCM_128:
        return sizeof(struct tls12_crypto_info_aes_gcm_128);
    case TLS_CIPHER_AES_GCM_256:
        return sizeof(struct tls12_crypto_info_aes_gcm_256);
    default:
        return sizeof(struct tls12_crypto_info_chacha20_poly1305);
    }
}

int ws_ktls_probe_suites(ws_ktls_support_t *out)
{
    memset(out, 0, sizeof(*out));
    out->ulp = ws_ktls_probe();
    if (out->ulp != 0)
        return out->ulp;
    for (unsigned i = 0; i < WS_KTLS_NSUITES; i++) {
        int fds[3];
        int r = loopback_pair(fds);
        if (r != 0)
            return r;
        /* Zero keys: the kernel sets up the same cipher (loading its crypto modules on
         * demand) as for a real session; no record is ever sent with them. */
        ws_keys_crypto_info_t ci;
        memset(&ci, 0, sizeof(ci));
        ci.info.version = ws_ktls_suites[i].version;
        ci.info.cipher_type = ws_ktls_suites[i].cipher;
        socklen_t len = (socklen_t)crypto_info_len(ws_ktls_suites[i].cipher);
        if (setsockopt(fds[2], IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")) != 0)
            out->tx[i] = out->rx[i] = -errno;
        else {
            out->tx[i] = setsockopt(fds[2], SOL_TLS, TLS_TX, &ci, len) == 0 ? 0 : -errno;
            out->rx[i] = setsockopt(fds[2], SOL_TLS, TLS_RX, &ci, len) == 0 ? 0 : -errno;
        }
        pair_close(fds);
    }
    return 0;
}

bool ws_ktls_supported(void)
{
    return ws_ktls_probe() == 0;
}

int ws_ktls_send_close_notify(int fd)
{
    uint8_t alert[2] = {WS_KTLS_ALERT_WARNING, WS_KTLS_ALERT_CLOSE_NOTIFY};
    union {
        char buf[CMSG_SPACE(sizeof(uint8_t))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {.iov_base = alert, .iov_len = sizeof(alert)};
    struct msghdr msg = {
        .msg_iov = &iov,
        .msg_iovlen = 1,
        .msg_control = ctl.buf,
        .msg_controllen = sizeof(ctl.buf),
    };
    memset(&ctl, 0, sizeof(ctl));
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_TLS;
    cm->cmsg_type = TLS_SET_RECORD_TYPE;
    cm->cmsg_len = CMSG_LEN(sizeof(uint8_t));
    *CMSG_DATA(cm) = WS_KTLS_CT_ALERT;
    ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n < 0)
        return -errno;
    return n == (ssize_t)sizeof(alert) ? 0 : -EIO;
}

int ws_ktls_record_type(const struct msghdr *msg)
{
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(msg); cm != NULL;
         cm = CMSG_NXTHDR((struct msghdr *)msg, cm)) {
        if (cm->cmsg_level == SOL_TLS && cm->cmsg_type == TLS_GET_RECORD_TYPE &&
            cm->cmsg_len >= CMSG_LEN(sizeof(uint8_t)))
            return *CMSG_DATA(cm);
    }
    return -ENOENT;
}
