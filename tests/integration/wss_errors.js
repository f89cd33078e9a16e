// wss under hostile or broken clients, and the TLS/kTLS options. Raw TCP to the TLS port:
// garbage (plain HTTP, random bytes), a truncated record then FIN, an oversize record header,
// a ClientHello then silence (closed at --handshake-timeout), a bad record after the
// handshake, a client that rejects the certificate, no common ALPN protocol, version or
// cipher, and a TLS 1.2 renegotiation attempt (`openssl s_client -tls1_2`, then `R`). Each
// must end in a clean close (FIN, no RST), add exactly one to its category of
// uringws_tls_errors_total, log a line at -v, and leave the server serving. Then: a 503 over
// TLS past --max-conns (sent after the handshake), a wss client that stops reading (closed
// as a slow consumer), --max-conns-per-ip and --write-stall-timeout over TLS, --no-plain,
// --ktls require/try/off, and bad certificate or key files (one error line, exit 2).
'use strict';

const { spawn, spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const net = require('node:net');
const path = require('node:path');
const { Duplex } = require('node:stream');
const tls = require('node:tls');
const h = require('./lib/harness');
const T = require('./lib/tlsutil');
const { OP, RawClient } = require('./lib/rawws');

const REASONS = ['garbage', 'bad_record', 'oversize_record', 'handshake', 'renegotiation', 'peer_alert',
    'truncated', 'protocol', 'offloaded_write', 'internal', 'handshake_timeout'];

// Raw TCP to port: writes `bytes` (then FIN when `end`), collects what comes back until the
// server closes. Resolves {data, ended (got FIN), error, ms}; fails after timeoutMs.
function rawExchange(port, bytes, { end = false, timeoutMs = 10000 } = {}) {
    return new Promise((resolve, reject) => {
        const started = Date.now();
        const sock = net.connect({ host: '127.0.0.1', port });
        const chunks = [];
        let ended = false, error = null;
        const timer = setTimeout(() => { sock.destroy(); reject(new h.TestFailure(`server did not close within ${timeoutMs} ms`)); }, timeoutMs);
        sock.on('connect', () => {
            if (bytes.length) sock.write(bytes);
            if (end) sock.end();
        });
        sock.on('data', (d) => chunks.push(d));
        sock.on('end', () => { ended = true; });
        sock.on('error', (e) => { error = e; });
        sock.on('close', () => {
            clearTimeout(timer);
            resolve({ data: Buffer.concat(chunks), ended, error, ms: Date.now() - started });
        });
    });
}

// A TLS client over a raw socket that this test can also write to directly: after the
// handshake, bytes written to `raw` land on the wire between the client's records. The
// result's `closed` resolves when the raw socket closes, with `ended` (FIN seen) and `error`
// (a reset) set, so a test can tell a clean close from a reset whatever TLS made of it.
function rawTls(port, tlsOpts) {
    const raw = net.connect({ host: '127.0.0.1', port });
    const result = { raw, chunks: [], ended: false, error: null, tlsError: null };
    result.closed = new Promise((r) => raw.on('close', r));
    raw.on('end', () => { result.ended = true; });
    raw.on('error', (e) => { result.error = e; });
    const duplex = new Duplex({
        read() {},
        write(chunk, enc, cb) {
            if (!raw.destroyed) raw.write(chunk);
            cb();
        },
    });
    raw.on('data', (d) => { result.chunks.push(d); duplex.push(d); });
    raw.on('close', () => duplex.push(null));
    const sock = tls.connect({ socket: duplex, servername: 'localhost', ...tlsOpts });
    sock.on('error', (e) => { result.tlsError = result.tlsError || e; });
    result.tls = sock;
    result.handshake = new Promise((resolve, reject) => {
        sock.on('secureConnect', () => resolve(result));
        sock.on('error', reject);
    });
    return result;
}

function bridgedTls(port, tlsOpts) {
    return rawTls(port, tlsOpts).handshake;
}

// A TLS handshake the server must refuse: waits for the server to close the socket and
// checks that it did so with FIN, not a reset, and that the client saw the handshake fail.
async function refusedHandshake(port, tlsOpts, what) {
    const r = rawTls(port, tlsOpts);
    const ok = await r.handshake.then(() => true, () => false);
    h.check(!ok, () => `${what}: the client got a session`);
    await h.withTimeout(r.closed, 5000, `${what}: server closing the socket`);
    cleanClose(r, what);
}

function cleanClose(r, what) {
    h.check(r.error === null, () => `${what}: the connection ended with ${r.error && r.error.code} (a reset, not a clean close)`);
    h.check(r.ended, () => `${what}: the server never sent FIN`);
}

async function errorCounts(server) {
    const text = await server.metricsText();
    const out = {};
    for (const k of REASONS) out[k] = T.labeledValue(text, 'uringws_tls_errors_total', { reason: k });
    return out;
}

// Runs fn, then checks that exactly one TLS error of `reason` was counted (none of any other
// category) and that the server logged it at -v.
async function expectError(server, reason, what, fn) {
    const before = await errorCounts(server);
    await fn();
    let after;
    await h.pollUntil(async () => { after = await errorCounts(server); return after[reason] > before[reason]; }, 5000,
        () => `${what}: uringws_tls_errors_total{reason="${reason}"} stayed at ${before[reason]}`);
    await h.sleep(100);
    after = await errorCounts(server);
    for (const k of REASONS) {
        h.checkEq(after[k] - before[k], k === reason ? 1 : 0, `${what}: change of uringws_tls_errors_total{reason="${k}"}`);
    }
    h.check(server.log.includes(`TLS error (${reason})`), () => `${what}: no "TLS error (${reason})" line in the -v log`);
    h.info(`${what}: counted as ${reason}`);
}

// The server still does its job: a wss echo round trip.
async function stillServes(server, certs, what) {
    const ws = await T.connectWss(server.wssUrl('/echo'), { ca: certs.ca });
    const got = new Promise((resolve) => ws.addEventListener('message', (e) => resolve(e.data), { once: true }));
    ws.send(`still here after ${what}`);
    h.checkEq(await h.withTimeout(got, 5000, `echo after ${what}`), `still here after ${what}`, `echo after ${what}`);
    const closed = h.closed(ws);
    ws.close(1000);
    await h.withTimeout(closed, 5000, `close after ${what}`);
}

// An interactive s_client on the TLS port, once its handshake is done: { child, out(),
// exited (its exit code), waitExit(what) (fails after 10 s naming what it waited for) }.
async function sClient(server, certs, extra) {
    const args = ['s_client', '-connect', `127.0.0.1:${server.tlsPort}`, '-servername', 'localhost',
        '-CAfile', certs.caFile, ...extra];
    const child = spawn('openssl', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
    await h.pollUntil(() => /Verify return code: 0/.test(out), 10000, () => `s_client handshake did not finish:\n${out}`);
    const waitExit = async (what) => {
        const code = await Promise.race([exited, h.sleep(10000).then(() => 'timeout')]);
        if (code === 'timeout') {
            child.kill('SIGKILL');
            h.fail(`s_client still connected 10 s after ${what}:\n${out}`);
        }
        return code;
    };
    return { child, out: () => out, exited, waitExit };
}

async function renegotiate(server, certs) {
    const s = await sClient(server, certs, ['-tls1_2']);
    await h.sleep(100);
    s.child.stdin.write('R\n'); // s_client: renegotiate
    await s.waitExit('asking to renegotiate');
    h.check(/RENEGOTIATING/.test(s.out()), () => `s_client did not try to renegotiate:\n${s.out()}`);
}

// A TLS 1.3 KeyUpdate asking for one back (s_client's "K"), then an HTTP request. In
// userspace TLS the session follows it and answers; with RX in kernel TLS (6.1 cannot take a
// new RX key) the server closes the connection and counts it as a protocol error. Returns
// s_client's output.
async function keyUpdate(server, certs, kernelRx) {
    const s = await sClient(server, certs, ['-tls1_3', '-crlf']);
    await h.sleep(200); // the hand-off (when there is kTLS) is done
    s.child.stdin.write('K\n');
    await h.sleep(300);
    if (kernelRx) {
        await s.waitExit('a KeyUpdate with RX in kernel TLS');
    } else {
        s.child.stdin.write('GET /healthz HTTP/1.1\nHost: localhost\nConnection: close\n\n');
        await h.pollUntil(() => /HTTP\/1\.1 200/.test(s.out()), 10000, () => `no answer after the KeyUpdate:\n${s.out()}`);
        s.child.stdin.end();
        await s.waitExit('its request was answered and its input ended');
    }
    h.check(/KEYUPDATE/.test(s.out()), () => `s_client did not send a KeyUpdate:\n${s.out()}`);
    return s.out();
}

async function hostileClients(o, certs) {
    const server = await (await T.TlsServer.create(o.server, ['-c', '2', '-v', '--handshake-timeout', '1s'], { certs })).start();
    const port = server.tlsPort;
    const hello = await T.captureClientHello({ ca: certs.ca });
    h.check(hello[0] === 0x16 && hello.length > 100, 'captured a ClientHello record');

    await expectError(server, 'garbage', 'plain HTTP to the TLS port', async () => {
        const r = await rawExchange(port, Buffer.from('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'));
        cleanClose(r, 'plain HTTP to the TLS port');
        h.checkEq(r.data.length, 0, 'bytes answered to plain HTTP on the TLS port');
    });
    await expectError(server, 'garbage', 'random bytes', async () => {
        const junk = crypto.randomBytes(64);
        junk[0] = 0x00;
        cleanClose(await rawExchange(port, junk), 'random bytes');
    });
    await expectError(server, 'truncated', 'truncated ClientHello then FIN', async () => {
        cleanClose(await rawExchange(port, hello.subarray(0, hello.length - 20), { end: true }), 'truncated record');
    });
    await expectError(server, 'oversize_record', 'oversize record header', async () => {
        const r = await rawExchange(port, Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x48, 0x01]), crypto.randomBytes(100)]));
        cleanClose(r, 'oversize record header');
        h.check(r.data.length >= 7 && r.data[0] === 0x15 && r.data[6] === 22, () => `record_overflow alert expected, got ${r.data.toString('hex')}`);
    });
    await expectError(server, 'handshake_timeout', 'ClientHello then silence', async () => {
        const r = await rawExchange(port, hello);
        cleanClose(r, 'ClientHello then silence');
        h.check(r.data.length > 0 && r.data[0] === 0x16, 'the server answered the ClientHello');
        h.check(r.ms >= 900 && r.ms < 5000, () => `closed after ${r.ms} ms; --handshake-timeout is 1 s (tick 250 ms)`);
    });
    await expectError(server, 'bad_record', 'forged record after the handshake', async () => {
        const b = await bridgedTls(port, { ca: certs.ca, minVersion: 'TLSv1.3' });
        b.raw.write(Buffer.concat([Buffer.from([0x17, 0x03, 0x03, 0x00, 0x20]), crypto.randomBytes(32)]));
        await h.withTimeout(b.closed, 5000, 'server closing after a forged record');
        cleanClose(b, 'forged record');
    });
    await expectError(server, 'peer_alert', 'client rejecting the certificate', async () => {
        // s_client verifies inside the handshake and sends a fatal alert (Node's client
        // checks only afterwards and just drops the connection). TLS 1.2: OpenSSL 3.0's TLS
        // 1.3 client sends that alert unencrypted after the server's encrypted flight, which
        // BoringSSL sees as a bad record rather than an alert.
        const r = spawnSync('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost',
            '-tls1_2', '-verify_return_error', '-CAfile', certs.otherCert], { input: '', encoding: 'utf8', timeout: 10000 });
        h.check(r.status !== 0 && /verify error|certificate verify failed/i.test(r.stdout + r.stderr),
            () => `s_client should reject the chain: status ${r.status}\n${r.stdout}${r.stderr}`);
    });
    await expectError(server, 'handshake', 'no common ALPN protocol', () =>
        refusedHandshake(port, { ca: certs.ca, ALPNProtocols: ['h2'] }, 'no common ALPN protocol'));
    await expectError(server, 'handshake', 'no common cipher (TLS 1.2 CBC only)', () =>
        refusedHandshake(port, { ca: certs.ca, maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA256' },
            'no common cipher (TLS 1.2 CBC only)'));
    await expectError(server, 'renegotiation', 'TLS 1.2 renegotiation (s_client R)', () => renegotiate(server, certs));
    await expectError(server, 'renegotiation', 'TLS 1.2 renegotiation (Node, FIN checked)', async () => {
        const r = rawTls(port, { ca: certs.ca, maxVersion: 'TLSv1.2' });
        await r.handshake;
        r.tls.renegotiate({}, () => {}); // the server refuses; the callback sees the error
        await h.withTimeout(r.closed, 5000, 'server closing after a renegotiation attempt');
        cleanClose(r, 'renegotiation attempt');
    });
    const kernelRx = /uringws_ktls_available\{mode="auto",probe="ok"\} 1/.test(await server.metricsText());
    if (kernelRx) {
        await expectError(server, 'protocol', 'TLS 1.3 KeyUpdate with RX in kernel TLS', () => keyUpdate(server, certs, true));
        h.check(server.log.includes('KeyUpdate with RX in kernel TLS'), 'the log names the KeyUpdate');
    } else {
        const before = await errorCounts(server);
        await keyUpdate(server, certs, false);
        h.checkEq(JSON.stringify(await errorCounts(server)), JSON.stringify(before), 'TLS errors after a KeyUpdate in userspace TLS');
        h.info('TLS 1.3 KeyUpdate (s_client K) in userspace TLS: followed, the request after it answered');
    }
    // A connect-and-close (health checkers, scanners) is not an error.
    const quiet = await errorCounts(server);
    cleanClose(await rawExchange(port, Buffer.alloc(0), { end: true }), 'connect then FIN');
    await h.sleep(200);
    h.checkEq(JSON.stringify(await errorCounts(server)), JSON.stringify(quiet), 'TLS errors after a connect-then-close');

    await stillServes(server, certs, 'the hostile clients');
    await h.pollUntil(async () => (await server.value('uringws_connections_by_transport', { transport: 'tls' })) === 0, 10000,
        () => 'TLS connections left open after the hostile clients');
    await server.stop();
}

