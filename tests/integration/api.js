// The HTTP API (docs/api.md) against a -c 2 server with a TLS listener: POST /api/publish/<room>
// over one keep-alive connection (fetch) while two members publish too; ws members on both
// cores and wss members all get every message byte exact, with its type, in one order. A JSON
// batch reaches several rooms. Auth: no key, a wrong key and a malformed header are 401, and
// no key reaches the log. 1,000 publishes pipelined in one write on one connection are
// answered 200 in order. Bodies: 413 past --max-message, 411 without Content-Length, 501
// chunked, 400 for a text body that is not UTF-8; GET /api/rooms sorted and paged.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const h = require('./lib/harness');
const T = require('./lib/tlsutil');
const { Rng, Catalogue, Tracker, trackWebSocket, compareOrders } = require('./lib/messages');

const KEY = 'api-test-key-' + crypto.randomBytes(12).toString('hex');
const auth = { authorization: `Bearer ${KEY}` };

async function api(port, method, p, { body, headers = {} } = {}) {
    const res = await fetch(`http://127.0.0.1:${port}${p}`, { method, body, headers: { ...auth, ...headers } });
    const text = await res.text();
    let json = null;
    try {
        json = JSON.parse(text);
    } catch (e) {
        h.fail(`${method} ${p}: answer is not JSON: ${JSON.stringify(text.slice(0, 200))}`);
    }
    return { status: res.status, json, headers: res.headers };
}

// Writes raw bytes on one connection and collects the responses until `count` have arrived
// (or the server closes; with untilClose, until it does); each as {status, headers, body}.
function rawRequests(port, bytes, count, what, { timeoutMs = 20000, untilClose = false } = {}) {
    return new Promise((resolve, reject) => {
        const s = net.connect({ host: '127.0.0.1', port });
        let buf = Buffer.alloc(0);
        const out = [];
        const done = (closed) => { clearTimeout(timer); s.destroy(); resolve({ responses: out, closed }); };
        const timer = setTimeout(() => { s.destroy(); reject(new h.TestFailure(`${what}: ${out.length} of ${count} answers in ${timeoutMs} ms`)); }, timeoutMs);
        s.on('connect', () => s.write(bytes));
        s.on('data', (c) => {
            buf = Buffer.concat([buf, c]);
            for (;;) {
                const end = buf.indexOf('\r\n\r\n');
                if (end < 0) break;
                const head = buf.subarray(0, end).toString('latin1').split('\r\n');
                const headers = {};
                for (const l of head.slice(1)) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
                const len = Number(headers['content-length'] || 0);
                if (buf.length < end + 4 + len) break;
                out.push({ status: Number(head[0].split(' ')[1]), headers, body: buf.subarray(end + 4, end + 4 + len).toString('utf8') });
                buf = buf.subarray(end + 4 + len);
            }
            if (out.length >= count && !untilClose) done(false);
        });
        s.on('close', () => done(true));
        s.on('error', () => {});
    });
}

function post(p, body, { type = 'text/plain', extra = '', key = KEY } = {}) {
    const b = Buffer.from(body);
    return Buffer.concat([Buffer.from(`POST ${p} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\n` +
        `Content-Type: ${type}\r\nContent-Length: ${b.length}\r\n${extra}\r\n`), b]);
}

async function fanout(server, rng) {
    const certs = server.certs;
    const cat = new Catalogue('api room');
    const plan = { api: [], c1: [], c2: [] };
    const add = (sender, binary, size, type) => {
        for (;;) {
            const bytes = binary ? rng.bytes(size) : Buffer.from(type === 'application/json'
                ? JSON.stringify({ n: rng.int(0, 1e9), s: rng.text(size) }) : rng.text(size), 'utf8');
            if (cat.add(sender, binary, bytes)) return plan[sender].push({ binary, bytes, type });
        }
    };
    for (let i = 0; i < 150; i++) {
        const kind = i % 3;
        add('api', kind === 2, rng.int(0, kind === 2 ? 60000 : 3000), ['text/plain; charset=utf-8', 'application/json', 'application/octet-stream'][kind]);
    }
    for (const c of ['c1', 'c2']) for (let i = 0; i < 50; i++) add(c, rng.chance(0.5), rng.int(1, 5000));
    const members = [];
    for (let i = 0; i < 6; i++) members.push({ label: `ws${i}`, ws: await h.connectWs(server.url('/feed/live')) });
    for (let i = 0; i < 2; i++) members.push({ label: `wss${i}`, ws: await T.connectWss(server.wssUrl('/feed/live'), { ca: certs.ca }) });
    const text = await server.metricsText();
    const perCore = [0, 1].map((core) => T.labeledValue(text, 'uringws_core_connections', { core: String(core) }));
    h.check(perCore.every((n) => n > 0), `members on both cores: ${perCore}`);
    const trackers = members.map((m) => {
        const t = new Tracker(m.label, cat);
        trackWebSocket(m.ws, t);
        return t;
    });
    const rooms = await api(server.port, 'GET', '/api/rooms/feed%2Flive');
    h.checkEq(rooms.status, 400, 'an escaped / in a room name');
    const one = await api(server.port, 'GET', '/api/rooms/feed/live');
    h.checkEq(JSON.stringify(one.json), '{"room":"feed/live","members":8}', 'GET /api/rooms/feed/live');
    const clients = async (label, ws) => {
        for (const m of plan[label]) {
            ws.send(m.binary ? m.bytes : m.bytes.toString('utf8'));
            if (rng.chance(0.3)) await h.sleep(1);
        }
    };
    const apiSends = async () => {
        for (const m of plan.api) {
            const r = await api(server.port, 'POST', '/api/publish/feed/live', { body: m.bytes, headers: { 'content-type': m.type } });
            h.checkEq(r.status, 200, 'POST /api/publish/feed/live status');
            h.checkEq(r.json.room, 'feed/live', 'the answer names the room');
            h.checkEq(r.json.members, 8, 'the answer counts the members');
        }
    };
    await Promise.all([apiSends(), clients('c1', members[0].ws), clients('c2', members[6].ws)]);
    await h.withTimeout(Promise.all(trackers.map((t) => t.completion())), 30000,
        () => `deliveries: ${trackers.map((t) => `${t.label} ${t.count}/${t.expected}`).join(', ')}`);
    const results = trackers.map((t) => t.result());
    for (const r of results) h.check(r.errors.length === 0, r.errors.join('; '));
    const diff = compareOrders(cat, results);
    h.check(!diff, diff);
    return { members, trackers };
}

