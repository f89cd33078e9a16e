// Soak load for bench/soak.sh: long-lived room members chatting, continuous connection churn
// (clean closes, FIN and RST drops, drops mid-frame and mid-handshake), echo round trips,
// protocol errors and malformed requests, for a fixed time against a running server. Once a
// minute it prints the server's descriptor count, resident memory and open-connections gauge
// with the client-side counters; every unexpected outcome is counted as an error by kind.
// Exit status 0 only when no error was counted and the server's descriptors and gauge came
// back to their idle values at the end. Loopback only.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const util = require('node:util');
const { OP, encodeFrame, closePayload, FrameParser, handshakeRequest, acceptFor } =
    require('../tests/integration/lib/rawws');

const { values: opt } = util.parseArgs({
    options: {
        port: { type: 'string' },
        pid: { type: 'string' },
        minutes: { type: 'string', default: '30' },
        members: { type: 'string', default: '200' },     // long-lived room members
        rooms: { type: 'string', default: '4' },
        churn: { type: 'string', default: '20' },        // churn cycles in flight
        'churn-pause-ms': { type: 'string', default: '10' }, // pause between one loop's cycles
        'report-s': { type: 'string', default: '60' },
    },
});
const PORT = Number(opt.port);
const PID = Number(opt.pid);
const END = Date.now() + Number(opt.minutes) * 60000;
const MEMBERS = Number(opt.members);
const ROOMS = Number(opt.rooms);
const CHURN = Number(opt.churn);
const REPORT_MS = Number(opt['report-s']) * 1000;
const CHURN_PAUSE_MS = Number(opt['churn-pause-ms']);

