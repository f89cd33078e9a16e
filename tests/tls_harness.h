/* Shared test scaffolding for test_tls.c and test_ktls.c (not a test itself): checks that
 * exit with a location, throwaway certificates made with BoringSSL at run time (no key is
 * ever committed), an `openssl s_client` child process with pipes, and loops that drive a
 * ws_tls session over a real loopback socket or against an in-process BoringSSL client. */
#ifndef URINGWS_TESTS_TLS_HARNESS_H
#define URINGWS_TESTS_TLS_HARNESS_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec_key.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "uringws/tls.h"

/* Every check here is a REQUIRE: a TLS exchange cannot go on past a failed step. A failure
 * also prints the OpenSSL error queue. */
#define CHECK_ON_FAIL() ERR_print_errors_fp(stderr)
#include "check.h"

#define TH_FN static __attribute__((unused))

extern char **environ;

/* ---- checks ---- */

TH_FN void th_die(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));
TH_FN void th_die(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s:%d: failed: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    ERR_print_errors_fp(stderr);
    exit(1);
}

TH_FN long long th_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- growable byte buffer ---- */

typedef struct th_buf {
    uint8_t *p;
    size_t len, cap;
} th_buf_t;

TH_FN void th_buf_add(th_buf_t *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->p = realloc(b->p, cap);
        REQUIRE(b->p != NULL);
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = 0; /* convenient for strstr on text; never counted */
}

TH_FN void th_buf_free(th_buf_t *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

/* ws_tls_plain_fn that appends to a th_buf_t. */
TH_FN int th_sink(void *arg, uint8_t *p, size_t n)
{
    th_buf_add(arg, p, n);
    return 0;
}

TH_FN bool th_contains(const th_buf_t *b, const void *needle, size_t n)
{
    if (n == 0)
        return true;
    if (b->len < n)
        return false;
    for (size_t i = 0; i + n <= b->len; i++)
        if (memcmp(b->p + i, needle, n) == 0)
            return true;
    return false;
}

/* ---- certificates ---- */

typedef struct th_certs {
    char dir[64];
    char cert[96], key[96]; /* ECDSA P-256, CN=localhost, self-signed */
    char rsa_cert[96], rsa_key[96];
} th_certs_t;

static th_certs_t *th_certs_to_clean;

/* Removes the temporary directory and everything in it (certificates, client stderr
 * captures, files a failed test left behind). Runs at exit, failures included. */
TH_FN void th_certs_cleanup(void)
{
    th_certs_t *c = th_certs_to_clean;
    if (c == NULL)
        return;
    DIR *d = opendir(c->dir);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            unlinkat(dirfd(d), e->d_name, 0);
        }
        closedir(d);
    }
    rmdir(c->dir);
}

TH_FN EVP_PKEY *th_key_ec(void)
{
    EC_KEY *ec = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);
    REQUIRE(ec != NULL && EC_KEY_generate_key(ec));
    EVP_PKEY *pk = EVP_PKEY_new();
    REQUIRE(pk != NULL && EVP_PKEY_assign_EC_KEY(pk, ec));
    return pk;
}

TH_FN EVP_PKEY *th_key_rsa(void)
{
    RSA *rsa = RSA_new();
    BIGNUM *e = BN_new();
    REQUIRE(rsa != NULL && e != NULL && BN_set_word(e, RSA_F4));
    REQUIRE(RSA_generate_key_ex(rsa, 2048, e, NULL));
    BN_free(e);
    EVP_PKEY *pk = EVP_PKEY_new();
    REQUIRE(pk != NULL && EVP_PKEY_assign_RSA(pk, rsa));
    return pk;
}

TH_FN void th_write_cert(EVP_PKEY *pk, const char *cert_path, const char *key_path)
{
    X509 *x = X509_new();
    REQUIRE(x != NULL);
    REQUIRE(X509_set_version(x, X509_VERSION_3));
    REQUIRE(ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(time(NULL) & 0x7fffffff)));
    REQUIRE(X509_gmtime_adj(X509_getm_notBefore(x), -3600));
    REQUIRE(X509_gmtime_adj(X509_getm_notAfter(x), 24 * 3600));
    X509_NAME *name = X509_get_subject_name(x);
    REQUIRE(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const uint8_t *)"localhost", -1,
                                       -1, 0));
    REQUIRE(X509_set_issuer_name(x, name));
    REQUIRE(X509_set_pubkey(x, pk));
    REQUIRE(X509_sign(x, pk, EVP_sha256()) > 0);
    FILE *f = fopen(cert_path, "w");
    REQUIRE(f != NULL && PEM_write_X509(f, x));
    fclose(f);
    int fd = open(key_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    REQUIRE(fd >= 0);
    f = fdopen(fd, "w");
    REQUIRE(f != NULL && PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL));
    fclose(f);
    X509_free(x);
}