async function batch(server, members) {
    const other = await h.connectWs(server.url('/other'));
    const got = new Promise((resolve) => other.addEventListener('message', (ev) => resolve(Buffer.from(ev.data)), { once: true }));
    const seen = new Promise((resolve) => members[1].ws.addEventListener('message', (ev) => resolve(ev.data), { once: true }));
    const body = JSON.stringify({ messages: [{ rooms: ['feed/live', 'empty'], data: 'batch text \u20ac' },
        { room: 'other', data_base64: Buffer.from([0, 1, 2, 255]).toString('base64') }] });
    const r = await api(server.port, 'POST', '/api/publish', { body, headers: { 'content-type': 'application/json' } });
    h.checkEq(r.status, 200, 'batch status');
    h.checkEq(JSON.stringify(r.json), '{"published":[{"room":"feed/live","members":8},{"room":"empty","members":0},{"room":"other","members":1}]}', 'batch answer');
    h.checkEq(await h.withTimeout(seen, 5000, 'batch text at a member'), 'batch text \u20ac', 'batch text');
    h.checkEq((await h.withTimeout(got, 5000, 'batch binary')).toString('hex'), '000102ff', 'batch binary');
    for (const [what, b] of [['not JSON', '{"messages": ['], ['no data', '{"room":"a"}'], ['bad room', '{"room":"a//b","data":"x"}'],
        ['empty list', '{"messages":[]}'], ['bad base64', '{"room":"a","data_base64":"!!"}'], ['both room and rooms', '{"room":"a","rooms":["b"],"data":"x"}']]) {
        const bad = await api(server.port, 'POST', '/api/publish', { body: b });
        h.checkEq(bad.status, 400, `batch ${what}`);
        h.check(typeof bad.json.error === 'string', `batch ${what}: error body`);
    }
    other.close();
}

async function authAndBodies(server) {
    const p = server.port;
    const raw = async (bytes, what) => (await rawRequests(p, bytes, 1, what)).responses[0];
    for (const [what, hdr] of [['no key', ''], ['wrong key', 'Authorization: Bearer wrong-key-0123456789\r\n'],
        ['not Bearer', `Authorization: Basic ${KEY}\r\n`], ['two headers', `Authorization: Bearer ${KEY}\r\nAuthorization: Bearer ${KEY}\r\n`]]) {
        const r = await raw(`GET /api/rooms HTTP/1.1\r\nHost: x\r\n${hdr}\r\n`, what);
        h.checkEq(r.status, 401, `auth ${what}`);
        h.check(/^Bearer/.test(r.headers['www-authenticate'] || ''), `auth ${what}: WWW-Authenticate`);
        h.check(!r.body.includes(KEY), `auth ${what}: the key is in the body`);
    }
    h.checkEq((await raw(post('/api/publish/x', 'y', { key: KEY + 'z' }), 'longer key')).status, 401, 'a key with one more byte');
    let r = await rawRequests(p, post('/api/publish/x', 'x'.repeat(70 * 1024)), 1, '413', { untilClose: true });
    h.checkEq(r.responses[0].status, 413, 'body over --max-message');
    h.check(r.closed, '413 closes the connection');
    r = await rawRequests(p, `POST /api/publish/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\n\r\n`, 1, '411');
    h.checkEq(r.responses[0].status, 411, 'POST without Content-Length');
    r = await rawRequests(p, `POST /api/publish/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n`, 1, '501', { untilClose: true });
    h.checkEq(r.responses[0].status, 501, 'chunked body');
    h.check(r.closed, '501 closes the connection');
    h.checkEq((await raw(post('/api/publish/x', Buffer.from([0xc3, 0x28])), 'bad utf-8')).status, 400, 'text body that is not UTF-8');
    h.checkEq((await raw(post('/api/publish/x', Buffer.from([0xc3, 0x28]), { type: 'application/octet-stream' }), 'binary')).status, 200, 'the same bytes as binary');
    h.checkEq((await raw(`GET /api/publish/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\n\r\n`, '405')).status, 405, 'GET on a publish route');
    h.checkEq((await raw(`GET /api/nothing HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\n\r\n`, '404')).status, 404, 'unknown API route');
    // A body split over many writes (the server gathers it).
    const s = net.connect({ host: '127.0.0.1', port: p });
    await new Promise((res) => s.on('connect', res));
    const whole = post('/api/publish/split', 'z'.repeat(20000));
    let answer = '';
    s.on('data', (c) => { answer += c.toString('latin1'); });
    for (let i = 0; i < whole.length; i += 997) {
        s.write(whole.subarray(i, i + 997));
        await h.sleep(1);
    }
    await h.pollUntil(() => answer.includes('\r\n\r\n{'), 5000, () => `split body: got ${JSON.stringify(answer.slice(0, 100))}`);
    h.check(answer.startsWith('HTTP/1.1 200'), `split body answered ${answer.slice(0, 20)}`);
    s.destroy();
}