// Past --max-conns a TLS client gets its 503 inside TLS, once the handshake is done.
async function limitOverTls(o, certs) {
    const server = await (await T.TlsServer.create(o.server, ['-c', '1', '--max-conns', '1'], { certs })).start();
    await h.sleep(300); // the harness's health check connection has gone
    const ws = await T.connectWss(server.wssUrl('/lobby'), { ca: certs.ca });
    const r = await T.httpsRequest(server.tlsPort, '/healthz', { ca: certs.ca });
    h.checkEq(r.status, 503, 'HTTPS request past --max-conns');
    ws.close(1000);
    await server.stop();
}

// TLS only (--no-plain) and TLS 1.3 only (--tls-min 1.3): health over TLS, no plain port, a
// TLS 1.2 client refused in the handshake.
// A wss client that stops reading is a slow consumer like any other: its backlog stays
// plaintext in the send queue (at most one batch is encrypted ahead), --max-queue closes it
// with 1008, and the reading client of the same room gets everything.
async function slowConsumer(o, certs) {
    const server = await (await T.TlsServer.create(o.server, ['-c', '2', '--max-queue', '1m', '-v'], { certs })).start();
    const tlsOpts = { tls: { ca: certs.ca, servername: 'localhost' } };
    const slow = await RawClient.connect(server.tlsPort, '/slow', {}, tlsOpts);
    slow.socket.pause();
    const n = 400, size = 64 * 1024;
    let got = 0;
    const fast = await T.connectWss(server.wssUrl('/slow'), { ca: certs.ca });
    const all = new Promise((resolve) => fast.addEventListener('message', () => { if (++got === n) resolve(); }));
    let fastClosed = null;
    fast.addEventListener('close', (ev) => { fastClosed = ev.code; });
    const payload = crypto.randomBytes(size);
    for (let i = 0; i < n && fastClosed === null; i++) {
        fast.send(payload);
        // The reader keeps its own backlog far below --max-queue: at most 4 messages ahead.
        while (i - got >= 4 && fastClosed === null) await h.sleep(1);
    }
    h.check(fastClosed === null, () => `the reading wss client was closed (${fastClosed})`);
    await h.withTimeout(all, 30000, `the reading wss client got ${got} of ${n} messages`);
    await h.pollUntil(async () => (await server.value('uringws_slow_consumer_closes_total', {})) >= 1, 10000,
        () => 'the paused wss client was not closed as a slow consumer');
    await h.sleep(200);
    h.checkEq(await server.value('uringws_slow_consumer_closes_total', {}), 1, 'slow-consumer closes (the paused client only)');
    h.check(/slow consumer: .*over --max-queue .*closing with 1008/.test(server.log), 'slow-consumer log line');
    slow.socket.destroy();
    fast.close(1000);
    await server.stop();
}

