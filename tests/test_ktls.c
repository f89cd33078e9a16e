/* Tests for tls/ktls.c. The build machine's kernel has no kTLS, so the crypto_info derivation
 * is proven by EMULATION: for TLS 1.2 and 1.3 with AES-128-GCM, AES-256-GCM and
 * ChaCha20-Poly1305, a ws_tls server session completes a handshake with an independent TLS
 * stack (OpenSSL's `openssl s_client`, a child process on a real loopback TCP connection),
 * exchanges records normally so the sequence numbers are not zero, then builds the TX and
 * RX crypto_info exactly as ws_ktls_enable() would and from then on does the record layer by
 * hand, the way net/tls (tls_sw.c, tls.h) does with that crypto_info: it seals records with
 * BoringSSL's EVP_AEAD and writes them raw to the socket (the client must print the exact
 * plaintext), and it reads the client's raw records off the socket and opens them (the
 * plaintext must match). It ends with a hand-made close_notify and checks the client's
 * answer. A tampered record must be rejected by the client, so the check has teeth.
 *
 * The real kernel path (setsockopt TCP_ULP/TLS_TX/TLS_RX, then plain send/recv on the
 * socket) is tested by the same program where ws_ktls_supported() is true; on this kernel
 * that branch cannot run, and the test instead checks that the hand-off fails with
 * -ENOENT/-ENOPROTOOPT and that userspace TLS goes on over the same socket. */
#include "tls_harness.h"

#ifndef WS_WITH_KTLS
int main(void)
{
    printf("skip: built without WITH_KTLS\n");
    return 77;
}
#else

#include <openssl/aead.h>

#include "uringws/ktls.h"

static th_certs_t g_certs;
static ws_tls_ctx_t *g_ctx; /* ECDSA certificate, kTLS capture on */

/* ---- the kernel's TLS record layer, emulated (net/tls/tls.h, tls_sw.c) ---- */

typedef struct emu {
    uint16_t version, cipher;
    EVP_AEAD_CTX aead;
    uint8_t iv[12];  /* the kernel's cctx->iv: salt then iv, as tls_set_sw_offload copies */
    uint8_t seq[8];  /* cctx->rec_seq */
    size_t salt_len; /* 4 for GCM, 0 for ChaCha20 */
    size_t iv_len;   /* 8 for GCM, 12 for ChaCha20 */
} emu_t;

static void emu_init(emu_t *e, const ws_keys_crypto_info_t *ci)
{
    const EVP_AEAD *aead;
    const uint8_t *key, *salt, *iv, *seq;
    size_t key_len;
    memset(e, 0, sizeof(*e));
    e->version = ci->info.version;
    e->cipher = ci->info.cipher_type;
    switch (e->cipher) {
    case TLS_CIPHER_AES_GCM_128:
        aead = EVP_aead_aes_128_gcm();
        key = ci->aes_gcm_128.key, key_len = sizeof(ci->aes_gcm_128.key);
        salt = ci->aes_gcm_128.salt, e->salt_len = sizeof(ci->aes_gcm_128.salt);
        iv = ci->aes_gcm_128.iv, e->iv_len = sizeof(ci->aes_gcm_128.iv);
        seq = ci->aes_gcm_128.rec_seq;
        break;
    case TLS_CIPHER_AES_GCM_256:
        aead = EVP_aead_aes_256_gcm();
        key = ci->aes_gcm_256.key, key_len = sizeof(ci->aes_gcm_256.key);
        salt = ci->aes_gcm_256.salt, e->salt_len = sizeof(ci->aes_gcm_256.salt);
        iv = ci->aes_gcm_256.iv, e->iv_len = sizeof(ci->aes_gcm_256.iv);
        seq = ci->aes_gcm_256.rec_seq;
        break;
    case TLS_CIPHER_CHACHA20_POLY1305:
        aead = EVP_aead_chacha20_poly1305();
        key = ci->chacha20_poly1305.key, key_len = sizeof(ci->chacha20_poly1305.key);
        salt = NULL, e->salt_len = 0;
        iv = ci->chacha20_poly1305.iv, e->iv_len = sizeof(ci->chacha20_poly1305.iv);
        seq = ci->chacha20_poly1305.rec_seq;
        break;
    default:
        th_die(__FILE__, __LINE__, "unexpected cipher type %u", e->cipher);
    }
    REQUIRE(e->salt_len + e->iv_len == 12);
    if (e->salt_len > 0)
        memcpy(e->iv, salt, e->salt_len);
    memcpy(e->iv + e->salt_len, iv, e->iv_len);
    memcpy(e->seq, seq, 8);
    REQUIRE(EVP_AEAD_CTX_init(&e->aead, aead, key, key_len, EVP_AEAD_DEFAULT_TAG_LENGTH, NULL));
}

