// The HTTP side and protocol errors, seen from raw TCP sockets: the plain routes (/, /healthz,
// /metrics, 404), every handshake rejection of the contract (400 variants, 405 + Allow, 426 +
// Sec-WebSocket-Version, 431) with the socket closed afterwards, handshakes that must be
// accepted (case and list variations, a 7 KiB head), and the close code the server sends for
// each kind of bad frame (1002, 1007, 1009) plus the echo of a client's close 1000.
'use strict';

const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const h = require('./lib/harness');
const { OP, encodeFrame, closePayload, RawClient } = require('./lib/rawws');

const MAX_MESSAGE = 65536;
const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

// Sends `request` on a fresh connection and collects everything until the server closes it.
// Resolves {status, headers, body, raw, reset}; fails if the server keeps the socket open.
function exchange(port, request, what, { timeoutMs = 5000 } = {}) {
    return new Promise((resolve, reject) => {
        const s = net.connect({ host: '127.0.0.1', port });
        const chunks = [];
        let reset = null;
        const timer = setTimeout(() => {
            s.destroy();
            const got = Buffer.concat(chunks).toString('latin1');
            reject(new h.TestFailure(`${what}: server did not close the connection within ${timeoutMs} ms; ` +
                `it sent ${JSON.stringify(got.slice(0, 300))}`));
        }, timeoutMs);
        s.on('data', (c) => chunks.push(c));
        s.on('error', (e) => { reset = e.code || e.message; });
        s.on('close', () => {
            clearTimeout(timer);
            const raw = Buffer.concat(chunks);
            const end = raw.indexOf('\r\n\r\n');
            if (end < 0) {
                reject(new h.TestFailure(`${what}: connection closed (${reset || 'FIN'}) without a complete response; ` +
                    `got ${JSON.stringify(raw.toString('latin1').slice(0, 300))}`));
                return;
            }
            const lines = raw.subarray(0, end).toString('latin1').split('\r\n');
            const m = /^HTTP\/1\.[01] (\d{3})( .*)?$/.exec(lines[0]);
            if (!m) {
                reject(new h.TestFailure(`${what}: bad status line ${JSON.stringify(lines[0])}`));
                return;
            }
            const headers = {};
            for (const l of lines.slice(1)) {
                const i = l.indexOf(':');
                const k = l.slice(0, i).trim().toLowerCase();
                headers[k] = headers[k] ? `${headers[k]}, ${l.slice(i + 1).trim()}` : l.slice(i + 1).trim();
            }
            resolve({ status: Number(m[1]), headers, body: raw.subarray(end + 4), raw, reset });
        });
        s.write(request);
    });
}

function upgrade({ method = 'GET', target = '/lobby', host = '127.0.0.1', upgradeHdr = 'websocket',
    connection = 'Upgrade', key = KEY, version = '13', extra = '' } = {}) {
    let r = `${method} ${target} HTTP/1.1\r\n`;
    if (host !== null) r += `Host: ${host}\r\n`;
    if (upgradeHdr !== null) r += `Upgrade: ${upgradeHdr}\r\n`;
    if (connection !== null) r += `Connection: ${connection}\r\n`;
    if (key !== null) r += `Sec-WebSocket-Key: ${key}\r\n`;
    if (version !== null) r += `Sec-WebSocket-Version: ${version}\r\n`;
    return r + extra + '\r\n';
}

async function httpRoutes(server, page) {
    const root = await h.httpRequest(server.port, '/');
    h.checkEq(root.status, 200, 'GET / status');
    h.check(/^text\/html\b/i.test(root.headers['content-type'] || ''), () => `GET / Content-Type ${root.headers['content-type']}`);
    const html = root.body.toString('utf8');
    for (const id of ['nick', 'room', 'join', 'messages', 'input', 'send', 'status']) {
        h.check(html.includes(`id="${id}"`), `GET / page has no element id="${id}"`);
    }
    if (page) {
        h.check(root.body.equals(fs.readFileSync(page)),
            () => `GET / body (${root.body.length} bytes) differs from ${page} (${fs.statSync(page).size} bytes)`);
    }
    const health = await h.httpRequest(server.port, '/healthz');
    h.checkEq(health.status, 200, 'GET /healthz status');
    h.checkEq(health.body.toString('utf8').trim(), 'ok', 'GET /healthz body');
    const nope = await h.httpRequest(server.port, '/nope');
    h.checkEq(nope.status, 404, 'GET /nope status');
    const m = await h.httpRequest(server.port, '/metrics');
    h.checkEq(m.status, 200, 'GET /metrics status');
    h.check(/^text\/plain\b/i.test(m.headers['content-type'] || ''), () => `GET /metrics Content-Type ${m.headers['content-type']}`);
}

