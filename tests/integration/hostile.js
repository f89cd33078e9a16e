// Hostile and broken clients: malformed HTTP of every kind (each with its exact status and
// the connection closed after it), request bytes pipelined with frames, frame streams cut at
// every byte, TCP resets in the middle of frames and sends, half-closed connections (the
// server must still deliver what it owes, then close), and clients that connect and vanish.
// After each group the server still serves a normal client and its descriptor count and
// open-connections gauge are back at their idle values. Runs against a server with regular
// descriptors (--no-direct: every socket shows in /proc/PID/fd) and one with io_uring direct
// descriptors (sockets live in the ring's file table; the gauge is the leak check there).
'use strict';

const crypto = require('node:crypto');
const net = require('node:net');
const path = require('node:path');
const h = require('./lib/harness');
const { OP, encodeFrame, closePayload, FrameParser, handshakeRequest, acceptFor } = require('./lib/rawws');

const HANDSHAKE_TIMEOUT_MS = 1000;
const MAX_MESSAGE = 1 << 20;
const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const EXCHANGE_MS = 5000;

// ---- raw exchanges ---------------------------------------------------------------------------

// Opens a connection and performs `writes` (Buffers or strings, each one write handed to the
// kernel before the next; numbers are pauses in ms). With halfClose the client then shuts
// down its sending side and keeps reading. Resolves once the server has closed the
// connection: {raw, reset, ms (from the last write to the close)}; fails after timeoutMs.
function exchange(port, writes, what, { halfClose = false, timeoutMs = EXCHANGE_MS } = {}) {
    return new Promise((resolve, reject) => {
        const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: halfClose });
        s.setNoDelay(true);
        const chunks = [];
        let reset = null;
        let lastWrite = Date.now();
        const timer = setTimeout(() => {
            s.destroy();
            reject(new h.TestFailure(`${what}: the server did not close the connection within ${timeoutMs} ms; ` +
                `it sent ${JSON.stringify(Buffer.concat(chunks).toString('latin1').slice(0, 200))}`));
        }, timeoutMs);
        s.on('data', (c) => chunks.push(c));
        s.on('error', (e) => { reset = e.code || e.message; });
        // With halfClose the server's FIN is answered by closing our side too.
        s.on('end', () => { if (halfClose) s.end(); });
        s.on('close', () => {
            clearTimeout(timer);
            resolve({ raw: Buffer.concat(chunks), reset, ms: Date.now() - lastWrite });
        });
        s.on('connect', async () => {
            for (const w of writes) {
                if (typeof w === 'number') {
                    await h.sleep(w);
                    continue;
                }
                if (s.destroyed || s.writableEnded) break;
                await new Promise((r) => s.write(w, () => r()));
                lastWrite = Date.now();
            }
            if (halfClose && !s.destroyed) s.end();
        });
    });
}

// Splits raw bytes into {status, headers, body, rest} for the first HTTP response (rest: the
// bytes after its body, i.e. WebSocket frames after a 101). null when there is no complete
// head.
function parseResponse(raw) {
    const end = raw.indexOf('\r\n\r\n');
    if (end < 0) return null;
    const lines = raw.subarray(0, end).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.1 (\d{3}) [^\r\n]*$/.exec(lines[0]);
    if (!m) return { status: NaN, line: lines[0] };
    const headers = {};
    for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        const k = l.slice(0, i).trim().toLowerCase();
        headers[k] = headers[k] !== undefined ? `${headers[k]}, ${l.slice(i + 1).trim()}` : l.slice(i + 1).trim();
    }
    const status = Number(m[1]);
    let bodyLen = 0;
    if (status !== 101) bodyLen = Number(headers['content-length']);
    const body = raw.subarray(end + 4, end + 4 + (Number.isFinite(bodyLen) ? bodyLen : 0));
    return { status, headers, body, bodyLen, rest: raw.subarray(end + 4 + body.length) };
}

