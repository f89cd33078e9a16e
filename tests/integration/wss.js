// wss: the server with a TLS listener (-c 2, a certificate chain made with openssl at test
// time: root -> intermediate -> leaf; clients trust only the root). For TLS 1.2 and 1.3 with
// each of AES-128-GCM, AES-256-GCM and ChaCha20-Poly1305 (the client offers only that one
// suite and version), 200 undici WebSocket clients over wss join one room; 4 of them send 25
// messages each (text and binary, 0 B to 256 KiB, sizes around the 16 KiB TLS record
// size): every client must receive every message byte-exact (sha256), with its type, in
// per-sender order and in the same order as every other client. /metrics must show the
// handshakes under that version and cipher, and no TLS errors. The same room plan also runs
// over plain ws:// for a deliveries/s comparison (client-bound here: 2 cores shared with the
// server). Then /echo over wss (undici, and a raw TLS client that pipelines the upgrade
// request with frames in one write and fragments messages), HTTPS pages with ALPN
// http/1.1, an RSA certificate, and a clean SIGTERM (close 1001 over TLS, exit 0).
'use strict';

const os = require('node:os');
const path = require('node:path');
const tls = require('node:tls');
const crypto = require('node:crypto');
const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads');
const { setImmediate: tick } = require('node:timers/promises');
const h = require('./lib/harness');
const { Rng, sha256, Catalogue, Tracker, trackWebSocket, compareOrders } = require('./lib/messages');
const { OP, encodeFrame, FrameParser, RawClient, handshakeRequest, acceptFor } = require('./lib/rawws');
const T = require('./lib/tlsutil');

const KiB = 1024;
const MiB = 1 << 20;

// The messages of one room, from the seed: senders s0..s{n-1}, each a list of
// {binary, text, bytes}; every message unique so the catalogue can name it by its hash.
function makePlan(seed, cfg) {
    const rng = new Rng(seed);
    const cat = new Catalogue(cfg.room);
    const sends = [];
    // Around one TLS record (16384 bytes of plaintext; the frame header is 4 bytes for these
    // lengths, 10 from 65536), and the 16/64-bit length encodings.
    const specials = [0, 1, 125, 126, 16379, 16380, 16381, 16384, 32768, 65535, 65536, 256 * KiB];
    let next = 0;
    for (let s = 0; s < cfg.senders; s++) {
        const list = [];
        for (let i = 0; i < cfg.perSender; i++) {
            let size;
            if ((i * cfg.senders + s) % 3 === 0 && next < specials.length) size = specials[next++];
            else {
                const r = rng.next();
                size = r < 0.7 ? rng.int(1, 200) : r < 0.92 ? rng.int(201, 4096) : rng.int(4097, 20000);
            }
            for (;;) {
                const binary = size === 256 * KiB ? true : rng.chance(0.4);
                const text = binary ? null : rng.text(size);
                const bytes = binary ? rng.bytes(size) : Buffer.from(text, 'utf8');
                if (cat.add(`s${s}`, binary, bytes)) {
                    list.push({ binary, text, bytes });
                    break;
                }
            }
        }
        sends.push(list);
    }
    return { cat, sends };
}

// ---------------------------------------------------------------- worker side