// Connections accepted and open must show in /metrics.
async function metricsCount(server) {
    const first = await server.metrics();
    const gauge = h.connectionGauge(first);
    const counter = h.connectionCounter(first);
    const g0 = await h.settled(() => server.metric(gauge), gauge);
    const c0 = await server.metric(counter);
    const ws = await Promise.all([1, 2, 3].map(() => h.connectWs(server.url('/metrics-room'))));
    await server.expectMetric(gauge, g0 + 3, 5000, `3 clients connected, ${g0} before`);
    const c1 = await server.metric(counter);
    h.check(c1 - c0 >= 3, () => `${counter} rose by ${c1 - c0} (${c0} -> ${c1}) while 3 clients connected`);
    await Promise.all(ws.map((w) => { const c = h.closed(w); w.close(1000); return c; }));
    await server.expectMetric(gauge, g0, 5000, 'the 3 clients closed');
}

async function rejections(server) {
    const cases = [
        ['no Host header', upgrade({ host: null }), 400],
        ['Sec-WebSocket-Key not base64', upgrade({ key: 'not a key at all!!!!!!==' }), 400],
        ['Sec-WebSocket-Key of 15 bytes', upgrade({ key: 'AAAAAAAAAAAAAAAAAAAA' }), 400],
        ['no Sec-WebSocket-Key', upgrade({ key: null }), 400],
        ['no Upgrade header', upgrade({ upgradeHdr: null }), 400],
        ['Upgrade: h2c', upgrade({ upgradeHdr: 'h2c' }), 400],
        ['no Connection header', upgrade({ connection: null }), 400],
        ['Connection without upgrade token', upgrade({ connection: 'keep-alive' }), 400],
        ['room /a//b (empty segment)', upgrade({ target: '/a//b' }), 400],
        ['room /a%2Fb (escaped separator)', upgrade({ target: '/a%2Fb' }), 400],
        ['room /%zz', upgrade({ target: '/%zz' }), 400],
        ['POST upgrade', upgrade({ method: 'POST' }), 405],
        ['Sec-WebSocket-Version: 8', upgrade({ version: '8' }), 426],
        ['head over 8 KiB', upgrade({ extra: `X-Padding: ${'p'.repeat(9000)}\r\n` }), 431],
        ['header line over 8 KiB without end', `GET /lobby HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Long: ${'q'.repeat(10000)}`, 431],
    ];
    for (const [what, req, want] of cases) {
        const r = await exchange(server.port, req, what);
        h.check(r.status === want, () => `${what}: expected ${want}, got ${r.status}: ${JSON.stringify(r.raw.toString('latin1').slice(0, 300))}`);
        if (want === 405) {
            h.check(/(^|,)\s*GET\s*(,|$)/.test(r.headers.allow || ''), () => `${what}: 405 without "Allow: GET" (Allow: ${r.headers.allow})`);
        }
        if (want === 426) h.checkEq(r.headers['sec-websocket-version'], '13', `${what}: Sec-WebSocket-Version in the 426`);
        h.check(!r.headers['sec-websocket-accept'], `${what}: rejection carries Sec-WebSocket-Accept`);
    }
    return cases.length;
}