// Server frames after a 101, as events: text/binary messages (fragments joined), pongs, the
// close code. Throws on anything a server must not send.
function serverEvents(bytes) {
    const out = [];
    let frag = null;
    const p = new FrameParser((f) => {
        if (f.masked || f.rsv) throw new Error(`server frame masked=${f.masked} rsv=${f.rsv}`);
        if (f.opcode === OP.PONG) out.push(`pong:${f.payload.toString('latin1')}`);
        else if (f.opcode === OP.CLOSE) out.push(`close:${f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005}`);
        else if (f.opcode === OP.PING) out.push('ping');
        else {
            if (f.opcode !== OP.CONT) frag = { op: f.opcode, parts: [] };
            frag.parts.push(f.payload);
            if (f.fin) {
                const b = Buffer.concat(frag.parts);
                out.push(`${frag.op === OP.TEXT ? 'text' : 'binary'}:${b.length > 64 ? `${b.length}:${crypto.createHash('sha1').update(b).digest('hex').slice(0, 12)}` : b.toString('latin1')}`);
                frag = null;
            }
        }
    });
    p.push(bytes);
    if (p.avail) out.push(`<${p.avail} bytes of an unfinished frame>`);
    return out;
}

function msgKey(op, b) {
    return `${op === OP.TEXT ? 'text' : 'binary'}:${b.length > 64 ? `${b.length}:${crypto.createHash('sha1').update(b).digest('hex').slice(0, 12)}` : b.toString('latin1')}`;
}

function upgrade({ method = 'GET', target = '/echo', version = 'HTTP/1.1', host = '127.0.0.1', key = KEY,
    wsVersion = '13', extra = '', eol = '\r\n' } = {}) {
    let r = `${method} ${target} ${version}${eol}`;
    if (host !== null) r += `Host: ${host}${eol}`;
    r += `Upgrade: websocket${eol}Connection: Upgrade${eol}`;
    if (key !== null) r += `Sec-WebSocket-Key: ${key}${eol}`;
    if (wsVersion !== null) r += `Sec-WebSocket-Version: ${wsVersion}${eol}`;
    return r + extra + eol;
}

const ACCEPT = acceptFor(KEY);

// ---- group 1: malformed HTTP ------------------------------------------------------------

function checkResponse(what, r, want) {
    h.check(r.reset === null, () => `${what}: connection reset (${r.reset}) instead of a clean close`);
    if (want === null) {
        h.check(r.raw.length === 0, () => `${what}: expected no response, got ${JSON.stringify(r.raw.toString('latin1').slice(0, 200))}`);
        return null;
    }
    const res = parseResponse(r.raw);
    h.check(res !== null, () => `${what}: expected ${want}, got no complete response: ${JSON.stringify(r.raw.toString('latin1').slice(0, 200))}`);
    h.check(res.status === want, () => `${what}: expected ${want}, got ${JSON.stringify(r.raw.toString('latin1').slice(0, 300))}`);
    if (want !== 101) {
        h.checkEq((res.headers.connection || '').toLowerCase(), 'close', `${what}: Connection header of the ${want}`);
        h.check(res.body.length === res.bodyLen, () => `${what}: Content-Length ${res.bodyLen}, body ${res.body.length} bytes`);
        h.checkEq(res.rest.length, 0, `${what}: bytes after the ${want} response`);
        h.check(!res.headers['sec-websocket-accept'], `${what}: a ${want} carrying Sec-WebSocket-Accept`);
    } else {
        h.checkEq(res.headers['sec-websocket-accept'], ACCEPT, `${what}: Sec-WebSocket-Accept`);
    }
    return res;
}

