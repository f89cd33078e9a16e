// Microbenchmark for tls/: what one recipient's TLS costs the server per batch of frames, the
// work a wss broadcast repeats for every subscriber. A server session (ws_tls over an
// in-memory BoringSSL client handshake, TLS 1.3 AES-128-GCM as browsers negotiate it) seals
// the batch with ws_tls_writev() and the pending output is consumed as a finished send
// would. Two write paths:
//   ssl_write: BoringSSL's SSL_write (its write buffer is allocated, sealed into, copied to
//              our output, wiped and freed per call);
//   own_tx:    ws_tls_own_tx(), records sealed in place in our output (tls/record.c).
// And the AEAD alone (EVP_AEAD seal in place), the floor either path sits on.
// Arguments: batch bytes (one frame of that size). The certificate is made at start-up.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unistd.h>

#include <openssl/aead.h>
#include <openssl/bio.h>
#include <openssl/ec_key.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

extern "C" {
#include "uringws/tls.h"
}

namespace
{

// A throwaway P-256 certificate in a temporary directory, for the server context.
struct Cert {
    char dir[64] = "/tmp/bench_tls_XXXXXX";
    std::string cert, key;
    bool ok = false;
    Cert()
    {
        if (mkdtemp(dir) == nullptr)
            return;
        cert = std::string(dir) + "/cert.pem";
        key = std::string(dir) + "/key.pem";
        EC_KEY *ec = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);
        EVP_PKEY *pk = EVP_PKEY_new();
        X509 *x = X509_new();
        ok = ec && pk && x && EC_KEY_generate_key(ec) && EVP_PKEY_assign_EC_KEY(pk, ec);
        if (!ok)
            return;
        X509_set_version(x, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
        X509_gmtime_adj(X509_getm_notBefore(x), 0);
        X509_gmtime_adj(X509_getm_notAfter(x), 86400);
        X509_NAME *name = X509_get_subject_name(x);
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                   reinterpret_cast<const uint8_t *>("bench"), -1, -1, 0);
        X509_set_issuer_name(x, name);
        X509_set_pubkey(x, pk);
        ok = X509_sign(x, pk, EVP_sha256()) > 0;
        FILE *fc = fopen(cert.c_str(), "w"), *fk = fopen(key.c_str(), "w");
        ok = ok && fc && fk && PEM_write_X509(fc, x) &&
             PEM_write_PrivateKey(fk, pk, nullptr, nullptr, 0, nullptr, nullptr);
        if (fc)
            fclose(fc);
        if (fk)
            fclose(fk);
        X509_free(x);
        EVP_PKEY_free(pk);
    }
    ~Cert()
    {
        unlink(cert.c_str());
        unlink(key.c_str());
        rmdir(dir);
    }
};

int sink(void *, uint8_t *, size_t)
{
    return 0;
}

// Moves the server's pending output into the client (and client output into the server).
void pump(SSL *cl, BIO *crd, BIO *cwr, ws_tls_conn_t *s)
{
    uint8_t buf[16384];
    int n;
    while ((n = BIO_read(cwr, buf, sizeof(buf))) > 0)
        if (ws_tls_feed(s, buf, static_cast<size_t>(n), sink, nullptr) < 0)
            return;
    struct iovec iov[8];
    int cnt;
    while ((cnt = ws_tls_pending_out(s, iov, 8)) > 0) {
        size_t took = 0;
        for (int i = 0; i < cnt; i++) {
            BIO_write(crd, iov[i].iov_base, static_cast<int>(iov[i].iov_len));
            took += iov[i].iov_len;
        }
        ws_tls_consume_out(s, took);
    }
    (void)cl;
}