async function acceptances(server) {
    const cases = [
        ['mixed case tokens', upgrade({ upgradeHdr: 'WebSocket', connection: 'keep-alive, Upgrade' })],
        ['lower-case header names', upgrade({}).replace(/^([A-Za-z-]+):/gm, (m, n) => n.toLowerCase() + ':')],
        ['root path is the lobby', upgrade({ target: '/' })],
        ['percent-encoded room', upgrade({ target: '/caf%C3%A9%20au%20lait' })],
        ['room in segments', upgrade({ target: '/news/eu/fr' })],
        ['7 KiB head', upgrade({ extra: `X-Padding: ${'p'.repeat(7000)}\r\n` })],
        ['Origin and extension offer (as browsers send)', upgrade({ extra: 'Origin: http://127.0.0.1\r\n' +
            'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n' })],
    ];
    for (const [what, req] of cases) {
        const s = net.connect({ host: '127.0.0.1', port: server.port });
        const head = await h.withTimeout(new Promise((resolve, reject) => {
            let buf = Buffer.alloc(0);
            s.on('data', (c) => {
                buf = Buffer.concat([buf, c]);
                if (buf.indexOf('\r\n\r\n') >= 0) resolve(buf.toString('latin1'));
            });
            s.on('error', reject);
            s.on('close', () => reject(new h.TestFailure(`${what}: closed: ${JSON.stringify(buf.toString('latin1').slice(0, 200))}`)));
            s.write(req);
        }), 5000, `${what}: response`);
        h.check(head.startsWith('HTTP/1.1 101'), () => `${what}: expected 101, got ${JSON.stringify(head.slice(0, 200))}`);
        h.check(/\r\nsec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r\n/i.test(head), () => `${what}: wrong or missing accept key in ${JSON.stringify(head)}`);
        h.check(!/\r\nsec-websocket-extensions:/i.test(head), () => `${what}: server accepted an extension: ${JSON.stringify(head)}`);
        s.destroy();
    }
    return cases.length;
}

// A raw client on /echo (it answers the server's close frame the way a browser does) does
// `act`; the server must send a close frame with one of the wanted codes and close the TCP
// connection, without echoing anything first.
async function protocolCase(server, what, act, want) {
    const wanted = [].concat(want);
    const echoed = [];
    const c = await RawClient.connect(server.port, '/echo', {
        message: (op, p) => echoed.push(p.length),
        error: () => {},
    });
    await act(c);
    await h.withTimeout(c.endPromise, 5000, `${what}: server closing the connection`);
    h.check(c.closeFrame !== null, `${what}: connection closed without a close frame (expected close ${wanted.join(' or ')})`);
    h.check(wanted.includes(c.closeFrame.code),
        () => `${what}: close code ${c.closeFrame.code} "${c.closeFrame.reason}", expected ${wanted.join(' or ')}`);
    h.checkEq(echoed.length, 0, `${what}: messages echoed before the close`);
}