async function malformedHttp(server) {
    const X = (n, len = 10) => Array.from({ length: n }, (_, i) => `X-H${i}: ${'v'.repeat(len)}\r\n`).join('');
    const cases = [
        // [what, writes, expected status (null: nothing, just closed), options]
        ['request line without CRLF, then FIN', ['GET /echo HTTP/1.1'], null, { halfClose: true }],
        ['half a head, then FIN', ['GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpg'], null, { halfClose: true }],
        ['request line without CRLF, then silence (handshake timeout)', ['GET /echo HTTP/1.1'], null],
        ['nothing but CRLFs', ['\r\n\r\n\r\n'], 400],
        ['bare LF line endings', [upgrade({ eol: '\n' })], 400],
        ['bare LF ending one header line', [upgrade({ extra: 'X-A: b\n' })], 400],
        ['bare CR inside a header value', [upgrade({ extra: 'X-A: b\rc\r\n' })], 400],
        ['bare LF ending a plain GET', ['GET /healthz HTTP/1.1\nHost: 127.0.0.1\n\n'], 400],
        [`one header value over 8 KiB`, [upgrade({ extra: `X-Big: ${'b'.repeat(9000)}\r\n` })], 431],
        [`many headers adding up to over 8 KiB`, [upgrade({ extra: X(40, 200) })], 431],
        ['request line over 8 KiB without CRLF', [`GET /${'a'.repeat(9000)}`], 431],
        ['request line over 8 KiB in 1 KiB writes', Array.from({ length: 9 }, (_, i) => (i ? '' : 'GET /') + 'a'.repeat(1024)), 431],
        ['64 headers (at the limit)', [upgrade({ extra: X(59) })], 101],
        ['65 headers', [upgrade({ extra: X(60) })], 431],
        ['200 headers', [upgrade({ extra: X(195) })], 431],
        ['NUL in a header value', [upgrade({ extra: 'X-A: a\0b\r\n' })], 400],
        ['NUL in a header name', [upgrade({ extra: 'X-\0A: b\r\n' })], 400],
        ['NUL in the request target', [upgrade({ target: '/ec\0ho' })], 400],
        ['NUL as the first byte', ['\0GET /echo HTTP/1.1\r\n\r\n'], 400],
        ['DEL in a header value', [upgrade({ extra: 'X-A: a\x7fb\r\n' })], 400],
        ['header without a colon', [upgrade({ extra: 'X-A b\r\n' })], 400],
        ['space before the colon', [upgrade({ extra: 'X-A : b\r\n' })], 400],
        ['obs-fold continuation line', [upgrade({ extra: 'X-A: b\r\n  folded\r\n' })], 400],
        ['two spaces in the request line', ['GET  /echo HTTP/1.1\r\nHost: x\r\n\r\n'], 400],
        ['HTTP/2 connection preface', ['PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'], 400],
        ['lower-case http/1.1', [upgrade({ version: 'http/1.1' })], 400],
        ['HTTP/1.2', [upgrade({ version: 'HTTP/1.2' })], 400],
        ['binary garbage with a LF', [Buffer.concat([crypto.randomBytes(64).map((b) => (b === 10 ? 11 : b)), Buffer.from('\n')])], 400],
        ['Sec-WebSocket-Key not base64', [upgrade({ key: '!!!!!!!!!!!!!!!!!!!!!!==' })], 400],
        ['Sec-WebSocket-Key of 15 bytes', [upgrade({ key: crypto.randomBytes(15).toString('base64') })], 400],
        ['Sec-WebSocket-Key of 17 bytes', [upgrade({ key: crypto.randomBytes(17).toString('base64') })], 400],
        ['Sec-WebSocket-Key empty', [upgrade({ key: '' })], 400],
        ['no Sec-WebSocket-Key', [upgrade({ key: null })], 400],
        ['duplicate Sec-WebSocket-Key', [upgrade({ extra: `Sec-WebSocket-Key: ${KEY}\r\n` })], 400],
        ['duplicate Sec-WebSocket-Version', [upgrade({ extra: 'Sec-WebSocket-Version: 13\r\n' })], 400],
        ['Sec-WebSocket-Version: 8', [upgrade({ wsVersion: '8' })], 426],
        ['Sec-WebSocket-Version: 13, 8', [upgrade({ wsVersion: '13, 8' })], 426],
        ['HTTP/1.0 upgrade', [upgrade({ version: 'HTTP/1.0' })], 400],
        ['no Host', [upgrade({ host: null })], 400],
        ['empty Host', [upgrade({ host: '' })], 400],
        ['two Host headers', [upgrade({ extra: 'Host: other\r\n' })], 400],
        ['lower-case method get', [upgrade({ method: 'get' })], 405],
        ['request target *', [upgrade({ target: '*' })], 400],
        ['room name of 65 bytes', [upgrade({ target: `/${'r'.repeat(65)}` })], 400],
        ['room name with %00', [upgrade({ target: '/a%00b' })], 400],
        ['room name that is not UTF-8 (%C3%28)', [upgrade({ target: '/%C3%28' })], 400],
        ['bytes after a rejected request', [upgrade({ key: null }) + 'GARBAGE\r\n\r\nMORE'], 400],
        ['plain GET with a second request pipelined (one answer, then close)',
            ['GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'], 200],
        ['absolute-form target', [upgrade({ target: `http://127.0.0.1:${server.port}/echo` })], 101],
        ['valid upgrade, one byte per write', [...upgrade()].map((ch) => ch), 101],
        ['head over 8 KiB, one line per write', upgrade({ extra: X(40, 200) }).split(/(?<=\r\n)/), 431],
    ];
    await h.mapLimit(cases, 8, async ([what, writes, want, opts = {}]) => {
        const t0 = Date.now();
        const w = writes.map((x) => (typeof x === 'string' ? Buffer.from(x, 'latin1') : x));
        // A 101 stays open: the client sends a close frame after the response.
        if (want === 101) w.push(50, encodeFrame(OP.CLOSE, closePayload(1000)));
        const r = await exchange(server.port, w, what, opts);
        const res = checkResponse(what, r, want);
        if (want === 101) {
            const ev = serverEvents(res.rest);
            h.checkEq(ev.join(','), 'close:1000', `${what}: frames after the 101`);
        }
        if (want === null && !opts.halfClose) {
            // Silence is ended by the handshake timeout, not earlier and not much later.
            const took = Date.now() - t0;
            h.check(took >= HANDSHAKE_TIMEOUT_MS - 50 && took < HANDSHAKE_TIMEOUT_MS + 2500,
                () => `${what}: closed after ${took} ms, handshake timeout is ${HANDSHAKE_TIMEOUT_MS} ms`);
        }
    });
    // Pipelined WebSocket bytes in the same packet as the upgrade request are processed.
    const pipelined = [
        ['request + masked text frame in one write',
            [upgrade() + '', encodeFrame(OP.TEXT, Buffer.from('pipelined'))], 'text:pipelined'],
        ['request + text + ping + close in one write',
            [upgrade(), encodeFrame(OP.TEXT, Buffer.from('a')), encodeFrame(OP.PING, Buffer.from('b')),
                encodeFrame(OP.CLOSE, closePayload(1000))], 'text:a,pong:b,close:1000'],
        ['request + 100 KiB binary frame in one write',
            [upgrade(), encodeFrame(OP.BINARY, Buffer.alloc(100 << 10, 9))], msgKey(OP.BINARY, Buffer.alloc(100 << 10, 9))],
        ['request + bad frame in one write', [upgrade(), encodeFrame(OP.TEXT, Buffer.from('x'), { rsv: 2 })], 'close:1002'],
    ];
    for (const [what, parts, want] of pipelined) {
        for (const split of ['one write', 'head split, rest with the frames']) {
            const all = Buffer.concat(parts.map((p) => Buffer.from(p)));
            const hl = Buffer.byteLength(parts[0]);
            let writes = split === 'one write' ? [all] : [all.subarray(0, hl - 7), all.subarray(hl - 7)];
            const closes = want.endsWith('close:1000') || want.endsWith('close:1002');
            if (!closes) writes = [...writes, 100, encodeFrame(OP.CLOSE, closePayload(1000))];
            const r = await exchange(server.port, writes, `${what} (${split})`);
            const res = checkResponse(`${what} (${split})`, r, 101);
            const ev = serverEvents(res.rest).join(',');
            h.checkEq(ev, closes ? want : `${want},close:1000`, `${what} (${split}): frames after the 101`);
        }
    }
    return `${cases.length} malformed/edge requests, ${pipelined.length * 2} pipelined`;
}