static void emu_free(emu_t *e)
{
    EVP_AEAD_CTX_cleanup(&e->aead);
}

/* TLS 1.2 AES-GCM carries an explicit nonce in each record; TLS 1.3 and ChaCha20 do not. */
static bool emu_explicit(const emu_t *e)
{
    return e->version == TLS_1_2_VERSION && e->cipher != TLS_CIPHER_CHACHA20_POLY1305;
}

static void bigint_inc(uint8_t *p, size_t n)
{
    for (size_t i = n; i-- > 0;)
        if (++p[i] != 0)
            break;
}

/* tls_xor_iv_with_seq(): the nonce is the 12-byte iv, with the sequence XORed into bytes
 * 4..11 for TLS 1.3 and ChaCha20; TLS 1.2 GCM uses salt || explicit iv as is. */
static void emu_nonce(const emu_t *e, uint8_t nonce[12])
{
    memcpy(nonce, e->iv, 12);
    if (!emu_explicit(e))
        for (int i = 0; i < 8; i++)
            nonce[4 + i] ^= e->seq[i];
}

/* tls_advance_record_sn(): rec_seq + 1, and for TLS 1.2 GCM the explicit iv + 1 as well. */
static void emu_advance(emu_t *e)
{
    bigint_inc(e->seq, 8);
    if (emu_explicit(e))
        bigint_inc(e->iv + e->salt_len, e->iv_len);
}

/* One record of `type` carrying data, as tls_sw_sendmsg would emit it (tls_fill_prepend,
 * tls_make_aad). Appends the record to out. */
static void emu_seal(emu_t *e, uint8_t type, const void *data, size_t n, th_buf_t *out)
{
    bool v13 = e->version == TLS_1_3_VERSION;
    size_t plen = n + (v13 ? 1 : 0); /* TLS 1.3: inner plaintext = data || content type */
    uint8_t *pt = malloc(plen + 1), *ct = malloc(plen + 16);
    REQUIRE(pt != NULL && ct != NULL);
    memcpy(pt, data, n);
    if (v13)
        pt[n] = type;
    size_t explicit_len = emu_explicit(e) ? 8 : 0;
    size_t body = explicit_len + plen + 16;
    uint8_t hdr[5] = {v13 ? 23 : type, 3, 3, (uint8_t)(body >> 8), (uint8_t)body};
    uint8_t aad[13];
    size_t aad_len;
    if (v13) {
        memcpy(aad, hdr, 5); /* additional data = the record header */
        aad_len = 5;
    } else {
        memcpy(aad, e->seq, 8); /* seq || type || version || plaintext length */
        aad[8] = type;
        aad[9] = 3;
        aad[10] = 3;
        aad[11] = (uint8_t)(n >> 8);
        aad[12] = (uint8_t)n;
        aad_len = 13;
    }
    uint8_t nonce[12];
    emu_nonce(e, nonce);
    size_t ct_len;
    REQUIRE(EVP_AEAD_CTX_seal(&e->aead, ct, &ct_len, plen + 16, nonce, 12, pt, plen, aad, aad_len));
    REQUIRE_INT(ct_len, plen + 16);
    th_buf_add(out, hdr, 5);
    if (explicit_len > 0)
        th_buf_add(out, e->iv + e->salt_len, 8);
    th_buf_add(out, ct, ct_len);
    emu_advance(e);
    free(pt);
    free(ct);
}

/* Opens one whole record as tls_sw's decrypt path would. Returns the plaintext length and
 * sets *type, or -1 when authentication fails (state not advanced). */