async function protocolErrors(server) {
    const cont = (p, fin = true) => encodeFrame(OP.CONT, p, { fin });
    const cases = [
        ['unmasked text frame', (c) => c.send(OP.TEXT, Buffer.from('hello'), { mask: false }), 1002],
        ['RSV1 set without extension', (c) => c.send(OP.TEXT, Buffer.from('hello'), { rsv: 4 }), 1002],
        ['reserved opcode 3', (c) => c.send(3, Buffer.from('x')), 1002],
        ['reserved control opcode 0xB', (c) => c.send(0xb, Buffer.alloc(0)), 1002],
        ['ping with 126-byte payload', (c) => c.send(OP.PING, Buffer.alloc(126, 1)), 1002],
        ['fragmented ping', (c) => c.send(OP.PING, Buffer.from('p'), { fin: false }), 1002],
        ['continuation without a message', (c) => c.write(cont(Buffer.from('x'))), 1002],
        ['text frame inside a fragmented message', (c) => c.write(Buffer.concat([
            encodeFrame(OP.TEXT, Buffer.from('a'), { fin: false }), encodeFrame(OP.TEXT, Buffer.from('b'))])), 1002],
        ['close frame with 1-byte payload', (c) => c.send(OP.CLOSE, Buffer.from([3])), 1002],
        ['close code 1005 on the wire', (c) => c.send(OP.CLOSE, closePayload(1005)), 1002],
        ['close code 999', (c) => c.send(OP.CLOSE, closePayload(999)), 1002],
        ['invalid UTF-8 text', (c) => c.send(OP.TEXT, Buffer.from([0x68, 0x69, 0xc3, 0x28])), 1007],
        ['UTF-8 surrogate (ED A0 80) in text', (c) => c.send(OP.TEXT, Buffer.from([0x61, 0xed, 0xa0, 0x80])), 1007],
        ['overlong UTF-8 (C0 AF) in text', (c) => c.send(OP.TEXT, Buffer.from([0xc0, 0xaf])), 1007],
        ['invalid UTF-8 in a later fragment', (c) => c.write(Buffer.concat([
            encodeFrame(OP.TEXT, Buffer.from('valid '), { fin: false }), cont(Buffer.from([0xf0, 0x9f]), false),
            cont(Buffer.from([0x41]))])), 1007],
        ['text ending inside a UTF-8 sequence', (c) => c.send(OP.TEXT, Buffer.from([0x61, 0xf0, 0x9f, 0x98])), 1007],
        // RFC 6455 names no code for this one; Autobahn (case 7.5.1) takes either.
        ['invalid UTF-8 in a close reason', (c) => c.send(OP.CLOSE, Buffer.concat([closePayload(1000), Buffer.from([0xff])])), [1007, 1002]],
        [`one frame of ${MAX_MESSAGE + 1} bytes`, (c) => c.send(OP.BINARY, Buffer.alloc(MAX_MESSAGE + 1, 7)), 1009],
        [`fragments adding up to ${MAX_MESSAGE + 1} bytes`, (c) => c.write(Buffer.concat([
            encodeFrame(OP.BINARY, Buffer.alloc(40000, 1), { fin: false }), cont(Buffer.alloc(MAX_MESSAGE + 1 - 40000, 2))])), 1009],
        ['frame header announcing 2^62 bytes', (c) => {
            const hd = Buffer.from([0x82, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
            hd.writeBigUInt64BE(1n << 62n, 2);
            return c.write(hd);
        }, 1009],
    ];
    for (const [what, act, code] of cases) await protocolCase(server, what, act, code);

    // The limit itself is allowed, and a client's close 1000 comes back as 1000.
    const got = [];
    let closeCode = null;
    const c = await RawClient.connect(server.port, '/echo', {
        message: (op, p) => got.push([op, p]),
        close: (code) => { closeCode = code; },
    });
    const big = Buffer.alloc(MAX_MESSAGE);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31 + 7) & 0xff;
    await c.write(Buffer.concat([encodeFrame(OP.BINARY, big.subarray(0, 1000), { fin: false }), encodeFrame(OP.CONT, big.subarray(1000))]));
    await h.pollUntil(() => got.length === 1, 5000, () => `message of exactly --max-message ${MAX_MESSAGE} bytes not echoed`);
    h.check(got[0][0] === OP.BINARY && got[0][1].equals(big), `message of ${MAX_MESSAGE} bytes echoed with other type or bytes`);
    await c.send(OP.CLOSE, closePayload(1000, 'done'));
    await h.withTimeout(c.endPromise, 5000, 'server closing the connection after the close handshake');
    h.checkEq(closeCode, 1000, 'close code echoed for a client close 1000');
    return cases.length + 1;
}

async function main() {
    const o = h.parseOptions({ page: { type: 'string' } });
    const server = await new h.Server(o.server, ['-c', '2', '--max-message', String(MAX_MESSAGE)]).start();
    await httpRoutes(server, o.page);
    await metricsCount(server);
    const nRej = await rejections(server);
    const nAcc = await acceptances(server);
    const nProto = await protocolErrors(server);
    // After all that the server still serves a normal client.
    const ws = await h.connectWs(server.url('/echo'));
    const back = new Promise((resolve) => ws.addEventListener('message', (ev) => resolve(ev.data), { once: true }));
    ws.send('still alive');
    h.checkEq(await h.withTimeout(back, 5000, 'echo after the error cases'), 'still alive', 'echo after the error cases');
    ws.close(1000);
    await server.stop();
    return `${nRej} rejections, ${nAcc} accepted handshakes, ${nProto} protocol cases`;
}

h.run(path.basename(__filename, '.js'), main, { timeoutMs: 80000 });