// ---- group 2: frame streams cut at every byte ----------------------------------------------

const STREAMS = [
    {
        name: 'text, ping, binary, close',
        frames: () => [encodeFrame(OP.TEXT, Buffer.from('Hello')), encodeFrame(OP.PING, Buffer.from('p')),
            encodeFrame(OP.BINARY, Buffer.from([1, 2, 3])), encodeFrame(OP.CLOSE, closePayload(1000, 'bye'))],
        want: 'text:Hello,pong:p,binary:\x01\x02\x03,close:1000',
    },
    {
        name: 'fragmented text with a split code point and a ping between, close',
        frames: () => {
            const t = Buffer.from('a\u{1F600}\u20ACb', 'utf8');
            return [encodeFrame(OP.TEXT, t.subarray(0, 3), { fin: false }), encodeFrame(OP.PING, Buffer.from('q')),
                encodeFrame(OP.CONT, Buffer.alloc(0), { fin: false }),
                encodeFrame(OP.CONT, t.subarray(3)), encodeFrame(OP.CLOSE, closePayload(1001))];
        },
        want: `pong:q,text:${Buffer.from('a\u{1F600}\u20ACb', 'utf8').toString('latin1')},close:1001`,
    },
    {
        name: '300-byte binary (16-bit length), 126-byte text, close',
        frames: () => [encodeFrame(OP.BINARY, Buffer.alloc(300, 0x5a)), encodeFrame(OP.TEXT, Buffer.alloc(126, 't')),
            encodeFrame(OP.CLOSE, closePayload(4000))],
        want: `${msgKey(OP.BINARY, Buffer.alloc(300, 0x5a))},${msgKey(OP.TEXT, Buffer.alloc(126, 't'))},close:4000`,
    },
];