/* Makes an ECDSA and an RSA self-signed certificate in a fresh temporary directory, removed
 * at exit. */
TH_FN void th_certs_make(th_certs_t *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->dir, sizeof(c->dir), "/tmp/uringws-tls-XXXXXX");
    REQUIRE(mkdtemp(c->dir) != NULL);
    snprintf(c->cert, sizeof(c->cert), "%s/ec-cert.pem", c->dir);
    snprintf(c->key, sizeof(c->key), "%s/ec-key.pem", c->dir);
    snprintf(c->rsa_cert, sizeof(c->rsa_cert), "%s/rsa-cert.pem", c->dir);
    snprintf(c->rsa_key, sizeof(c->rsa_key), "%s/rsa-key.pem", c->dir);
    th_certs_to_clean = c;
    atexit(th_certs_cleanup);
    EVP_PKEY *pk = th_key_ec();
    th_write_cert(pk, c->cert, c->key);
    EVP_PKEY_free(pk);
    pk = th_key_rsa();
    th_write_cert(pk, c->rsa_cert, c->rsa_key);
    EVP_PKEY_free(pk);
}

TH_FN ws_tls_ctx_t *th_server_ctx(const char *cert, const char *key, uint16_t min_version,
                                  bool ktls)
{
    ws_tls_config_t cfg;
    ws_tls_config_init(&cfg);
    cfg.cert_file = cert;
    cfg.key_file = key;
    cfg.min_version = min_version;
    cfg.ktls = ktls;
    ws_tls_ctx_t *ctx = NULL;
    char err[256];
    int r = ws_tls_ctx_new(&cfg, &ctx, err, sizeof(err));
    REQUIRE_MSG(r == 0, "ws_tls_ctx_new: %d %s", r, err);
    return ctx;
}

/* ---- openssl s_client as a child process ---- */

/* The openssl binary, or NULL when it is not installed (the test then exits 77). */
TH_FN const char *th_openssl_path(void)
{
    const char *env = getenv("WS_OPENSSL");
    if (env != NULL && access(env, X_OK) == 0)
        return env;
    if (access("/usr/bin/openssl", X_OK) == 0)
        return "/usr/bin/openssl";
    return NULL;
}

typedef struct th_child {
    pid_t pid;
    int in_fd;  /* write end of the child's stdin */
    int out_fd; /* read end of the child's stdout (non-blocking) */
    char err_path[128];
    th_buf_t out;    /* everything read from stdout so far */
    size_t out_seen; /* th_child_expect() searches from here */
    int status;
    bool exited;
} th_child_t;