async function pipelined(server) {
    const N = 1000;
    const reqs = [];
    for (let i = 0; i < N; i++) reqs.push(post(`/api/publish/p${i}`, `m${i}`));
    reqs.push(Buffer.from(`GET /api/rooms HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\nConnection: close\r\n\r\n`));
    const r = await rawRequests(server.port, Buffer.concat(reqs), N + 1, 'pipelined publishes', { timeoutMs: 30000 });
    h.checkEq(r.responses.length, N + 1, 'answers to the pipelined requests');
    for (let i = 0; i < N; i++) {
        const a = r.responses[i];
        h.check(a.status === 200 && JSON.parse(a.body).room === `p${i}`, `pipelined answer ${i}: ${a.status} ${a.body}`);
        h.checkEq(a.headers.connection, 'keep-alive', `pipelined answer ${i}: Connection`);
    }
    h.checkEq(r.responses[N].headers.connection, 'close', 'the last answer after Connection: close');
}

async function listing(server) {
    const names = ['b', 'a', 'c/d', 'c'];
    const conns = [];
    for (const n of names) conns.push(await h.connectWs(server.url(`/${n}`)));
    const all = await api(server.port, 'GET', '/api/rooms');
    const got = all.json.rooms.map((x) => x.room);
    h.checkEq(JSON.stringify(got), JSON.stringify([...got].sort()), 'rooms sorted');
    for (const n of names) h.check(got.includes(n), `room ${n} listed`);
    let after = '';
    const paged = [];
    for (let i = 0; i < 20; i++) {
        const page = await api(server.port, 'GET', `/api/rooms?limit=2${after ? `&after=${encodeURIComponent(after)}` : ''}`);
        h.checkEq(page.status, 200, 'page status');
        paged.push(...page.json.rooms.map((x) => x.room));
        if (page.json.next === null) break;
        after = page.json.next;
    }
    h.checkEq(JSON.stringify(paged), JSON.stringify(got), 'pages of two give the whole list');
    h.checkEq((await api(server.port, 'GET', '/api/rooms?limit=0')).status, 400, 'limit 0');
    for (const c of conns) c.close();
}

h.run('api', async () => {
    const o = h.parseOptions();
    const rng = new Rng(o.seed);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uringws-api-'));
    fs.writeFileSync(path.join(dir, 'keys'), `# keys\n\n  ${KEY}  \nanother-key-that-is-long-enough\n`);
    const certs = T.makeCerts();
    const server = await (await T.TlsServer.create(o.server, ['-c', '2', '-v', '--max-message', '64k',
        '--api-key-file', path.join(dir, 'keys')], { certs })).start();
    const { members } = await fanout(server, rng);
    await batch(server, members);
    await authAndBodies(server);
    await pipelined(server);
    await listing(server);
    const text = await server.metricsText();
    h.check((T.labeledValue(text, 'uringws_api_requests_total', { route: 'publish', status: '200' }) || 0) >= 1150,
        'api_requests_total{route="publish",status="200"}');
    h.check((T.labeledValue(text, 'uringws_publishes_total', { source: 'api' }) || 0) >= 1150, 'publishes_total{source="api"}');
    h.checkEq(T.labeledValue(text, 'uringws_publishes_total', { source: 'client' }), 100, 'publishes_total{source="client"}');
    for (const m of members) m.ws.close();
    await server.stop();
    h.check(!server.log.includes(KEY), 'the API key appears in the server log');
    fs.rmSync(dir, { recursive: true, force: true });
    return '150 API + 100 client messages in one order at 8 members (2 wss), batch, auth, bodies, 1000 pipelined';
});