async function streamCase(server, writes, what, want) {
    const r = await exchange(server.port, writes, what);
    const res = checkResponse(what, r, 101);
    h.checkEq(serverEvents(res.rest).join(','), want, `${what}: what the server sent`);
}

async function cutStreams(server) {
    let n = 0;
    for (const st of STREAMS) {
        // The upgrade request and the frames as one byte stream, cut anywhere: cuts inside the
        // head, between head and frames, and inside every frame header and payload.
        const all = Buffer.concat([Buffer.from(upgrade()), ...st.frames()]);
        const cuts = Array.from({ length: all.length - 1 }, (_, i) => i + 1);
        await h.mapLimit(cuts, 12, (k) => streamCase(server, [all.subarray(0, k), all.subarray(k)],
            `${st.name}, cut at byte ${k} of ${all.length}`, st.want));
        n += cuts.length;
        // One byte per write with small pauses.
        const bytes = [];
        for (let i = 0; i < all.length; i++) {
            bytes.push(all.subarray(i, i + 1));
            if (i % 8 === 7) bytes.push(1);
        }
        await streamCase(server, bytes, `${st.name}, one byte per write`, st.want);
        n++;
    }
    // A 64-bit-length frame: cuts around the header and at a few places in the payload.
    const big = Buffer.alloc(70000, 0x33);
    const all = Buffer.concat([Buffer.from(upgrade()), encodeFrame(OP.BINARY, big), encodeFrame(OP.CLOSE, closePayload(1000))]);
    const hl = Buffer.byteLength(upgrade());
    const cuts = [];
    for (let k = hl - 3; k <= hl + 20; k++) cuts.push(k);
    for (const k of [hl + 1000, hl + 65536, all.length - 9, all.length - 1]) cuts.push(k);
    await h.mapLimit(cuts, 8, (k) => streamCase(server, [all.subarray(0, k), all.subarray(k)],
        `70000-byte binary, cut at byte ${k}`, `${msgKey(OP.BINARY, big)},close:1000`));
    n += cuts.length;
    return `${n} cut streams`;
}

// ---- group 3: resets ------------------------------------------------------------------------

// Connects, upgrades (unless raw), writes, then resets the connection (RST).
function resetAfter(port, writes, { upgradeFirst = true, pauseReading = false } = {}) {
    return new Promise((resolve, reject) => {
        const s = net.connect({ host: '127.0.0.1', port });
        s.setNoDelay(true);
        let head = Buffer.alloc(0);
        const go = async () => {
            for (const w of writes) {
                if (typeof w === 'number') await h.sleep(w);
                else await new Promise((r) => s.write(w, () => r()));
            }
            s.resetAndDestroy();
            resolve();
        };
        s.on('error', () => {});
        s.on('close', () => resolve());
        s.on('connect', () => {
            if (!upgradeFirst) { go(); return; }
            s.write(upgrade());
            const onData = (c) => {
                head = Buffer.concat([head, c]);
                if (head.indexOf('\r\n\r\n') < 0) return;
                if (!head.toString('latin1').startsWith('HTTP/1.1 101')) {
                    reject(new h.TestFailure(`reset case: no 101: ${JSON.stringify(head.toString('latin1').slice(0, 100))}`));
                    return;
                }
                s.off('data', onData);
                if (pauseReading) s.pause();
                go();
            };
            s.on('data', onData);
        });
    });
}