TH_FN void th_child_start(th_child_t *ch, const char *const argv[])
{
    int in[2], out[2];
    memset(ch, 0, sizeof(*ch));
    REQUIRE(pipe2(in, O_CLOEXEC) == 0 && pipe2(out, O_CLOEXEC) == 0);
    /* In the test's temporary directory when there is one, so it goes even on failure. */
    snprintf(ch->err_path, sizeof(ch->err_path), "%s/sclient-XXXXXX",
             th_certs_to_clean != NULL ? th_certs_to_clean->dir : "/tmp");
    int err_fd = mkstemp(ch->err_path);
    REQUIRE(err_fd >= 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
    int r = posix_spawn(&ch->pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    REQUIRE_MSG(r == 0, "posix_spawn %s: %s", argv[0], strerror(r));
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    close(err_fd);
    ch->in_fd = in[1];
    ch->out_fd = out[0];
    REQUIRE(fcntl(ch->out_fd, F_SETFL, O_NONBLOCK) == 0);
}

TH_FN void th_child_dump_stderr(th_child_t *ch)
{
    FILE *f = fopen(ch->err_path, "r");
    if (f == NULL)
        return;
    char line[512];
    fprintf(stderr, "---- client stderr ----\n");
    while (fgets(line, sizeof(line), f) != NULL)
        fputs(line, stderr);
    fprintf(stderr, "---- client stdout (%zu bytes) ----\n%.*s\n", ch->out.len,
            (int)(ch->out.len > 2000 ? 2000 : ch->out.len), ch->out.p ? (char *)ch->out.p : "");
    fclose(f);
}

/* Reads what the child printed so far; returns false at EOF. */
TH_FN bool th_child_read(th_child_t *ch, int timeout_ms)
{
    struct pollfd pfd = {.fd = ch->out_fd, .events = POLLIN};
    if (poll(&pfd, 1, timeout_ms) <= 0)
        return true;
    uint8_t buf[4096];
    for (;;) {
        ssize_t n = read(ch->out_fd, buf, sizeof(buf));
        if (n > 0) {
            th_buf_add(&ch->out, buf, (size_t)n);
            continue;
        }
        if (n == 0)
            return false;
        return errno == EAGAIN || errno == EINTR;
    }
}

/* Waits until the child's stdout (after the previous match) contains text. */
TH_FN bool th_child_expect(th_child_t *ch, const char *text, int timeout_ms)
{
    long long deadline = th_now_ms() + timeout_ms;
    size_t n = strlen(text);
    bool open = true;
    for (;;) {
        if (ch->out.len >= ch->out_seen + n) {
            for (size_t i = ch->out_seen; i + n <= ch->out.len; i++) {
                if (memcmp(ch->out.p + i, text, n) == 0) {
                    ch->out_seen = i + n;
                    return true;
                }
            }
        }
        long long left = deadline - th_now_ms();
        if (!open || left <= 0)
            return false; /* the child closed its stdout, or time is up */
        open = th_child_read(ch, (int)(left > 50 ? 50 : left));
    }
}

TH_FN void th_child_send(th_child_t *ch, const char *text)
{
    size_t n = strlen(text);
    REQUIRE(write(ch->in_fd, text, n) == (ssize_t)n);
}

/* Waits for the child to exit; returns false on timeout. */
TH_FN bool th_child_wait(th_child_t *ch, int timeout_ms)
{
    long long deadline = th_now_ms() + timeout_ms;
    while (!ch->exited) {
        pid_t p = waitpid(ch->pid, &ch->status, WNOHANG);
        if (p == ch->pid) {
            ch->exited = true;
            break;
        }
        if (th_now_ms() >= deadline)
            return false;
        th_child_read(ch, 10);
    }
    while (th_child_read(ch, 0) && ch->out_fd >= 0) {
        struct pollfd pfd = {.fd = ch->out_fd, .events = POLLIN};
        if (poll(&pfd, 1, 0) <= 0)
            break;
    }
    return true;
}

TH_FN void th_child_end(th_child_t *ch)
{
    if (!ch->exited) {
        kill(ch->pid, SIGTERM);
        if (!th_child_wait(ch, 2000)) {
            kill(ch->pid, SIGKILL);
            waitpid(ch->pid, &ch->status, 0);
            ch->exited = true;
        }
    }
    if (ch->in_fd >= 0)
        close(ch->in_fd);
    if (ch->out_fd >= 0)
        close(ch->out_fd);
    ch->in_fd = ch->out_fd = -1;
    unlink(ch->err_path);
    th_buf_free(&ch->out);
}

/* ---- loopback sockets ---- */

TH_FN int th_listen(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    REQUIRE(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    REQUIRE(listen(fd, 4) == 0);
    REQUIRE(getsockname(fd, (struct sockaddr *)&a, &alen) == 0);
    *port = ntohs(a.sin_port);
    return fd;
}

TH_FN int th_accept(int lfd, int timeout_ms)
{
    struct pollfd pfd = {.fd = lfd, .events = POLLIN};
    if (poll(&pfd, 1, timeout_ms) != 1)
        return -1;
    return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
}

TH_FN void th_send_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t k = send(fd, b, n, MSG_NOSIGNAL);
        REQUIRE_MSG(k > 0, "send: %s", strerror(errno));
        b += k;
        n -= (size_t)k;
    }
}

/* Sends every pending ciphertext byte of c on fd, the way the engine will: one gathered
 * sendmsg over the pending iovecs, then consume what the kernel took. */
TH_FN void th_flush(ws_tls_conn_t *c, int fd)
{
    while (ws_tls_out_bytes(c) > 0) {
        struct iovec iov[16];
        int n = ws_tls_pending_out(c, iov, 16);
        REQUIRE(n > 0);
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t k = sendmsg(fd, &msg, MSG_NOSIGNAL);
        REQUIRE_MSG(k > 0, "sendmsg: %s", strerror(errno));
        ws_tls_consume_out(c, (size_t)k);
    }
}

/* Receives from fd into the session until done(arg) holds, the peer closes or the timeout
 * passes. Returns the last ws_tls_feed() result (0 when done() became true), or -ETIMEDOUT,
 * or 2 at EOF. Plaintext goes to plain. */
TH_FN int th_pump(ws_tls_conn_t *c, int fd, th_buf_t *plain, bool (*done)(void *), void *arg,
                  int timeout_ms)
{
    long long deadline = th_now_ms() + timeout_ms;
    for (;;) {
        th_flush(c, fd);
        if (done != NULL && done(arg))
            return 0;
        long long left = deadline - th_now_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, (int)left) != 1)
            continue;
        uint8_t buf[8192];
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n == 0)
            return 2;
        if (n < 0)
            return -errno;
        int r = ws_tls_feed(c, buf, (size_t)n, th_sink, plain);
        th_flush(c, fd);
        if (r != 0)
            return r;
    }
}