static long emu_open(emu_t *e, const uint8_t *rec, size_t rec_len, uint8_t *type, th_buf_t *out)
{
    bool v13 = e->version == TLS_1_3_VERSION;
    REQUIRE(rec_len >= 5);
    size_t body_len = (size_t)rec[3] << 8 | rec[4];
    REQUIRE_INT(rec_len, 5 + body_len);
    size_t explicit_len = emu_explicit(e) ? 8 : 0;
    REQUIRE(body_len >= explicit_len + 16);
    const uint8_t *ct = rec + 5 + explicit_len;
    size_t ct_len = body_len - explicit_len;
    uint8_t nonce[12];
    emu_nonce(e, nonce);
    if (explicit_len > 0)
        memcpy(nonce + e->salt_len, rec + 5, 8); /* the record says which nonce it used */
    uint8_t aad[13];
    size_t aad_len;
    if (v13) {
        memcpy(aad, rec, 5);
        aad_len = 5;
    } else {
        size_t n = ct_len - 16;
        memcpy(aad, e->seq, 8);
        aad[8] = rec[0];
        aad[9] = 3;
        aad[10] = 3;
        aad[11] = (uint8_t)(n >> 8);
        aad[12] = (uint8_t)n;
        aad_len = 13;
    }
    uint8_t *pt = malloc(ct_len);
    REQUIRE(pt != NULL);
    size_t pt_len;
    if (!EVP_AEAD_CTX_open(&e->aead, pt, &pt_len, ct_len, nonce, 12, ct, ct_len, aad, aad_len)) {
        ERR_clear_error();
        free(pt);
        return -1;
    }
    if (v13) {
        while (pt_len > 0 && pt[pt_len - 1] == 0) /* padding */
            pt_len--;
        REQUIRE(pt_len > 0);
        *type = pt[--pt_len];
    } else {
        *type = rec[0];
    }
    th_buf_add(out, pt, pt_len);
    emu_advance(e);
    free(pt);
    return (long)pt_len;
}

/* Reads exactly one TLS record from the socket (no TLS library involved). */
static bool read_record(int fd, th_buf_t *rec, int timeout_ms)
{
    rec->len = 0;
    size_t need = 5;
    long long deadline = th_now_ms() + timeout_ms;
    while (rec->len < need) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        long long left = deadline - th_now_ms();
        if (left <= 0 || poll(&pfd, 1, (int)left) != 1)
            return false;
        uint8_t buf[17000];
        size_t want = need - rec->len;
        ssize_t n = recv(fd, buf, want < sizeof(buf) ? want : sizeof(buf), 0);
        if (n <= 0)
            return false;
        th_buf_add(rec, buf, (size_t)n);
        if (rec->len == 5 && need == 5)
            need = 5 + ((size_t)rec->p[3] << 8 | rec->p[4]);
    }
    return true;
}

/* ---- the matrix ---- */

struct combo {
    uint16_t version;
    const char *cipher_opt; /* s_client option restricting the suite */
    const char *cipher_arg;
    const char *std_name;
    uint16_t ktls_cipher;
    size_t info_size;
};

static const struct combo k_combos[] = {
    {WS_TLS_V1_2, "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256",
     "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", TLS_CIPHER_AES_GCM_128,
     sizeof(struct tls12_crypto_info_aes_gcm_128)},
    {WS_TLS_V1_2, "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384",
     "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", TLS_CIPHER_AES_GCM_256,
     sizeof(struct tls12_crypto_info_aes_gcm_256)},
    {WS_TLS_V1_2, "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305",
     "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", TLS_CIPHER_CHACHA20_POLY1305,
     sizeof(struct tls12_crypto_info_chacha20_poly1305)},
    {WS_TLS_V1_3, "-ciphersuites", "TLS_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256",
     TLS_CIPHER_AES_GCM_128, sizeof(struct tls12_crypto_info_aes_gcm_128)},
    {WS_TLS_V1_3, "-ciphersuites", "TLS_AES_256_GCM_SHA384", "TLS_AES_256_GCM_SHA384",
     TLS_CIPHER_AES_GCM_256, sizeof(struct tls12_crypto_info_aes_gcm_256)},
    {WS_TLS_V1_3, "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256", "TLS_CHACHA20_POLY1305_SHA256",
     TLS_CIPHER_CHACHA20_POLY1305, sizeof(struct tls12_crypto_info_chacha20_poly1305)},
};

static const char *vname(uint16_t v)
{
    return v == WS_TLS_V1_3 ? "TLSv1.3" : "TLSv1.2";
}

static void start_combo(th_session_t *s, const struct combo *k, ws_tls_ctx_t *ctx)
{
    const char *extra[] = {"-quiet",      k->version == WS_TLS_V1_3 ? "-tls1_3" : "-tls1_2",
                           k->cipher_opt, k->cipher_arg,
                           "-alpn",       "http/1.1",
                           NULL};
    th_session_start(s, ctx, extra);
    th_session_handshake(s);
    REQUIRE_INT(ws_tls_version(s->conn), k->version);
    REQUIRE_MSG(strcmp(ws_tls_cipher_name(s->conn), k->std_name) == 0, "cipher %s, want %s",
                ws_tls_cipher_name(s->conn), k->std_name);
}

/* Normal userspace traffic both ways, so both sequence numbers move past zero. For TLS 1.2
 * GCM, also checks on the wire that BoringSSL's explicit nonce is its write sequence number,
 * the scheme the kernel continues from crypto_info.iv. */