// The per-address limit and the write-stall timeout hold for TLS connections too: the 429
// comes inside TLS after the handshake, and a wss client that reads nothing is dropped once
// its ciphertext stops moving.
async function limitsOverTls(o, certs) {
    const server = await (await T.TlsServer.create(o.server, ['-c', '2', '-v', '--max-conns-per-ip', '1',
        '--write-stall-timeout', '1s', '--max-queue', '256m', '--ping-interval', '0'], { certs })).start();
    const from = (addr) => ({ tls: { ca: certs.ca, servername: 'localhost', localAddress: addr } });
    const stuck = await RawClient.connect(server.tlsPort, '/stall', {}, from('127.0.0.3'));
    const second = await RawClient.connect(server.tlsPort, '/stall', {}, from('127.0.0.3')).then(() => null, (e) => e.message);
    h.check(second && /429/.test(second), `a second wss connection from 127.0.0.3: ${second || 'upgraded'}`);
    h.checkEq(await server.value('uringws_per_ip_rejects_total', {}), 1, 'per-address refusals over TLS');
    const pub = await RawClient.connect(server.tlsPort, '/stall', { message: () => {} }, from('127.0.0.4'));
    await stuck.send(OP.TEXT, Buffer.from('x'));
    stuck.socket.pause();
    const big = crypto.randomBytes(256 << 10);
    for (let i = 0; i < 96; i++) {
        await pub.send(OP.BINARY, big);
        await new Promise((r) => setImmediate(r)); // the publisher reads its own copies meanwhile
    }
    await h.pollUntil(async () => (await server.value('uringws_write_stall_drops_total', {})) === 1, 10000,
        () => 'the paused wss client was not dropped by --write-stall-timeout');
    h.check(/no send progress for 1000 ms/.test(server.log), 'write-stall log line');
    stuck.socket.destroy();
    await pub.close(1000);
    await server.stop();
}