void BM_tls_write(benchmark::State &state, bool own)
{
    static Cert cert;
    if (!cert.ok) {
        state.SkipWithError("could not make a certificate");
        return;
    }
    ws_tls_config_t cfg;
    ws_tls_config_init(&cfg);
    cfg.cert_file = cert.cert.c_str();
    cfg.key_file = cert.key.c_str();
    ws_tls_ctx_t *ctx = nullptr;
    char err[256];
    if (ws_tls_ctx_new(&cfg, &ctx, err, sizeof(err)) != 0) {
        state.SkipWithError(err);
        return;
    }
    SSL_CTX *cctx = SSL_CTX_new(TLS_method());
    SSL_CTX_set_min_proto_version(cctx, TLS1_3_VERSION);
    SSL *cl = SSL_new(cctx);
    BIO *crd = BIO_new(BIO_s_mem()), *cwr = BIO_new(BIO_s_mem());
    SSL_set_bio(cl, crd, cwr);
    SSL_set_connect_state(cl);
    ws_tls_conn_t *s = ws_tls_conn_new(ctx);
    for (int i = 0; i < 16 && SSL_do_handshake(cl) != 1; i++)
        pump(cl, crd, cwr, s);
    pump(cl, crd, cwr, s);
    uint8_t drain[16384];
    while (SSL_read(cl, drain, sizeof(drain)) > 0) {
    }
    BIO_reset(crd);
    if (!ws_tls_handshake_done(s) || (own && ws_tls_own_tx(s) != 0)) {
        state.SkipWithError("handshake or own TX failed");
    } else {
        const size_t n = static_cast<size_t>(state.range(0));
        auto *frame = static_cast<uint8_t *>(std::malloc(n));
        std::memset(frame, 'x', n);
        struct iovec in = {frame, n}, out[8];
        for (auto _ : state) {
            if (ws_tls_writev(s, &in, 1) != 0) {
                state.SkipWithError("write failed");
                break;
            }
            int cnt = ws_tls_pending_out(s, out, 8);
            size_t took = 0;
            for (int i = 0; i < cnt; i++)
                took += out[i].iov_len;
            ws_tls_consume_out(s, took);
        }
        state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(n));
        std::free(frame);
    }
    ws_tls_conn_free(s);
    SSL_free(cl);
    SSL_CTX_free(cctx);
    ws_tls_ctx_free(ctx);
}

void BM_aead_seal(benchmark::State &state, const EVP_AEAD *aead)
{
    const size_t n = static_cast<size_t>(state.range(0));
    uint8_t key[32] = {1}, nonce[12] = {2}, ad[5] = {23, 3, 3, 0, 0};
    EVP_AEAD_CTX ctx;
    EVP_AEAD_CTX_init(&ctx, aead, key, EVP_AEAD_key_length(aead), 16, nullptr);
    auto *buf = static_cast<uint8_t *>(std::malloc(n + 16));
    std::memset(buf, 'x', n);
    size_t out_len;
    for (auto _ : state) {
        nonce[11]++;
        EVP_AEAD_CTX_seal(&ctx, buf, &out_len, n + 16, nonce, 12, buf, n, ad, sizeof(ad));
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(n));
    std::free(buf);
    EVP_AEAD_CTX_cleanup(&ctx);
}

void Sizes(benchmark::internal::Benchmark *b)
{
    for (int n : {128, 1024, 4096, 16384})
        b->Arg(n);
}

BENCHMARK_CAPTURE(BM_tls_write, ssl_write, false)->Apply(Sizes);
BENCHMARK_CAPTURE(BM_tls_write, own_tx, true)->Apply(Sizes);
BENCHMARK_CAPTURE(BM_aead_seal, aes_128_gcm, EVP_aead_aes_128_gcm())->Apply(Sizes);
BENCHMARK_CAPTURE(BM_aead_seal, aes_256_gcm, EVP_aead_aes_256_gcm())->Apply(Sizes);
BENCHMARK_CAPTURE(BM_aead_seal, chacha20_poly1305, EVP_aead_chacha20_poly1305())->Apply(Sizes);

} // namespace