async function resets(server) {
    const kinds = [
        ['RST after one byte of a frame header', [Buffer.from([0x81])]],
        ['RST after a frame header (payload missing)', [encodeFrame(OP.TEXT, Buffer.alloc(1000, 0x61)).subarray(0, 8)]],
        ['RST in the middle of a 100 KiB payload', [encodeFrame(OP.BINARY, Buffer.alloc(100 << 10, 1)).subarray(0, 50000)]],
        ['RST in the middle of a fragmented message', [encodeFrame(OP.TEXT, Buffer.from('frag'), { fin: false }),
            encodeFrame(OP.CONT, Buffer.from('ment'), { fin: false })]],
        ['RST right after a 1 MiB message (echo queued or in flight)', [encodeFrame(OP.BINARY, Buffer.alloc(MAX_MESSAGE, 2))]],
        ['RST after a close frame (server closing)', [encodeFrame(OP.CLOSE, closePayload(1000))]],
        ['RST after a bad frame (server failing the connection)', [encodeFrame(7, Buffer.alloc(0))]],
        ['RST after ten pings', Array.from({ length: 10 }, () => encodeFrame(OP.PING, Buffer.from('x')))],
    ];
    let n = 0;
    const jobs = [];
    for (const [what, writes] of kinds) for (let i = 0; i < 8; i++) jobs.push([what, writes, {}]);
    // Not reading while the server sends 6 MiB of echoes, then RST: sends in flight fail.
    for (let i = 0; i < 4; i++) {
        jobs.push(['RST while the server sends to a client that stopped reading',
            Array.from({ length: 6 }, () => encodeFrame(OP.BINARY, Buffer.alloc(MAX_MESSAGE, 3))).concat([200]),
            { pauseReading: true }]);
    }
    for (let i = 0; i < 8; i++) {
        jobs.push(['RST in the middle of the request head', [Buffer.from('GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgr')],
            { upgradeFirst: false }]);
        jobs.push(['RST right after connecting', [], { upgradeFirst: false }]);
    }
    await h.mapLimit(jobs, 16, async ([, writes, opts]) => { await resetAfter(server.port, writes, opts); n++; });
    return `${n} resets`;
}

// ---- group 4: half-close ----------------------------------------------------------------------

async function halfClose(server) {
    const big = Buffer.alloc(MAX_MESSAGE, 0x42);
    const kinds = [
        ['GET /healthz, then FIN', ['GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'], (r) => {
            const res = checkResponse('GET /healthz then FIN', r, 200);
            h.checkEq(res.body.toString().trim(), 'ok', 'GET /healthz then FIN: body');
        }],
        ['bad upgrade, then FIN', [upgrade({ wsVersion: '8' })], (r) => checkResponse('bad upgrade then FIN', r, 426)],
        ['upgrade + text, then FIN', [upgrade(), encodeFrame(OP.TEXT, Buffer.from('half'))], (r) => {
            const res = checkResponse('upgrade + text then FIN', r, 101);
            const ev = serverEvents(res.rest);
            // The echo is owed; after it the server may add a close frame, then it closes.
            h.checkEq(ev[0], 'text:half', `upgrade + text then FIN: first frame (all: ${ev.join(',')})`);
            h.check(ev.length === 1 || (ev.length === 2 && /^close:\d+$/.test(ev[1])),
                () => `upgrade + text then FIN: frames ${ev.join(',')}`);
        }],
        ['upgrade + text + close, then FIN', [upgrade(), encodeFrame(OP.TEXT, Buffer.from('half')),
            encodeFrame(OP.CLOSE, closePayload(1000))], (r) => {
            const res = checkResponse('upgrade + text + close then FIN', r, 101);
            h.checkEq(serverEvents(res.rest).join(','), 'text:half,close:1000', 'upgrade + text + close then FIN: frames');
        }],
        ['upgrade + 1 MiB binary, then FIN', [upgrade(), encodeFrame(OP.BINARY, big)], (r) => {
            const res = checkResponse('upgrade + 1 MiB then FIN', r, 101);
            const ev = serverEvents(res.rest);
            h.checkEq(ev[0], msgKey(OP.BINARY, big), `upgrade + 1 MiB then FIN: first frame (all: ${ev.slice(0, 3).join(',')})`);
            h.check(ev.length === 1 || (ev.length === 2 && /^close:\d+$/.test(ev[1])),
                () => `upgrade + 1 MiB then FIN: frames ${ev.join(',')}`);
        }],
    ];
    const jobs = [];
    // Repeated: whether the FIN arrives in the same receive as the data is up to timing.
    for (const k of kinds) for (let i = 0; i < 15; i++) jobs.push(k);
    await h.mapLimit(jobs, 10, async ([what, writes, verify]) => {
        const r = await exchange(server.port, writes.map((w) => Buffer.from(w)), what, { halfClose: true });
        verify(r);
    });
    return `${jobs.length} half-closed connections`;
}