static void warm_up(th_session_t *s, const struct combo *k)
{
    SSL *ssl = ws_tls_ssl(s->conn);
    /* Right after the handshake everything BoringSSL owed the client is on the wire: for
     * TLS 1.2 its Finished (sequence 0 of the new epoch), for TLS 1.3 the record carrying
     * the session tickets, which BoringSSL would otherwise hold back until a write. */
    REQUIRE_INT(ws_tls_out_bytes(s->conn), 0);
    REQUIRE_INT(SSL_get_write_sequence(ssl), 1);
    uint64_t seq = SSL_get_write_sequence(ssl);
    REQUIRE_INT(ws_tls_write(s->conn, "srv-1\n", 6), 0);
    if (k->version == WS_TLS_V1_2 && k->ktls_cipher != TLS_CIPHER_CHACHA20_POLY1305) {
        struct iovec iov[1];
        REQUIRE_INT(ws_tls_pending_out(s->conn, iov, 1), 1);
        const uint8_t *rec = iov[0].iov_base;
        REQUIRE(iov[0].iov_len >= 13 && rec[0] == 23);
        uint64_t nonce = 0;
        for (int i = 0; i < 8; i++)
            nonce = nonce << 8 | rec[5 + i];
        REQUIRE_INT(nonce, seq);
    }
    th_flush(s->conn, s->fd);
    th_session_expect_client(s, "srv-1\n");
    REQUIRE_INT(ws_tls_write(s->conn, "srv-2\n", 6), 0);
    REQUIRE_INT(ws_tls_write(s->conn, "srv-3\n", 6), 0);
    th_flush(s->conn, s->fd);
    th_session_expect_client(s, "srv-2\nsrv-3\n");
    th_child_send(&s->child, "cli-1\n");
    th_session_expect_plain(s, "cli-1\n");
    th_child_send(&s->child, "cli-2\n");
    th_session_expect_plain(s, "cli-1\ncli-2\n");
    REQUIRE_INT(ws_tls_out_bytes(s->conn), 0);
    REQUIRE(ws_tls_at_record_boundary(s->conn));
    REQUIRE(SSL_get_write_sequence(ssl) >= 3);
    REQUIRE(SSL_get_read_sequence(ssl) >= 1);
}

static uint64_t be64(const uint8_t p[8])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static const uint8_t *info_key(const ws_keys_crypto_info_t *ci, size_t *len)
{
    switch (ci->info.cipher_type) {
    case TLS_CIPHER_AES_GCM_128:
        *len = sizeof(ci->aes_gcm_128.key);
        return ci->aes_gcm_128.key;
    case TLS_CIPHER_AES_GCM_256:
        *len = sizeof(ci->aes_gcm_256.key);
        return ci->aes_gcm_256.key;
    default:
        *len = sizeof(ci->chacha20_poly1305.key);
        return ci->chacha20_poly1305.key;
    }
}

static const uint8_t *info_rec_seq(const ws_keys_crypto_info_t *ci)
{
    switch (ci->info.cipher_type) {
    case TLS_CIPHER_AES_GCM_128:
        return ci->aes_gcm_128.rec_seq;
    case TLS_CIPHER_AES_GCM_256:
        return ci->aes_gcm_256.rec_seq;
    default:
        return ci->chacha20_poly1305.rec_seq;
    }
}

/* Builds and checks the crypto_info of one direction. */
static void build_info(SSL *ssl, const struct combo *k, unsigned dir, ws_keys_crypto_info_t *ci)
{
    size_t len;
    int r = ws_keys_crypto_info(ssl, dir, ci, &len);
    REQUIRE_MSG(r == 0, "ws_keys_crypto_info(%s): %d", dir == WS_TLS_TX ? "TX" : "RX", r);
    REQUIRE_INT(len, k->info_size);
    REQUIRE_INT(ci->info.version, k->version == WS_TLS_V1_3 ? TLS_1_3_VERSION : TLS_1_2_VERSION);
    REQUIRE_INT(ci->info.cipher_type, k->ktls_cipher);
    uint64_t seq = dir == WS_TLS_TX ? SSL_get_write_sequence(ssl) : SSL_get_read_sequence(ssl);
    REQUIRE_INT(be64(info_rec_seq(ci)), seq);
    if (k->version == WS_TLS_V1_2 && k->ktls_cipher == TLS_CIPHER_AES_GCM_128)
        REQUIRE_INT(be64(ci->aes_gcm_128.iv), seq); /* next explicit nonce = sequence */
    if (k->version == WS_TLS_V1_2 && k->ktls_cipher == TLS_CIPHER_AES_GCM_256)
        REQUIRE_INT(be64(ci->aes_gcm_256.iv), seq);
}