async function noPlain(o, certs) {
    const server = await (await T.TlsServer.create(o.server, ['-c', '2', '--tls-min', '1.3'], { certs, noPlain: true })).start();
    const refused = await new Promise((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port: server.port });
        s.on('connect', () => { s.destroy(); resolve(false); });
        s.on('error', (e) => resolve(e.code === 'ECONNREFUSED'));
    });
    h.check(refused, `--no-plain: port ${server.port} must not be listening`);
    await stillServes(server, certs, '--no-plain start');
    h.check(/listening on 127\.0\.0\.1:\d+ \(wss\)/.test(server.log), () => `--no-plain listening line:\n${server.log}`);
    const before = await server.value('uringws_tls_errors_total', { reason: 'handshake' });
    const err = await new Promise((resolve) => {
        const s = tls.connect({ host: '127.0.0.1', port: server.tlsPort, servername: 'localhost', ca: certs.ca, maxVersion: 'TLSv1.2' });
        s.on('error', resolve);
        s.on('secureConnect', () => { s.destroy(); resolve(null); });
    });
    h.check(err !== null, '--tls-min 1.3 must refuse a TLS 1.2 client');
    await h.pollUntil(async () => (await server.value('uringws_tls_errors_total', { reason: 'handshake' })) === before + 1, 5000,
        () => '--tls-min 1.3: the refused TLS 1.2 handshake was not counted');
    const r = await T.httpsRequest(server.tlsPort, '/healthz', { ca: certs.ca });
    h.checkEq(r.protocol, 'TLSv1.3', '--tls-min 1.3: negotiated version');
    await server.stop();
}

