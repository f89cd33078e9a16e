// Slowloris: 10,000 sockets each trickling one byte of a request head every 2.5 s must not
// keep new clients out. The server (default --max-conns 10000, so the trickling sockets
// alone could fill it) runs with --handshake-timeout 8s; --max-pending (default 1024) bounds
// how many connections may sit in the request-head phase, the oldest being closed to admit a
// new one. Once all 10,000 are connected and trickling, normal WebSocket clients connect one
// after another: each must get its 101 within 1 s and see its own message come back through
// the room. Afterwards every trickling socket must have been closed by the server (evicted,
// or at the head deadline: no response either way), counted in /metrics.
'use strict';

const net = require('node:net');
const h = require('./lib/harness');
const { OP, RawClient } = require('./lib/rawws');

const SOCKETS = 10000;
const HEAD_TIMEOUT_MS = 8000;
const TRICKLE_MS = 2500;        // one byte per socket this often
const CONNECT_PARALLEL = 500;
const NEW_CLIENTS = 20;
const NEW_CLIENT_GAP_MS = 150;
const HANDSHAKE_LIMIT_MS = 1000;
const MESSAGE_LIMIT_MS = 1000;
const HEAD = 'GET /lobby HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n';
// Source addresses: the connections spread over several, so no single address runs short of
// ephemeral ports when other tests share the machine.
const SOURCES = Array.from({ length: 8 }, (_, i) => `127.0.0.${20 + i}`);

function openTrickler(port, i) {
    return new Promise((resolve, reject) => {
        const s = net.connect({ host: '127.0.0.1', port, localAddress: SOURCES[i % SOURCES.length] });
        const t = { s, sent: 0, closedAt: 0, openedAt: 0 };
        s.on('error', () => {}); // a reset is a close like any other
        s.on('close', () => { t.closedAt = Date.now(); });
        s.once('connect', () => {
            t.openedAt = Date.now();
            s.write(HEAD[0]);
            t.sent = 1;
            resolve(t);
        });
        s.once('error', (e) => { if (!t.openedAt) reject(new h.TestFailure(`trickling socket ${i}: ${e.message}`)); });
    });
}

async function newClient(port, n) {
    const t0 = Date.now();
    const got = [];
    const c = await RawClient.connect(port, '/lobby', { message: (op, p) => got.push(p.toString()) }, { timeoutMs: 5000 });
    const hsMs = Date.now() - t0;
    const t1 = Date.now();
    const text = `hello from new client ${n}`;
    await c.send(OP.TEXT, Buffer.from(text));
    await h.pollUntil(() => got.includes(text), 5000, () => `new client ${n}: own message not back in 5 s`, 5);
    const msgMs = Date.now() - t1;
    await c.close(1000);
    return { hsMs, msgMs };
}

h.run('slowloris', async () => {
    const o = h.parseOptions();
    const server = await new h.Server(o.server, ['-c', '2', '-v', '--handshake-timeout', `${HEAD_TIMEOUT_MS}ms`,
        '--ping-interval', '0']).start();
    server.append = ((orig) => function (chunk) { // thousands of eviction lines: keep the log small
        const s = chunk.toString('utf8').split('\n').filter((l) => !/ evicted after | handshake timeout/.test(l)).join('\n');
        if (s.trim()) orig.call(this, s);
    })(server.append);

    const t0 = Date.now();
    const tricklers = await h.mapLimit(Array.from({ length: SOCKETS }, (_, i) => i), CONNECT_PARALLEL,
        (i) => openTrickler(server.port, i));
    const connectMs = Date.now() - t0;
    h.info(`${SOCKETS} trickling sockets connected in ${connectMs} ms`);
    h.check(connectMs < HEAD_TIMEOUT_MS - 3000, `connecting took ${connectMs} ms: too slow for the test's window`);
    let k = 0;
    const step = Math.ceil(SOCKETS / (TRICKLE_MS / 250));
    const trickle = setInterval(() => {
        for (let j = 0; j < step; j++, k = (k + 1) % SOCKETS) {
            const t = tricklers[k];
            if (t.closedAt || t.sent >= HEAD.length) continue;
            t.s.write(HEAD[t.sent++]);
        }
    }, 250);

    // New clients while the flood trickles.
    const results = [];
    for (let n = 0; n < NEW_CLIENTS; n++) {
        results.push(await newClient(server.port, n));
        await h.sleep(NEW_CLIENT_GAP_MS);
    }
    const hs = results.map((r) => r.hsMs).sort((a, b) => a - b);
    const msg = results.map((r) => r.msgMs).sort((a, b) => a - b);
    h.info(`new clients: handshake max ${hs[hs.length - 1]} ms, message max ${msg[msg.length - 1]} ms`);
    h.check(hs[hs.length - 1] < HANDSHAKE_LIMIT_MS, `a new client's handshake took ${hs[hs.length - 1]} ms (limit ${HANDSHAKE_LIMIT_MS})`);
    h.check(msg[msg.length - 1] < MESSAGE_LIMIT_MS, `a new client's message took ${msg[msg.length - 1]} ms (limit ${MESSAGE_LIMIT_MS})`);

    // Every trickling socket is closed by the server by its head deadline (plus ticks).
    const lastOpened = Math.max(...tricklers.map((t) => t.openedAt));
    await h.pollUntil(() => tricklers.every((t) => t.closedAt), lastOpened + HEAD_TIMEOUT_MS + 3000 - Date.now(),
        () => `${tricklers.filter((t) => !t.closedAt).length} trickling sockets still open ${HEAD_TIMEOUT_MS + 3000} ms after the last connected`, 100);
    clearInterval(trickle);
    const late = tricklers.filter((t) => t.closedAt - t.openedAt > HEAD_TIMEOUT_MS + 1000).length;
    h.checkEq(late, 0, 'trickling sockets closed later than the head deadline + 1 s');
    const m = await server.metrics();
    const evicted = m.values.get('uringws_pending_evictions_total');
    const timedOut = m.values.get('uringws_head_timeouts_total');
    h.checkEq(evicted + timedOut, SOCKETS, 'evictions + head timeouts');
    h.checkEq(m.values.get('uringws_websocket_upgrades_total'), NEW_CLIENTS, 'upgrades');
    await server.stop();
    return `${SOCKETS} tricklers (connected in ${connectMs} ms; ${evicted} evicted, ${timedOut} at the deadline); ` +
        `${NEW_CLIENTS} new clients: handshake max ${hs[hs.length - 1]} ms, round trip max ${msg[msg.length - 1]} ms`;
}, { timeoutMs: 90000 });