TH_FN bool th_done_handshake(void *arg)
{
    return ws_tls_handshake_done(arg);
}

typedef struct th_want {
    th_buf_t *buf;
    const char *text;
} th_want_t;

TH_FN bool th_done_contains(void *arg)
{
    th_want_t *w = arg;
    return th_contains(w->buf, w->text, strlen(w->text));
}

/* ---- in-process BoringSSL client over memory BIOs ---- */

typedef struct th_client {
    SSL *ssl;
    BIO *rbio; /* server ciphertext goes in here */
    BIO *wbio; /* client ciphertext comes out of here */
} th_client_t;

TH_FN void th_client_init(th_client_t *cl, SSL_CTX *cctx)
{
    cl->ssl = SSL_new(cctx);
    REQUIRE(cl->ssl != NULL);
    cl->rbio = BIO_new(BIO_s_mem());
    cl->wbio = BIO_new(BIO_s_mem());
    REQUIRE(cl->rbio != NULL && cl->wbio != NULL);
    SSL_set_bio(cl->ssl, cl->rbio, cl->wbio);
    SSL_set_connect_state(cl->ssl);
    REQUIRE(SSL_set_tlsext_host_name(cl->ssl, "localhost"));
}

TH_FN void th_client_free(th_client_t *cl)
{
    SSL_free(cl->ssl);
    memset(cl, 0, sizeof(*cl));
}

/* Moves client ciphertext into the server (feed result in *feed_r, first failure kept) and
 * server ciphertext into the client, in chunks of at most `chunk` bytes to exercise partial
 * records. Returns true if any byte moved. */
TH_FN bool th_shuttle(th_client_t *cl, ws_tls_conn_t *s, th_buf_t *server_plain, int *feed_r,
                      size_t chunk)
{
    bool moved = false;
    uint8_t buf[4096];
    if (chunk == 0 || chunk > sizeof(buf))
        chunk = sizeof(buf);
    int n;
    while ((n = BIO_read(cl->wbio, buf, (int)chunk)) > 0) {
        moved = true;
        int r = ws_tls_feed(s, buf, (size_t)n, th_sink, server_plain);
        if (*feed_r == 0)
            *feed_r = r;
    }
    while (ws_tls_out_bytes(s) > 0) {
        struct iovec iov[8];
        int cnt = ws_tls_pending_out(s, iov, 8);
        size_t took = 0;
        for (int i = 0; i < cnt; i++) {
            REQUIRE(BIO_write(cl->rbio, iov[i].iov_base, (int)iov[i].iov_len) ==
                    (int)iov[i].iov_len);
            took += iov[i].iov_len;
        }
        ws_tls_consume_out(s, took);
        moved = true;
    }
    return moved;
}