async function workerMain() {
    const { url, tlsOpts, seed, cfg, clients } = workerData;
    const plan = makePlan(seed, cfg);
    const agent = tlsOpts ? T.dispatcher(tlsOpts) : null;
    const live = [];
    let closing = false;
    await h.mapLimit(clients, 20, async (c) => {
        const t = new Tracker(c.label, plan.cat);
        const ws = tlsOpts ? await T.connectWss(url, null, { binaryType: c.binaryType, agent })
            : await h.connectWs(url, { binaryType: c.binaryType });
        trackWebSocket(ws, t);
        ws.addEventListener('error', () => { if (!closing) t.error('error event'); });
        ws.addEventListener('close', (ev) => { if (!closing) t.error(`closed unexpectedly: code ${ev.code} "${ev.reason}"`); });
        live.push({ c, t, ws });
    });
    parentPort.postMessage({ t: 'ready' });
    await new Promise((resolve) => parentPort.once('message', resolve)); // 'go'
    const started = process.hrtime.bigint();
    const senders = live.filter((e) => e.c.sender !== null).map(async (e) => {
        for (const m of plan.sends[e.c.sender]) {
            if (m.binary) e.ws.send(new Uint8Array(m.bytes));
            else e.ws.send(m.text);
            while (e.ws.bufferedAmount > 4 * MiB && e.ws.readyState === 1) await h.sleep(2);
            await tick();
        }
    });
    const all = Promise.all([...senders, ...live.map((e) => e.t.completion())]);
    const inTime = await Promise.race([all.then(() => true), h.sleep(cfg.deliverMs).then(() => false)]);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    if (inTime) await h.sleep(300); // anything beyond the expected messages would arrive now
    parentPort.postMessage({ t: 'result', inTime, ms, results: live.map((e) => e.t.result()) });
    await new Promise((resolve) => parentPort.once('message', resolve)); // 'close'
    closing = true;
    const errors = [];
    await h.mapLimit(live, 50, async (e) => {
        const done = h.closed(e.ws);
        e.ws.close(1000, 'bye');
        try {
            const ev = await h.withTimeout(done, 10000, `${e.c.label}: close event after close(1000)`);
            if (ev.code !== 1000 || !ev.wasClean) errors.push(`${e.c.label}: close 1000 answered with code ${ev.code}, wasClean ${ev.wasClean}`);
        } catch (err) {
            errors.push(err.message);
        }
    });
    if (agent) await agent.close();
    parentPort.postMessage({ t: 'closed', errors: errors.slice(0, 10) });
}

// ---------------------------------------------------------------- main side

// One room of cfg.clients clients spread over workers; returns {ms, deliveries}.
async function roomRun(o, url, tlsOpts, cfg, what) {
    const plan = makePlan(o.seed, cfg);
    const clients = [];
    for (let i = 0; i < cfg.clients; i++) {
        clients.push({ label: `C${i}`, sender: i < cfg.senders ? i : null, binaryType: i % 10 === 7 ? 'blob' : 'arraybuffer' });
    }
    const workers = [];
    for (let w = 0; w < cfg.workers; w++) {
        const mine = clients.filter((_, i) => i % cfg.workers === w);
        const worker = new Worker(__filename, { workerData: { url, tlsOpts, seed: o.seed, cfg, clients: mine } });
        const inbox = [];
        let wake = null;
        worker.on('message', (m) => {
            if (m.t === 'fatal') h.abort(`${what}: worker ${w}: ${m.msg}`);
            else { inbox.push(m); if (wake) wake(); }
        });
        worker.on('error', (e) => h.abort(`${what}: worker ${w}: ${e.stack || e}`));
        worker.on('exit', (code) => { if (code !== 0) h.abort(`${what}: worker ${w} exited with ${code}`); });
        const next = async (t) => {
            while (!inbox.length) await new Promise((r) => { wake = r; });
            const m = inbox.shift();
            if (m.t !== t) h.fail(`${what}: worker ${w}: expected ${t}, got ${JSON.stringify(m).slice(0, 300)}`);
            return m;
        };
        workers.push({ worker, next });
    }
    await h.withTimeout(Promise.all(workers.map((w) => w.next('ready'))), 60000, `${what}: all clients connected`);
    for (const w of workers) w.worker.postMessage({ t: 'go' });
    const results = await Promise.all(workers.map((w) => w.next('result')));
    const all = results.flatMap((r) => r.results).sort((x, y) => Number(x.label.slice(1)) - Number(y.label.slice(1)));
    const problems = [];
    if (results.some((r) => !r.inTime)) problems.push(`not all messages delivered within ${cfg.deliverMs / 1000} s`);
    for (const r of all) {
        problems.push(...r.errors);
        if (r.count !== r.expected) problems.push(`${r.label}: received ${r.count} of ${r.expected} messages`);
    }
    const diff = compareOrders(plan.cat, all);
    if (diff) problems.push(diff);
    if (problems.length) h.fail(`${what}: ${problems.length} problem(s), first ones:\n  ${[...new Set(problems)].slice(0, 15).join('\n  ')}`);
    for (const w of workers) w.worker.postMessage({ t: 'close' });
    const closed = await h.withTimeout(Promise.all(workers.map((w) => w.next('closed'))), 60000, `${what}: clients closing`);
    const closeErrors = closed.flatMap((r) => r.errors);
    if (closeErrors.length) h.fail(`${what}: close handshake problems:\n  ${closeErrors.join('\n  ')}`);
    const ms = Math.max(...results.map((r) => r.ms));
    return { ms, deliveries: plan.cat.size * cfg.clients, bytes: plan.cat.bytes * cfg.clients };
}