/* One client line, read raw from the socket and opened with the RX emulation. */
static void rx_line(th_session_t *s, emu_t *erx, const char *line)
{
    th_child_send(&s->child, line);
    th_buf_t rec = {0}, plain = {0};
    while (plain.len < strlen(line)) {
        REQUIRE_MSG(read_record(s->fd, &rec, 10000), "no record from the client for \"%s\"", line);
        /* The same record under the wrong sequence number must not open (the sequence is
         * in the nonce, or for TLS 1.2 GCM in the additional data). */
        emu_t wrong = *erx;
        bigint_inc(wrong.seq, 8);
        uint8_t wrong_type;
        th_buf_t junk = {0};
        REQUIRE_INT(emu_open(&wrong, rec.p, rec.len, &wrong_type, &junk), -1);
        th_buf_free(&junk);
        uint8_t type = 0;
        long n = emu_open(erx, rec.p, rec.len, &type, &plain);
        if (n < 0) {
            th_child_dump_stderr(&s->child);
            th_die(__FILE__, __LINE__, "RX record (%zu bytes) did not authenticate", rec.len);
        }
        REQUIRE_MSG(type == 23, "RX record type %u", type);
    }
    REQUIRE_MSG(plain.len == strlen(line) && memcmp(plain.p, line, plain.len) == 0,
                "RX plaintext \"%.*s\"", (int)plain.len, (char *)plain.p);
    th_buf_free(&rec);
    th_buf_free(&plain);
}

static void run_emulation(const struct combo *k)
{
    th_session_t s;
    start_combo(&s, k, g_ctx);
    warm_up(&s, k);
    SSL *ssl = ws_tls_ssl(s.conn);
    uint64_t tx_seq = SSL_get_write_sequence(ssl), rx_seq = SSL_get_read_sequence(ssl);

    ws_keys_crypto_info_t tx, rx;
    build_info(ssl, k, WS_TLS_TX, &tx);
    build_info(ssl, k, WS_TLS_RX, &rx);
    size_t klen, klen2;
    const uint8_t *ktx = info_key(&tx, &klen), *krx = info_key(&rx, &klen2);
    REQUIRE(klen == klen2 && memcmp(ktx, krx, klen) != 0); /* the directions have own keys */
    emu_t etx, erx;
    emu_init(&etx, &tx);
    emu_init(&erx, &rx);
    ws_keys_wipe(&tx);
    ws_keys_wipe(&rx);
    static const ws_keys_crypto_info_t zero;
    REQUIRE(memcmp(&tx, &zero, sizeof(zero)) == 0 && memcmp(&rx, &zero, sizeof(zero)) == 0);

    /* From here on BoringSSL is out of the picture, as after a real hand-off. TX: one record,
     * then two records in one send. */
    th_buf_t wire = {0};
    char line[128];
    snprintf(line, sizeof(line), "ktls-tx-1 %s %s\n", vname(k->version), k->std_name);
    emu_seal(&etx, 23, line, strlen(line), &wire);
    th_send_all(s.fd, wire.p, wire.len);
    th_session_expect_client(&s, line);
    wire.len = 0;
    emu_seal(&etx, 23, "ktls-tx-2\n", 10, &wire);
    emu_seal(&etx, 23, "ktls-tx-3\n", 10, &wire);
    th_send_all(s.fd, wire.p, wire.len);
    th_session_expect_client(&s, "ktls-tx-2\nktls-tx-3\n");

    /* RX: the client's records, read raw and opened by hand. */
    rx_line(&s, &erx, "ktls-rx-1\n");
    rx_line(&s, &erx, "ktls-rx-2\n");

    /* close_notify by hand: the client ends, answering with its own close_notify, which must
     * open with the next RX sequence number. */
    static const uint8_t close_notify[2] = {1, 0};
    wire.len = 0;
    emu_seal(&etx, 21, close_notify, 2, &wire);
    th_send_all(s.fd, wire.p, wire.len);
    th_buf_t rec = {0}, plain = {0};
    REQUIRE_MSG(read_record(s.fd, &rec, 10000), "no close_notify from the client");
    uint8_t type = 0;
    REQUIRE_INT(emu_open(&erx, rec.p, rec.len, &type, &plain), 2);
    REQUIRE_MSG(type == 21 && plain.p[0] == 1 && plain.p[1] == 0,
                "client answer: type %u %02x %02x", type, plain.p[0], plain.p[1]);
    REQUIRE_MSG(th_child_wait(&s.child, 5000), "s_client did not exit after close_notify");
    REQUIRE_MSG(WIFEXITED(s.child.status) && WEXITSTATUS(s.child.status) == 0, "s_client status %d",
                s.child.status);
    printf("ok emulated kTLS %s %s: TX from seq %llu, RX from seq %llu, close_notify both ways\n",
           vname(k->version), k->std_name, (unsigned long long)tx_seq, (unsigned long long)rx_seq);
    emu_free(&etx);
    emu_free(&erx);
    th_buf_free(&wire);
    th_buf_free(&rec);
    th_buf_free(&plain);
    th_session_end(&s);
}