/* Runs the client handshake against the server session to completion or failure. Returns
 * the client's SSL_do_handshake() result (1 on success); *feed_r gets the first non-zero
 * ws_tls_feed() result. */
TH_FN int th_inproc_handshake(th_client_t *cl, ws_tls_conn_t *s, int *feed_r)
{
    th_buf_t sink = {0};
    int r = 0;
    *feed_r = 0;
    for (int i = 0; i < 64; i++) {
        r = SSL_do_handshake(cl->ssl);
        /* Before the shuttle: writing into the client's read BIO clears its retry flags. */
        int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(cl->ssl, r);
        bool moved = th_shuttle(cl, s, &sink, feed_r, 0);
        if (e != SSL_ERROR_NONE && e != SSL_ERROR_WANT_READ)
            break;
        if (!moved)
            break;
    }
    th_buf_free(&sink);
    return r;
}

/* Reads all plaintext the client can get now into out. Returns the last SSL_read result. */
TH_FN int th_client_read_all(th_client_t *cl, th_buf_t *out)
{
    uint8_t buf[16384];
    int r;
    while ((r = SSL_read(cl->ssl, buf, sizeof(buf))) > 0)
        th_buf_add(out, buf, (size_t)r);
    return r;
}

/* ---- openssl s_client against a ws_tls server over loopback ---- */

typedef struct th_session {
    int lfd, fd;
    uint16_t port;
    th_child_t child;
    ws_tls_conn_t *conn;
    th_buf_t plain; /* plaintext the server received */
} th_session_t;

/* Starts s_client against a fresh listener with the given extra arguments (NULL-terminated),
 * accepts it and creates the server session. Does not run the handshake. */
TH_FN void th_session_start(th_session_t *s, ws_tls_ctx_t *ctx, const char *const extra[])
{
    const char *openssl = th_openssl_path();
    REQUIRE(openssl != NULL);
    memset(s, 0, sizeof(*s));
    s->lfd = th_listen(&s->port);
    char connect_to[32];
    snprintf(connect_to, sizeof(connect_to), "127.0.0.1:%u", s->port);
    const char *argv[32];
    int n = 0;
    argv[n++] = openssl;
    argv[n++] = "s_client";
    argv[n++] = "-connect";
    argv[n++] = connect_to;
    argv[n++] = "-servername";
    argv[n++] = "localhost";
    for (int i = 0; extra[i] != NULL && n < 31; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    th_child_start(&s->child, argv);
    s->fd = th_accept(s->lfd, 10000);
    if (s->fd < 0) {
        th_child_dump_stderr(&s->child);
        th_die(__FILE__, __LINE__, "s_client did not connect");
    }
    s->conn = ws_tls_conn_new(ctx);
    REQUIRE(s->conn != NULL);
}

TH_FN void th_session_handshake(th_session_t *s)
{
    int r = th_pump(s->conn, s->fd, &s->plain, th_done_handshake, s->conn, 10000);
    if (r != 0) {
        const char *why;
        ws_tls_err_t e = ws_tls_error(s->conn, &why);
        th_child_dump_stderr(&s->child);
        th_die(__FILE__, __LINE__, "handshake: %d, %s: %s", r, ws_tls_err_name(e), why);
    }
}

/* The server receives until its plaintext contains text. */
TH_FN void th_session_expect_plain(th_session_t *s, const char *text)
{
    th_want_t w = {&s->plain, text};
    int r = th_pump(s->conn, s->fd, &s->plain, th_done_contains, &w, 10000);
    if (r != 0) {
        th_child_dump_stderr(&s->child);
        th_die(__FILE__, __LINE__, "server never got \"%s\": %d", text, r);
    }
}

TH_FN void th_session_expect_client(th_session_t *s, const char *text)
{
    if (!th_child_expect(&s->child, text, 10000)) {
        th_child_dump_stderr(&s->child);
        th_die(__FILE__, __LINE__, "client never printed \"%s\"", text);
    }
}

TH_FN void th_session_end(th_session_t *s)
{
    th_child_end(&s->child);
    ws_tls_conn_free(s->conn);
    if (s->fd >= 0)
        close(s->fd);
    close(s->lfd);
    th_buf_free(&s->plain);
    s->conn = NULL;
}

#endif