const stats = { cycles: 0, sent: 0, received: 0, echoes: 0, protoCloses: 0, rejected: 0, reconnects: 0 };
const errors = {};
function error(kind, detail) {
    errors[kind] = (errors[kind] || 0) + 1;
    if (errors[kind] <= 3) process.stderr.write(`soak: error ${kind}: ${detail}\n`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function serverFds() {
    try { return fs.readdirSync(`/proc/${PID}/fd`).length; } catch (e) { return NaN; }
}

function serverRssKiB() {
    try { return Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${PID}/status`, 'utf8'))[1]); } catch (e) { return NaN; }
}

function metrics() {
    return new Promise((resolve) => {
        const req = http.get({ host: '127.0.0.1', port: PORT, path: '/metrics', agent: false, timeout: 5000 }, (res) => {
            let body = '';
            res.on('data', (c) => { body += c; });
            res.on('end', () => {
                const v = {};
                for (const line of body.split('\n')) {
                    const m = /^(uringws_[a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
                    if (m && !m[2]) v[m[1]] = Number(m[3]);
                }
                resolve(v);
            });
        });
        req.on('timeout', () => req.destroy());
        req.on('error', () => { error('metrics', 'GET /metrics failed'); resolve({}); });
    });
}

// A raw WebSocket connection: resolves once upgraded, with frame callbacks.
function connect(room, onFrame, onClose) {
    return new Promise((resolve, reject) => {
        const key = crypto.randomBytes(16).toString('base64');
        const s = net.connect({ host: '127.0.0.1', port: PORT });
        s.setNoDelay(true);
        let head = Buffer.alloc(0);
        let up = false;
        const parser = new FrameParser(onFrame);
        s.on('error', () => {});
        s.on('close', () => { if (!up) reject(new Error('closed before 101')); else onClose(); });
        s.on('data', (c) => {
            if (!up) {
                head = Buffer.concat([head, c]);
                const end = head.indexOf('\r\n\r\n');
                if (end < 0) return;
                const text = head.subarray(0, end).toString('latin1');
                if (!text.startsWith('HTTP/1.1 101') || !text.includes(acceptFor(key))) {
                    s.destroy();
                    reject(new Error(`handshake: ${JSON.stringify(text.slice(0, 80))}`));
                    return;
                }
                up = true;
                resolve(s);
                c = head.subarray(end + 4);
                if (!c.length) return;
            }
            try { parser.push(c); } catch (e) { error('server-frame', e.message); s.destroy(); }
        });
        s.write(handshakeRequest(room, key));
    });
}

// ---- long-lived members ------------------------------------------------------------------

async function member(i) {
    const room = `/soak-${i % ROOMS}`;
    while (Date.now() < END) {
        let s;
        let closed = false;
        let lastRx = Date.now();
        try {
            s = await connect(room, (f) => {
                lastRx = Date.now();
                if (f.opcode === OP.TEXT || f.opcode === OP.BINARY) stats.received++;
                else if (f.opcode === OP.PING) s.write(encodeFrame(OP.PONG, f.payload));
                else if (f.opcode === OP.CLOSE) {
                    const code = f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005;
                    if (code !== 1000 && code !== 1001) error('member-close', `member ${i} got close ${code}`);
                }
            }, () => { closed = true; });
        } catch (e) {
            error('member-connect', e.message);
            await sleep(1000);
            continue;
        }
        // Chat for a while (one message every ~1 s per member), then leave cleanly and rejoin.
        const stayUntil = Math.min(END, Date.now() + 20000 + Math.random() * 40000);
        while (!closed && Date.now() < stayUntil) {
            const n = Math.random() < 0.05 ? 2000 + Math.floor(Math.random() * 60000) : 10 + Math.floor(Math.random() * 200);
            s.write(encodeFrame(OP.TEXT, Buffer.from(`m${i}:`.padEnd(n, 'x'))));
            stats.sent++;
            await sleep(500 + Math.random() * 1000);
            if (Date.now() - lastRx > 30000) {
                error('member-stalled', `member ${i} received nothing for 30 s`);
                break;
            }
        }
        if (closed) {
            error('member-dropped', `member ${i} was disconnected by the server`);
        } else {
            s.write(encodeFrame(OP.CLOSE, closePayload(1000)));
            await new Promise((r) => { s.once('close', r); setTimeout(() => { s.destroy(); r(); }, 6000); });
        }
        stats.reconnects++;
    }
}

// ---- churn --------------------------------------------------------------------------------

const MALFORMED = [
    ['GET /echo HTTP/1.1\nHost: x\n\n', 400],
    [`GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(9000)}\r\n\r\n`, 431],
    ['GET /echo HTTP/1.0\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n', 400],
    ['GET /nope HTTP/1.1\r\nHost: x\r\n\r\n', 404],
];

function malformed() {
    const [req, want] = MALFORMED[Math.floor(Math.random() * MALFORMED.length)];
    return new Promise((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port: PORT });
        let got = '';
        const t = setTimeout(() => { error('malformed-timeout', `no close after ${JSON.stringify(req.slice(0, 30))}`); s.destroy(); }, 10000);
        s.on('data', (c) => { got += c.toString('latin1'); });
        s.on('error', () => {});
        s.on('close', () => {
            clearTimeout(t);
            if (!got.startsWith(`HTTP/1.1 ${want} `)) error('malformed-status', `expected ${want}, got ${JSON.stringify(got.slice(0, 40))}`);
            else stats.rejected++;
            resolve();
        });
        s.write(req);
    });
}

async function cycle() {
    const r = Math.random();
    if (r < 0.05) return malformed();
    const kind = r < 0.45 ? 'clean' : r < 0.6 ? 'fin' : r < 0.72 ? 'rst' : r < 0.8 ? 'mid-frame' : r < 0.9 ? 'protocol-error' : 'pre-handshake';
    if (kind === 'pre-handshake') {
        return new Promise((resolve) => {
            const s = net.connect({ host: '127.0.0.1', port: PORT });
            s.on('error', () => {});
            s.on('close', resolve);
            s.on('connect', () => s.write('GET /echo HTTP/1.1\r\nHo', () => (Math.random() < 0.5 ? s.destroy() : s.resetAndDestroy())));
        });
    }
    const room = Math.random() < 0.5 ? '/echo' : `/soak-${Math.floor(Math.random() * ROOMS)}`;
    const payload = Buffer.from(`c${stats.cycles}:${crypto.randomBytes(8).toString('hex')}`.padEnd(10 + Math.floor(Math.random() * 3000), '.'));
    let echoed;
    const gotEcho = new Promise((r) => { echoed = r; });
    let closeCode = null;
    let gone;
    const goneP = new Promise((r) => { gone = r; });
    let s;
    try {
        s = await connect(room, (f) => {
            if (f.opcode === OP.CLOSE) closeCode = f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005;
            else if (f.payload.equals(payload)) echoed();
        }, () => gone());
    } catch (e) {
        error('churn-connect', e.message);
        return;
    }
    const frame = encodeFrame(OP.TEXT, payload);
    const within = (p, ms) => Promise.race([p.then(() => true), sleep(ms).then(() => false)]);
    switch (kind) {
    case 'clean':
        s.write(frame);
        if (!(await within(gotEcho, 10000))) error('churn-echo', `no echo on ${room}`);
        else stats.echoes++;
        s.write(encodeFrame(OP.CLOSE, closePayload(1000)));
        if (!(await within(goneP, 10000))) { error('churn-close', 'server did not close'); s.destroy(); }
        else if (closeCode !== 1000) error('churn-close', `close code ${closeCode}`);
        break;
    case 'fin':
        s.write(frame);
        if (await within(gotEcho, 10000)) stats.echoes++;
        else error('churn-echo', `no echo on ${room}`);
        s.destroy();
        break;
    case 'rst':
        s.write(frame, () => s.resetAndDestroy());
        break;
    case 'mid-frame':
        s.write(frame.subarray(0, 9), () => s.destroy());
        break;
    case 'protocol-error':
        s.write(encodeFrame(OP.TEXT, Buffer.from([0xc0, 0xaf])));
        if (!(await within(goneP, 10000))) { error('churn-proto', 'no close after invalid UTF-8'); s.destroy(); }
        else if (closeCode !== 1007) error('churn-proto', `close ${closeCode} after invalid UTF-8`);
        else stats.protoCloses++;
        break;
    default:
        break;
    }
    stats.cycles++;
}

async function churner() {
    while (Date.now() < END) {
        await cycle();
        if (CHURN_PAUSE_MS) await sleep(CHURN_PAUSE_MS);
    }
}

// ---- reporting ----------------------------------------------------------------------------

function fmtErrors() {
    const e = Object.entries(errors);
    return e.length ? e.map(([k, v]) => `${k}=${v}`).join(' ') : '0';
}

async function report(t0) {
    const m = await metrics();
    const min = ((Date.now() - t0) / 60000).toFixed(1);
    console.log(`t=${min}m fds=${serverFds()} rss=${serverRssKiB()}KiB conns=${m.uringws_connections} ` +
        `queue=${m.uringws_queue_bytes}B cycles=${stats.cycles} echoes=${stats.echoes} sent=${stats.sent} ` +
        `received=${stats.received} proto_closes=${stats.protoCloses} rejected=${stats.rejected} ` +
        `rejoins=${stats.reconnects} errors=${fmtErrors()}`);
}

async function main() {
    if (!PORT || !PID) {
        console.error('usage: node soak.js --port PORT --pid SERVER_PID [--minutes 30] [--members 200] [--rooms 4] [--churn 20]');
        process.exit(2);
    }
    const t0 = Date.now();
    const m0 = await metrics();
    // Idle values once the connection of the /metrics request itself has gone.
    let fd0 = serverFds();
    for (let i = 0; i < 50; i++) {
        await sleep(100);
        const now = serverFds();
        if (now === fd0) break;
        fd0 = now;
    }
    console.log(`soak: ${opt.minutes} min, ${MEMBERS} members in ${ROOMS} rooms, ${CHURN} churn loops; ` +
        `server pid ${PID} port ${PORT}: idle fds=${fd0} rss=${serverRssKiB()}KiB conns=${m0.uringws_connections}`);
    const timer = setInterval(() => report(t0), REPORT_MS);
    const members = [];
    for (let i = 0; i < MEMBERS; i++) {
        members.push(member(i));
        if (i % 20 === 19) await sleep(50);
    }
    await Promise.all([...members, ...Array.from({ length: CHURN }, churner)]);
    clearInterval(timer);
    await report(t0);
    // Everything has left: the server must be back at its idle descriptors and gauge.
    let fd = NaN;
    let conns = NaN;
    for (let i = 0; i < 100; i++) {
        await sleep(100);
        fd = serverFds();
        conns = (await metrics()).uringws_connections;
        if (fd === fd0 && conns === m0.uringws_connections) break;
    }
    const ok = fd === fd0 && conns === m0.uringws_connections && Object.keys(errors).length === 0;
    console.log(`soak: end after ${((Date.now() - t0) / 60000).toFixed(1)} min: fds ${fd0} -> ${fd}, ` +
        `conns ${m0.uringws_connections} -> ${conns}, rss ${serverRssKiB()}KiB, errors ${fmtErrors()}: ${ok ? 'OK' : 'FAILED'}`);
    process.exit(ok ? 0 : 1);
}

main();