/* The client must reject a record sealed for the wrong sequence number: proof that the
 * client really authenticates what the emulation sends, so the positive cases mean
 * something. */
static void run_tamper(const struct combo *k)
{
    th_session_t s;
    start_combo(&s, k, g_ctx);
    warm_up(&s, k);
    ws_keys_crypto_info_t tx;
    build_info(ws_tls_ssl(s.conn), k, WS_TLS_TX, &tx);
    emu_t etx;
    emu_init(&etx, &tx);
    ws_keys_wipe(&tx);
    bigint_inc(etx.seq, 8); /* skip one record */
    th_buf_t wire = {0};
    emu_seal(&etx, 23, "must-not-appear\n", 16, &wire);
    th_send_all(s.fd, wire.p, wire.len);
    REQUIRE_MSG(th_child_wait(&s.child, 5000), "s_client accepted or ignored a bad record");
    REQUIRE(!th_contains(&s.child.out, "must-not-appear", 15));
    REQUIRE_MSG(!WIFEXITED(s.child.status) || WEXITSTATUS(s.child.status) != 0,
                "s_client exited 0 after a forged record");
    printf("ok %s %s: a record under the wrong sequence number is rejected by the client\n",
           vname(k->version), k->std_name);
    emu_free(&etx);
    th_buf_free(&wire);
    th_session_end(&s);
}

/* On a kernel with kTLS: the real hand-off, then plain send/recv on the socket. Elsewhere:
 * the hand-off must fail cleanly and userspace TLS must go on over the same socket. */