// CPU seconds (user + system) the server process has used: the per-run difference says what
// the server spent, whatever the clients' share of the machine.
function cpuSeconds(pid) {
    const f = require('node:fs').readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
}

function addUnique(cat, rng, sender, size, binary, list) {
    for (;;) {
        const text = binary ? null : rng.text(size);
        const bytes = binary ? rng.bytes(size) : Buffer.from(text, 'utf8');
        if (cat.add(sender, binary, bytes)) {
            list.push({ binary, text, bytes });
            return;
        }
        if (size === 0) throw new Error('duplicate empty message in plan');
    }
}

// /echo over wss: an undici client (the default TLS version and suite) and a raw TLS client
// that sends the upgrade request and its first frames in one write, then fragmented messages
// with a ping in between.
async function echoChecks(o, server, certs) {
    const rng = new Rng(o.seed ^ 0x5eed);
    const cat = new Catalogue('wss echo');
    const sends = [];
    for (const [n, bin] of [[0, false], [0, true], [1, true], [125, false], [126, true], [16379, false], [16380, true],
        [16384, false], [16385, true], [65535, true], [65536, false], [MiB, true], [MiB, false], [300, false]]) {
        addUnique(cat, rng, 'A', n, bin, sends);
    }
    for (let i = 0; i < 30; i++) addUnique(cat, rng, 'A', rng.int(1, 70000), rng.chance(0.5), sends);
    const t = new Tracker('echo A', cat);
    const ws = await T.connectWss(server.wssUrl('/echo'), { ca: certs.ca });
    trackWebSocket(ws, t);
    ws.addEventListener('error', () => t.error('error event'));
    for (const m of sends) {
        ws.send(m.binary ? new Uint8Array(m.bytes) : m.text);
        await h.sleep(0);
    }
    await h.withTimeout(t.completion(), 30000, `wss echo: ${t.count}/${t.expected} back`)
        .catch((e) => h.fail(`${e.message}; ${t.errors.join('; ')}`));
    await h.sleep(200);
    h.check(t.errors.length === 0, () => `wss echo:\n  ${t.errors.join('\n  ')}`);
    h.checkEq(t.count, t.expected, 'messages echoed over wss');
    const closed = h.closed(ws);
    ws.close(1000);
    const ev = await h.withTimeout(closed, 5000, 'wss echo close');
    h.check(ev.code === 1000 && ev.wasClean, () => `wss echo close: code ${ev.code}, wasClean ${ev.wasClean}`);

    // Raw TLS: upgrade request + two frames in the same write (the server must find the
    // frames after the request head inside one TLS record).
    const key = crypto.randomBytes(16).toString('base64');
    const first = Buffer.from('pipelined \u00e9cho', 'utf8');
    const second = rng.bytes(20000); // spans two records
    const sock = tls.connect({ host: '127.0.0.1', port: server.tlsPort, ca: certs.ca, servername: 'localhost',
        minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' });
    const got = [];
    let head = Buffer.alloc(0), parsed = false;
    const parser = new FrameParser((f) => got.push(f));
    const gotAll = new Promise((resolve, reject) => {
        sock.on('data', (chunk) => {
            if (!parsed) {
                head = Buffer.concat([head, chunk]);
                const end = head.indexOf('\r\n\r\n');
                if (end < 0) return;
                const status = head.subarray(0, head.indexOf('\r\n')).toString();
                if (!/^HTTP\/1\.1 101 /.test(status)) reject(new Error(`pipelined upgrade: ${status}`));
                if (!head.includes(`Sec-WebSocket-Accept: ${acceptFor(key)}`)) reject(new Error('pipelined upgrade: wrong accept key'));
                parsed = true;
                chunk = head.subarray(end + 4);
            }
            parser.push(chunk);
            if (got.length >= 2) resolve();
        });
        sock.on('error', reject);
    });
    sock.write(Buffer.concat([Buffer.from(handshakeRequest('/echo', key)), encodeFrame(OP.TEXT, first), encodeFrame(OP.BINARY, second)]));
    await h.withTimeout(gotAll, 10000, 'pipelined upgrade + frames over raw TLS');
    h.check(got[0].opcode === OP.TEXT && got[0].payload.equals(first), 'first pipelined frame echoed');
    h.check(got[1].opcode === OP.BINARY && sha256(got[1].payload) === sha256(second), 'second pipelined frame echoed');
    sock.destroy();

    // RawClient over TLS: fragmented messages (a 4-byte character split across fragments)
    // with pings between the fragments.
    const pongs = [];
    const rawGot = [];
    const R = await RawClient.connect(server.tlsPort, '/echo', {
        message: (op, p) => rawGot.push({ op, p }),
        pong: (p) => pongs.push(p.toString()),
        error: (e) => h.fail(`raw wss client: ${e.message}`),
    }, { tls: { ca: certs.ca, servername: 'localhost' } });
    const emoji = Buffer.from('a\u{1F600}b', 'utf8');
    const big = rng.bytes(100000);
    await R.write(Buffer.concat([encodeFrame(OP.TEXT, emoji.subarray(0, 2), { fin: false }), encodeFrame(OP.PING, Buffer.from('p1')),
        encodeFrame(OP.CONT, emoji.subarray(2), { fin: true })]));
    for (let i = 0; i < 4; i++) {
        await R.write(encodeFrame(i ? OP.CONT : OP.BINARY, big.subarray(i * 25000, (i + 1) * 25000), { fin: i === 3 }));
        if (i === 1) await R.write(encodeFrame(OP.PING, Buffer.from('p2')));
    }
    await h.pollUntil(() => rawGot.length >= 2 && pongs.length >= 2, 10000, () => `raw wss echo: ${rawGot.length} messages, pongs ${pongs}`);
    h.check(rawGot[0].op === OP.TEXT && rawGot[0].p.equals(emoji), 'fragmented text echoed over wss');
    h.check(rawGot[1].op === OP.BINARY && rawGot[1].p.equals(big), 'fragmented binary echoed over wss');
    h.checkEq(pongs.join(','), 'p1,p2', 'pongs over wss');
    await h.withTimeout(R.close(1000), 5000, 'raw wss client close');
    h.checkEq(R.closeFrame && R.closeFrame.code, 1000, 'close code echoed over wss');
    return cat.size + 4;
}

// One line per run: wall-clock deliveries/s (bound by the Node clients on this machine) and
// the server's CPU time for the run (connect, handshakes, fan-out, close).
// Batching on the TLS path: frames that become ready for a wss member in one loop iteration
// are encrypted together and leave in one send, not one send (and one record) per frame.
// A plain publisher writes 300 small frames in one TCP write; the wss member and the
// publisher itself each receive all 300, and the server's send count for the whole exchange
// must stay far below one per frame.
async function batchedSends(server, certs) {
    const N = 300;
    const got = { sub: 0, pub: 0 };
    const sub = await RawClient.connect(server.tlsPort, '/batch', { message: () => { got.sub++; } },
        { tls: { ca: certs.ca, servername: 'localhost' } });
    const pub = await RawClient.connect(server.port, '/batch', { message: () => { got.pub++; } });
    await h.sleep(200); // both joins reach the room's home core before the burst
    const before = await server.value('uringws_sends_submitted_total', {});
    const frames = [];
    for (let i = 0; i < N; i++) frames.push(encodeFrame(OP.BINARY, crypto.randomBytes(16)));
    await pub.write(Buffer.concat(frames));
    await h.pollUntil(() => got.sub === N && got.pub === N, 10000,
        () => `batch: the wss member got ${got.sub}, the publisher ${got.pub} of ${N}`);
    const sends = (await server.value('uringws_sends_submitted_total', {})) - before;
    h.check(sends <= N / 5, () => `batch: ${sends} sends for ${2 * N} frames to 2 members (one per frame would be ${2 * N})`);
    await sub.close(1000);
    await pub.close(1000);
    return sends;
}

function report(what, r, cpu, cfg) {
    const rate = r.deliveries / (r.ms / 1000);
    h.info(`${what}: ${cfg.clients} clients, ${r.deliveries} deliveries (${(r.bytes / MiB).toFixed(1)} MiB) in ` +
        `${(r.ms / 1000).toFixed(2)} s: ${Math.round(rate)} deliveries/s; server CPU ${cpu.toFixed(2)} s`);
    return `${what} ${Math.round(rate)}/s cpu ${cpu.toFixed(2)}s`;
}

async function main() {
    const o = h.parseOptions({ clients: { type: 'string' }, 'per-sender': { type: 'string' }, only: { type: 'string' } });
    const certs = T.makeCerts();
    const cfg = {
        room: 'wss room', clients: Number(o.clients || 200), senders: 4, perSender: Number(o['per-sender'] || 25),
        workers: Math.max(2, Math.min(4, os.cpus().length)), deliverMs: 90000,
    };
    const server = await (await T.TlsServer.create(o.server, ['-c', '2', '--max-queue', '64m', '-v'], { certs })).start();

    // The HTTP side over TLS: the chat page (which picks wss: from location.protocol), ALPN.
    const page = await T.httpsRequest(server.tlsPort, '/', { ca: certs.ca, ALPNProtocols: ['h2', 'http/1.1'] });
    h.checkEq(page.status, 200, 'GET / over TLS');
    h.checkEq(page.alpn, 'http/1.1', 'ALPN protocol chosen by the server');
    h.check(/location\.protocol === 'https:' \? 'wss:'/.test(page.body.toString()), 'the chat page picks wss: on https');
    const probe = /uringws_ktls_available\{mode="(\w+)",probe="(\w+)"\} ([01])/.exec(await server.metricsText());
    h.check(probe, 'kTLS mode and probe result in /metrics');
    h.info(`kTLS: mode ${probe[1]}, probe ${probe[2]}`);

    const summary = [];
    const suites = o.only ? T.SUITES.filter((s) => `${s.version}/${s.label}` === o.only) : T.SUITES;
    for (const [i, s] of suites.entries()) {
        const what = `${s.version} ${s.label}`;
        const tlsOpts = { ca: certs.ca, minVersion: s.version, maxVersion: s.version, ciphers: s.ciphers };
        // What this client configuration negotiates, seen from the client.
        const probe = await T.httpsRequest(server.tlsPort, '/healthz', tlsOpts);
        h.checkEq(`${probe.protocol} ${probe.cipher}`, `${s.version} ${s.iana}`, `${what}: negotiated version and suite`);
        const labels = { version: s.version.slice(4), cipher: s.label };
        const before = await server.value('uringws_tls_handshakes_total', labels);
        const cpu0 = cpuSeconds(server.pid);
        const r = await roomRun(o, server.wssUrl(`/wss-${i}`), tlsOpts, { ...cfg, room: `wss room ${i}` }, what);
        const cpu = cpuSeconds(server.pid) - cpu0;
        const after = await server.value('uringws_tls_handshakes_total', labels);
        h.checkEq(after - before, cfg.clients, `${what}: handshakes counted under version ${labels.version}, cipher ${s.label}`);
        summary.push(report(what, r, cpu, cfg));
    }
    if (!o.only) {
        const cpu0 = cpuSeconds(server.pid);
        const r = await roomRun(o, server.url('/plain-room'), null, { ...cfg, room: 'plain room' }, 'plain ws');
        summary.push(report('plain', r, cpuSeconds(server.pid) - cpu0, cfg));
    }

    const echoed = await echoChecks(o, server, certs);
    h.info(`${echoed} messages echoed over wss`);
    const batched = await batchedSends(server, certs);
    h.info(`300 frames in one write reached a wss and a ws member in ${batched} sends in all`);

    const text = await server.metricsText();
    const errs = T.labeledValue(text, 'uringws_tls_errors_total', {});
    h.check(errs === 0, () => `TLS errors during the good runs:\n${text.split('\n').filter((l) => /^uringws_tls_errors_total/.test(l)).join('\n')}`);
    await h.pollUntil(async () => (await server.value('uringws_connections_by_transport', { transport: 'tls' })) +
        (await server.value('uringws_connections_by_transport', { transport: 'ktls' })) === 0, 10000,
        () => 'TLS connections still open after every client closed');

    // SIGTERM with a wss client connected: close 1001 over TLS, then exit 0.
    const last = await T.connectWss(server.wssUrl('/lobby'), { ca: certs.ca });
    const lastClosed = h.closed(last);
    await server.stop();
    const ev = await h.withTimeout(lastClosed, 5000, 'close event at the wss client after SIGTERM');
    h.checkEq(ev.code, 1001, 'close code at the wss client after SIGTERM');

    // An RSA certificate (ECDHE-RSA suites), TLS 1.2 and 1.3.
    const rsa = await (await T.TlsServer.create(o.server, ['-c', '1'], { certs, cert: certs.rsaChain, key: certs.rsaKey })).start();
    for (const v of ['TLSv1.2', 'TLSv1.3']) {
        const r = await T.httpsRequest(rsa.tlsPort, '/healthz', { ca: certs.ca, minVersion: v, maxVersion: v });
        h.check(r.status === 200 && r.protocol === v, () => `RSA certificate, ${v}: ${r.status} ${r.protocol} ${r.cipher}`);
        if (v === 'TLSv1.2') h.check(/ECDHE_RSA/.test(r.cipher), () => `RSA certificate, TLS 1.2 suite ${r.cipher}`);
        const ws = await T.connectWss(rsa.wssUrl('/echo'), { ca: certs.ca, minVersion: v, maxVersion: v });
        const got = new Promise((resolve) => ws.addEventListener('message', (e) => resolve(e.data), { once: true }));
        ws.send(`rsa ${v}`);
        h.checkEq(await h.withTimeout(got, 5000, 'RSA echo'), `rsa ${v}`, `echo with the RSA certificate over ${v}`);
        ws.close(1000);
    }
    await rsa.stop();
    return `${summary.join(', ')} (deliveries/s wall clock, client-bound; server CPU s per run); ${echoed} echoed; seed ${o.seed}`;
}

if (isMainThread) {
    h.run(path.basename(__filename, '.js'), main, { timeoutMs: 280000 });
} else {
    workerMain().catch((e) => {
        parentPort.postMessage({ t: 'fatal', msg: e.stack || String(e) });
        process.exit(1);
    });
}