// ---- group 5: connect and vanish -------------------------------------------------------------

async function vanish(server) {
    const jobs = [];
    for (let i = 0; i < 150; i++) jobs.push('fin');
    for (let i = 0; i < 50; i++) jobs.push('rst');
    for (let i = 0; i < 50; i++) jobs.push('upgraded-fin');
    for (let i = 0; i < 50; i++) jobs.push('upgraded-rst');
    await h.mapLimit(jobs, 50, (kind) => new Promise((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port: server.port });
        s.on('error', () => {});
        s.on('close', () => resolve());
        s.on('connect', () => {
            if (kind === 'fin') s.destroy();
            else if (kind === 'rst') s.resetAndDestroy();
            else {
                s.write(upgrade());
                s.once('data', () => (kind === 'upgraded-fin' ? s.destroy() : s.resetAndDestroy()));
            }
        });
    }));
    // Silent connections are closed by the handshake timeout, with no response.
    const t0 = Date.now();
    const silent = await Promise.all(Array.from({ length: 40 }, (_, i) =>
        exchange(server.port, i % 2 ? [] : ['GET /echo HTTP/1.1\r\nHost: 1'], `silent connection ${i}`, { timeoutMs: HANDSHAKE_TIMEOUT_MS + 4000 })));
    for (const r of silent) checkResponse('silent connection', r, null);
    const took = Date.now() - t0;
    h.check(took >= HANDSHAKE_TIMEOUT_MS - 50, `silent connections closed after ${took} ms, before the handshake timeout`);
    return `${jobs.length} vanished, ${silent.length} silent (closed after ${took} ms)`;
}

// ---- health after each group ------------------------------------------------------------------

async function echoOnce(server, what) {
    const ws = await h.connectWs(server.url('/echo'));
    const back = new Promise((resolve) => ws.addEventListener('message', (ev) => resolve(ev.data), { once: true }));
    ws.send(`healthy after ${what}`);
    h.checkEq(await h.withTimeout(back, 5000, `echo after ${what}`), `healthy after ${what}`, `echo after ${what}`);
    const c = h.closed(ws);
    ws.close(1000);
    const ev = await h.withTimeout(c, 5000, `close after ${what}`);
    h.checkEq(ev.code, 1000, `close code after ${what}`);
}

async function main() {
    const o = h.parseOptions();
    h.check(typeof net.Socket.prototype.resetAndDestroy === 'function',
        `this Node (${process.version}) has no socket.resetAndDestroy(); Node 18.3 or newer is needed`);
    const groups = [
        ['malformed HTTP', malformedHttp],
        ['frames cut at every byte', cutStreams],
        ['resets', resets],
        ['half-close', halfClose],
        ['connect and vanish', vanish],
    ];
    const summary = [];
    for (const mode of ['--no-direct', 'direct descriptors']) {
        const args = ['-c', '2', '--handshake-timeout', `${HANDSHAKE_TIMEOUT_MS}ms`, '--max-message', String(MAX_MESSAGE)];
        if (mode === '--no-direct') args.push('--no-direct');
        const server = await new h.Server(o.server, args).start();
        const gauge = h.connectionGauge(await server.metrics());
        const g0 = await h.settled(() => server.metric(gauge), gauge);
        const fd0 = await server.settledFds();
        for (const [name, fn] of groups) {
            const t0 = Date.now();
            const what = await fn(server);
            await echoOnce(server, name);
            await server.expectFds(fd0, 8000, `${mode}: after ${name}`);
            await server.expectMetric(gauge, g0, 8000, `${mode}: after ${name}`);
            h.info(`${mode}: ${name}: ${what}; ${((Date.now() - t0) / 1000).toFixed(1)} s; fds back to ${fd0}, ${gauge} back to ${g0}`);
        }
        summary.push(`${mode} ok`);
        await server.stop();
    }
    return summary.join(', ');
}

h.run(path.basename(__filename, '.js'), main, { timeoutMs: 170000 });