static void run_kernel_or_fallback(const struct combo *k, bool kernel_has_ktls)
{
    th_session_t s;
    start_combo(&s, k, g_ctx);
    warm_up(&s, k);

    /* Preconditions: pending ciphertext first. */
    REQUIRE_INT(ws_tls_write(s.conn, "pending\n", 8), 0);
    REQUIRE_INT(ws_ktls_offload(s.conn, s.fd, WS_TLS_TX | WS_TLS_RX), -EBUSY);
    th_flush(s.conn, s.fd);
    th_session_expect_client(&s, "pending\n");

    int r = ws_ktls_offload(s.conn, s.fd, WS_TLS_TX | WS_TLS_RX);
    if (kernel_has_ktls) {
        /* Runs only on a kernel with kTLS (not on the build machine). */
        REQUIRE_MSG(r > 0 && (r & WS_TLS_TX), "ws_ktls_offload: %d", r);
        REQUIRE_INT(ws_tls_offloaded(s.conn), (unsigned)r);
        REQUIRE_INT(ws_tls_write(s.conn, "x", 1), -EOPNOTSUPP);
        REQUIRE_INT(ws_tls_shutdown(s.conn), -EOPNOTSUPP);
        char line[128];
        snprintf(line, sizeof(line), "kernel-tx %s %s\n", vname(k->version), k->std_name);
        th_send_all(s.fd, line, strlen(line));
        th_session_expect_client(&s, line);
        th_child_send(&s.child, "kernel-rx\n");
        if (r & WS_TLS_RX) {
            REQUIRE_INT(ws_tls_feed(s.conn, (const uint8_t *)"x", 1, th_sink, &s.plain),
                        -EOPNOTSUPP);
            th_buf_t got = {0};
            while (got.len < 10) {
                char buf[256];
                union {
                    char b[CMSG_SPACE(sizeof(uint8_t))];
                    struct cmsghdr align;
                } ctl;
                struct iovec iov = {buf, sizeof(buf)};
                struct msghdr msg = {.msg_iov = &iov,
                                     .msg_iovlen = 1,
                                     .msg_control = ctl.b,
                                     .msg_controllen = sizeof(ctl.b)};
                struct pollfd pfd = {.fd = s.fd, .events = POLLIN};
                REQUIRE(poll(&pfd, 1, 10000) == 1);
                ssize_t n = recvmsg(s.fd, &msg, 0);
                REQUIRE_MSG(n > 0, "recvmsg: %s", n < 0 ? strerror(errno) : "EOF");
                REQUIRE_INT(ws_ktls_record_type(&msg), 23);
                th_buf_add(&got, buf, (size_t)n);
            }
            REQUIRE(got.len == 10 && memcmp(got.p, "kernel-rx\n", 10) == 0);
            th_buf_free(&got);
        } else {
            th_session_expect_plain(&s, "kernel-rx\n");
        }
        REQUIRE_INT(ws_ktls_send_close_notify(s.fd), 0);
        REQUIRE_MSG(th_child_wait(&s.child, 5000), "s_client did not exit after close_notify");
        printf("ok kernel kTLS %s %s: %s\n", vname(k->version), k->std_name,
               (r & WS_TLS_RX) ? "TX+RX" : "TX (RX stays in userspace)");
    } else {
        REQUIRE_MSG(r == -ENOENT || r == -ENOPROTOOPT, "ws_ktls_offload without kTLS: %d", r);
        REQUIRE_INT(ws_tls_offloaded(s.conn), 0);
        if (k->version == WS_TLS_V1_3) {
            /* The attempt forgot the captured secrets: nothing left to leak. */
            ws_keys_crypto_info_t ci;
            size_t len;
            REQUIRE_INT(ws_keys_crypto_info(ws_tls_ssl(s.conn), WS_TLS_TX, &ci, &len), -ENOKEY);
        }
        REQUIRE_INT(ws_tls_write(s.conn, "fallback-tx\n", 12), 0);
        th_flush(s.conn, s.fd);
        th_session_expect_client(&s, "fallback-tx\n");
        th_child_send(&s.child, "fallback-rx\n");
        th_session_expect_plain(&s, "fallback-rx\n");
        REQUIRE_INT(ws_tls_shutdown(s.conn), 0);
        th_flush(s.conn, s.fd);
        REQUIRE_MSG(th_child_wait(&s.child, 5000), "s_client did not exit after close_notify");
        printf("ok %s %s: hand-off refused with %s, userspace TLS continues on the socket\n",
               vname(k->version), k->std_name, r == -ENOENT ? "ENOENT" : "ENOPROTOOPT");
    }
    th_session_end(&s);
}

/* ---- API edges ---- */

static void test_probe(bool *supported)
{
    int r = ws_ktls_probe();
    REQUIRE_INT(ws_ktls_probe(), r); /* cached */
    *supported = ws_ktls_supported();
    REQUIRE_INT(*supported, r == 0);
    if (!*supported)
        REQUIRE_MSG(r == -ENOENT || r == -ENOPROTOOPT, "probe: %d", r);
    printf("ok probe: kTLS %s (%d%s)\n", *supported ? "supported" : "not supported", r,
           r == -ENOENT        ? " ENOENT"
           : r == -ENOPROTOOPT ? " ENOPROTOOPT"
                               : "");
}

static void test_api_edges(void)
{
    /* Before the handshake, and bad arguments. */
    ws_tls_conn_t *c = ws_tls_conn_new(g_ctx);
    ws_keys_crypto_info_t ci;
    size_t len;
    REQUIRE_INT(ws_keys_crypto_info(ws_tls_ssl(c), WS_TLS_TX, &ci, &len), -EINVAL);
    REQUIRE_INT(ws_ktls_offload(c, -1, WS_TLS_TX), -ENOTCONN);
    REQUIRE_INT(ws_ktls_enable(-1, ws_tls_ssl(c), 0), -EINVAL);
    REQUIRE_INT(ws_ktls_enable(-1, ws_tls_ssl(c), WS_TLS_RX), -EINVAL);
    ws_tls_conn_free(c);

    /* TLS 1.3 on a context with kTLS off: the secrets are captured all the same, since
     * ws_tls_own_tx() derives its keys from them. */
    ws_tls_ctx_t *plain_ctx = th_server_ctx(g_certs.cert, g_certs.key, WS_TLS_V1_2, false);
    SSL_CTX *cctx = SSL_CTX_new(TLS_method());
    REQUIRE(cctx != NULL);
    th_client_t cl;
    th_client_init(&cl, cctx);
    c = ws_tls_conn_new(plain_ctx);
    int fr;
    REQUIRE(th_inproc_handshake(&cl, c, &fr) == 1 && fr == 0);
    REQUIRE_INT(ws_tls_version(c), WS_TLS_V1_3);
    REQUIRE_INT(ws_keys_crypto_info(ws_tls_ssl(c), WS_TLS_TX, &ci, &len), 0);
    ws_keys_wipe(&ci);
    ws_tls_conn_free(c);
    th_client_free(&cl);

    /* With capture on, both directions derive; ws_keys_forget() drops the secrets. */
    th_client_init(&cl, cctx);
    c = ws_tls_conn_new(g_ctx);
    REQUIRE(th_inproc_handshake(&cl, c, &fr) == 1 && fr == 0);
    REQUIRE_INT(ws_keys_crypto_info(ws_tls_ssl(c), WS_TLS_TX, &ci, &len), 0);
    REQUIRE_INT(ws_keys_crypto_info(ws_tls_ssl(c), WS_TLS_RX, &ci, &len), 0);
    ws_keys_forget(ws_tls_ssl(c));
    REQUIRE_INT(ws_keys_crypto_info(ws_tls_ssl(c), WS_TLS_TX, &ci, &len), -ENOKEY);
    ws_keys_wipe(&ci);
    ws_tls_conn_free(c);
    th_client_free(&cl);
    SSL_CTX_free(cctx);
    ws_tls_ctx_free(plain_ctx);
    printf("ok API edges: EINVAL before handshake, ENOKEY without capture or after forget\n");
}