// --ktls: the probe result decides what require and auto do; try attempts the hand-off on
// every connection and must fall back cleanly where the kernel refuses.
async function ktlsModes(o, certs) {
    const base = ['-p', '0', '-b', '127.0.0.1', '--tls-port', '0', '--tls-cert', certs.chain, '--tls-key', certs.key];
    const auto = await (await T.TlsServer.create(o.server, ['-c', '1'], { certs })).start();
    const probe = /uringws_ktls_available\{mode="auto",probe="([A-Za-z_]+)"\} (\d)/.exec(await auto.metricsText());
    h.check(probe, 'uringws_ktls_available{mode="auto",...} in /metrics');
    const hasKtls = probe[1] === 'ok';
    h.info(`kTLS probe on this kernel: ${probe[1]}`);
    h.check(hasKtls ? /kTLS: available/.test(auto.log) : /kTLS: unavailable \(TCP_ULP "tls": .*\): TLS stays in userspace/.test(auto.log),
        () => `--ktls auto start-up line:\n${auto.log}`);
    await auto.stop();

    if (!hasKtls) {
        const r = spawnSync(o.server, [...base, '--ktls', 'require'], { encoding: 'utf8', timeout: 10000 });
        h.checkEq(r.status, 1, '--ktls require without kTLS: exit status');
        h.check(/kTLS required \(--ktls require\) but this kernel refuses TCP_ULP "tls"/.test(r.stderr), () => `--ktls require message:\n${r.stderr}`);
        h.checkEq(r.stderr.trim().split('\n').length, 1, `--ktls require: one line (${r.stderr})`);
    }

    const off = await (await T.TlsServer.create(o.server, ['-c', '1', '--ktls', 'off'], { certs })).start();
    h.check(/uringws_ktls_available\{mode="off",probe="not_probed"\} 0/.test(await off.metricsText()), '--ktls off in /metrics');
    await off.stop();

    // try: every connection goes through the hand-off (recv stopped, offload attempted, recv
    // re-armed). Clients send at once after open, so bytes arrive while the recv is stopped.
    const tryServer = await (await T.TlsServer.create(o.server, ['-c', '2', '--ktls', 'try', '-v'], { certs })).start();
    const n = 20, per = 50;
    const before = await tryServer.value('uringws_ktls_refused_total', {});
    await h.mapLimit([...Array(n).keys()], n, async (i) => {
        const ws = await T.connectWss(tryServer.wssUrl('/echo'), { ca: certs.ca, ...(i % 2 ? { maxVersion: 'TLSv1.2' } : {}) });
        const got = [];
        const all = new Promise((resolve) => ws.addEventListener('message', (e) => { got.push(e.data); if (got.length === per) resolve(); }));
        for (let k = 0; k < per; k++) ws.send(`c${i} m${k} ${'x'.repeat(k * 37)}`);
        await h.withTimeout(all, 10000, `--ktls try: echoes to client ${i}`);
        for (let k = 0; k < per; k++) h.checkEq(got[k], `c${i} m${k} ${'x'.repeat(k * 37)}`, `--ktls try: echo ${k} of client ${i}`);
        const closed = h.closed(ws);
        ws.close(1000);
        const ev = await h.withTimeout(closed, 5000, '--ktls try close');
        h.check(ev.code === 1000 && ev.wasClean, () => `--ktls try close: ${ev.code} ${ev.wasClean}`);
    });
    const text = await tryServer.metricsText();
    const refused = T.labeledValue(text, 'uringws_ktls_refused_total', {});
    const offloaded = T.labeledValue(text, 'uringws_ktls_offloads_total', {});
    if (hasKtls) {
        h.check(offloaded >= n, () => `--ktls try on a kernel with kTLS: ${offloaded} hand-offs for ${n} connections`);
    } else {
        h.checkEq(refused - before, n, '--ktls try: hand-offs refused (one per connection)');
        h.checkEq(offloaded, 0, '--ktls try: hand-offs done on a kernel without kTLS');
        h.check(/kTLS hand-off refused \(No such file or directory/.test(tryServer.log), () => `--ktls try: refusal line:\n${tryServer.log}`);
    }
    h.checkEq(T.labeledValue(text, 'uringws_tls_errors_total', {}), 0, '--ktls try: TLS errors');
    await tryServer.stop();
    return hasKtls ? 'kTLS present' : `kTLS absent (${probe[1]}): require refused, try fell back ${n}/${n}`;
}

// Configuration errors: exit status 2 and exactly one line saying what is wrong.
function badConfig(o, certs) {
    const cases = [
        { what: 'missing certificate file', args: ['--tls-cert', path.join(certs.dir, 'nope.pem'), '--tls-key', certs.key], re: /cannot open certificate file .*nope\.pem/ },
        { what: 'key that does not match', args: ['--tls-cert', certs.chain, '--tls-key', certs.otherKey], re: /does not match the certificate/ },
        { what: 'key file as certificate', args: ['--tls-cert', certs.key, '--tls-key', certs.key], re: /cannot load the certificate chain/ },
        { what: 'certificate file as key', args: ['--tls-cert', certs.chain, '--tls-key', certs.chain], re: /cannot load the private key/ },
    ];
    for (const c of cases) {
        const r = spawnSync(o.server, ['-p', '0', '-b', '127.0.0.1', '--tls-port', '0', ...c.args], { encoding: 'utf8', timeout: 10000 });
        const lines = (r.stdout + r.stderr).trim().split('\n');
        h.checkEq(r.status, 2, `${c.what}: exit status`);
        h.check(lines.length === 1 && c.re.test(lines[0]), () => `${c.what}: want one line matching ${c.re}, got:\n${r.stdout}${r.stderr}`);
    }
    const usage = [
        [['--tls-cert', certs.chain, '--tls-key', certs.key], /need --tls-port/],
        [['--no-plain'], /nothing to serve/],
        [['--tls-port', '0', '--tls-cert', certs.chain], /needs a certificate and a key/],
        [['--tls-port', '0', '--tls-cert', certs.chain, '--tls-key', certs.key, '--tls-min', '1.1'], /--tls-min/],
        [['--tls-port', '0', '--tls-cert', certs.chain, '--tls-key', certs.key, '--ktls', 'maybe'], /--ktls/],
    ];
    for (const [args, re] of usage) {
        const r = spawnSync(o.server, ['-p', '0', ...args], { encoding: 'utf8', timeout: 10000 });
        h.check(r.status === 2 && re.test(r.stderr) && r.stderr.trim().split('\n').length === 1,
            () => `uringws ${args.join(' ')}: want exit 2 and one line matching ${re}, got ${r.status}:\n${r.stderr}`);
    }
}

async function main() {
    const o = h.parseOptions();
    const certs = T.makeCerts();
    badConfig(o, certs);
    h.info('bad certificate/key and flag combinations: exit 2 with one line each');
    await hostileClients(o, certs);
    await limitOverTls(o, certs);
    await slowConsumer(o, certs);
    await limitsOverTls(o, certs);
    h.info('a paused wss client was closed as a slow consumer; the reading one got everything');
    await noPlain(o, certs);
    const k = await ktlsModes(o, certs);
    return `hostile TLS clients closed cleanly and counted; ${k}`;
}

h.run(path.basename(__filename, '.js'), main, { timeoutMs: 170000 });