static bool key_update_seen(void *arg)
{
    ws_keys_crypto_info_t ci;
    size_t len;
    return ws_keys_crypto_info(ws_tls_ssl(arg), WS_TLS_RX, &ci, &len) == -ESTALE;
}

/* A TLS 1.3 KeyUpdate (s_client's "K": update and request one back) makes the captured
 * secrets stale: no hand-off after it. Userspace TLS follows the update both ways. */
static void test_key_update(void)
{
    const char *extra[] = {"-tls1_3", NULL};
    th_session_t s;
    th_session_start(&s, g_ctx, extra);
    th_session_handshake(&s);
    th_child_send(&s.child, "before-update\n");
    th_session_expect_plain(&s, "before-update\n");
    ws_keys_crypto_info_t ci;
    size_t len;
    REQUIRE_INT(ws_keys_crypto_info(ws_tls_ssl(s.conn), WS_TLS_TX, &ci, &len), 0);
    /* s_client takes a command only when it is the whole of one read from stdin: wait for
     * the KeyUpdate to arrive before sending more. */
    th_child_send(&s.child, "K\n");
    REQUIRE_INT(th_pump(s.conn, s.fd, &s.plain, key_update_seen, s.conn, 10000), 0);
    th_child_send(&s.child, "after-update\n");
    th_session_expect_plain(&s, "after-update\n");
    REQUIRE_INT(ws_keys_crypto_info(ws_tls_ssl(s.conn), WS_TLS_TX, &ci, &len), -ESTALE);
    REQUIRE_INT(ws_keys_crypto_info(ws_tls_ssl(s.conn), WS_TLS_RX, &ci, &len), -ESTALE);
    REQUIRE_INT(ws_ktls_offload(s.conn, s.fd, WS_TLS_TX), -ESTALE);
    REQUIRE_INT(ws_tls_offloaded(s.conn), 0);
    REQUIRE_INT(ws_tls_write(s.conn, "server-after-update\n", 20), 0);
    th_flush(s.conn, s.fd);
    th_session_expect_client(&s, "server-after-update\n");
    printf("ok TLS 1.3 KeyUpdate -> crypto_info ESTALE, userspace TLS carries on\n");
    th_session_end(&s);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (th_openssl_path() == NULL) {
        printf("skip: no openssl binary (/usr/bin/openssl or $WS_OPENSSL) for s_client\n");
        return 77;
    }
    th_certs_make(&g_certs);
    g_ctx = th_server_ctx(g_certs.cert, g_certs.key, WS_TLS_V1_2, true);

    bool kernel_has_ktls;
    test_probe(&kernel_has_ktls);
    test_api_edges();
    for (size_t i = 0; i < sizeof(k_combos) / sizeof(k_combos[0]); i++) {
        run_emulation(&k_combos[i]);
        run_kernel_or_fallback(&k_combos[i], kernel_has_ktls);
    }
    run_tamper(&k_combos[0]);
    run_tamper(&k_combos[3]);
    test_key_update();
    if (!kernel_has_ktls)
        printf("note: this kernel has no kTLS; the derivation is verified by emulation only, "
               "the setsockopt path did not run\n");
    ws_tls_ctx_free(g_ctx);
    return check_exit_status("test_ktls");
}
#endif
