// Connection churn: 10,000 connect / handshake / message / disconnect cycles, about 50 at a
// time, half to /echo and half to a few busy rooms, ending in every way a client can end: a
// clean close handshake, a FIN without a close frame, an RST, a drop in the middle of a frame,
// a drop before the handshake completes, and (a few) undici WebSocket clients. Afterwards the
// server holds exactly the descriptors it held before, its open-connections gauge is back at
// the idle value, and its resident memory is within RSS_SLACK of what it was after a warm-up.
// The server runs with --no-direct so that every socket is a descriptor in /proc/PID/fd.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const h = require('./lib/harness');
const { Rng } = require('./lib/messages');
const { OP, encodeFrame, closePayload, FrameParser, handshakeRequest, acceptFor } = require('./lib/rawws');

const CYCLES = 10000;
const WARMUP = 1000;          // cycles before the RSS reference is taken
const PARALLEL = 50;
const ROOMS = 8;
// Memory the server may keep after the churn compared with after the warm-up. Freed
// connection structs, parser buffers and send-queue nodes go back to malloc, which keeps
// some of them cached (glibc arenas, one per worker thread, trim only above 128 KiB at the
// top of the heap), and the connection table does not shrink. 50 connections at a time cost
// far less than this; a leak of even 1 KiB per cycle (10 MiB over 9,000 cycles) exceeds it.
const RSS_SLACK_KIB = 8 * 1024;
const CYCLE_MS = 10000;

const KINDS = [
    ['clean', 40],           // message, echo, close 1000, server closes
    ['fin', 20],             // message, echo, then FIN without a close frame
    ['rst', 15],             // message, then RST without waiting for the echo
    ['mid-frame', 10],       // half a frame, then FIN
    ['pre-handshake', 10],   // half a request head, then FIN or RST
    ['undici', 5],           // browser-compatible client, clean close
];

function rssKiB(pid) {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return Number(m[1]);
}

// One raw cycle. Resolves when the connection is gone; rejects on a protocol problem.
function rawCycle(port, kind, room, payload) {
    return new Promise((resolve, reject) => {
        const key = crypto.randomBytes(16).toString('base64');
        const s = net.connect({ host: '127.0.0.1', port });
        s.setNoDelay(true);
        let head = null;
        let pending = Buffer.alloc(0);
        let echoed = false;
        let closeCode = null;
        let done = false;
        const finish = (err) => {
            if (done) return;
            done = true;
            clearTimeout(timer);
            if (err) {
                s.destroy();
                reject(err);
            } else {
                resolve();
            }
        };
        const timer = setTimeout(() => finish(new Error(`${kind} cycle on ${room}: stuck for ${CYCLE_MS} ms ` +
            `(head ${head ? 'in' : 'missing'}, echoed ${echoed}, close ${closeCode})`)), CYCLE_MS);
        const parser = new FrameParser((f) => {
            if (f.opcode === OP.CLOSE) {
                closeCode = f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005;
                return;
            }
            if ((f.opcode === OP.TEXT || f.opcode === OP.BINARY) && f.payload.equals(payload)) onEcho();
        });
        const onEcho = () => {
            if (echoed) return;
            echoed = true;
            if (kind === 'clean') s.write(encodeFrame(OP.CLOSE, closePayload(1000)));
            else if (kind === 'fin') s.destroy();
        };
        s.on('error', (e) => {
            // Only the abrupt kinds may see errors (their own RST, or the server's answer to a
            // FIN with unread data).
            if (kind === 'clean') finish(new Error(`clean cycle on ${room}: ${e.message}`));
        });
        s.on('close', () => {
            if (kind === 'clean') {
                if (!echoed) return finish(new Error(`clean cycle on ${room}: closed before the echo`));
                if (closeCode !== 1000) return finish(new Error(`clean cycle on ${room}: close code ${closeCode}`));
            }
            finish();
        });
        s.on('data', (chunk) => {
            if (head === null) {
                pending = Buffer.concat([pending, chunk]);
                const end = pending.indexOf('\r\n\r\n');
                if (end < 0) return;
                head = pending.subarray(0, end).toString('latin1');
                if (!head.startsWith('HTTP/1.1 101') || !head.includes(`Sec-WebSocket-Accept: ${acceptFor(key)}`)) {
                    return finish(new Error(`${kind} cycle on ${room}: bad handshake response ${JSON.stringify(head.slice(0, 100))}`));
                }
                chunk = pending.subarray(end + 4);
                afterHandshake();
            }
            try {
                if (chunk.length) parser.push(chunk);
            } catch (e) {
                finish(e);
            }
        });
        const afterHandshake = () => {
            const frame = encodeFrame(payload.length % 2 ? OP.BINARY : OP.TEXT, payload);
            switch (kind) {
            case 'clean':
            case 'fin':
                s.write(frame);
                break;
            case 'rst':
                s.write(frame, () => s.resetAndDestroy());
                break;
            case 'mid-frame':
                s.write(frame.subarray(0, Math.max(1, frame.length >> 1)), () => s.destroy());
                break;
            default:
                finish(new Error(kind));
            }
        };
        s.on('connect', () => {
            const req = handshakeRequest(room, key);
            if (kind === 'pre-handshake') {
                s.write(req.slice(0, 20 + (payload.length % 40)), () => (payload.length % 2 ? s.destroy() : s.resetAndDestroy()));
                return;
            }
            s.write(req);
        });
    });
}

async function undiciCycle(server, room, payload) {
    const ws = await h.connectWs(server.url(room));
    const got = new Promise((resolve) => ws.addEventListener('message', (ev) => {
        if (typeof ev.data === 'string' && ev.data === payload) resolve();
    }));
    ws.send(payload);
    await h.withTimeout(got, CYCLE_MS, `undici cycle on ${room}: echo`);
    const c = h.closed(ws);
    ws.close(1000);
    const ev = await h.withTimeout(c, CYCLE_MS, `undici cycle on ${room}: close`);
    h.checkEq(ev.code, 1000, `undici cycle on ${room}: close code`);
}

async function main() {
    const o = h.parseOptions({ cycles: { type: 'string' } });
    const cycles = o.cycles ? Number(o.cycles) : CYCLES;
    const rng = new Rng(o.seed);
    const server = await new h.Server(o.server, ['-c', '2', '--no-direct']).start();
    const gauge = h.connectionGauge(await server.metrics());
    const g0 = await h.settled(() => server.metric(gauge), gauge);
    // The gauge counts the connection that asks for /metrics; no other may be left.
    h.check(g0 <= 1, `${gauge} is ${g0} on an idle server`);
    const fd0 = await server.settledFds();
    const rssStart = rssKiB(server.pid);

    const total = KINDS.reduce((a, [, w]) => a + w, 0);
    const plan = Array.from({ length: cycles }, (_, i) => {
        let x = rng.int(0, total - 1);
        let kind = KINDS[0][0];
        for (const [k, w] of KINDS) {
            if (x < w) { kind = k; break; }
            x -= w;
        }
        const room = rng.chance(0.5) ? '/echo' : `/churn-${rng.int(0, ROOMS - 1)}`;
        // Unique payloads, so a room member recognises its own message among the others'.
        const size = rng.chance(0.1) ? rng.int(126, 70000) : rng.int(1, 125);
        const id = `${i}:`;
        // Odd lengths go as binary (random bytes), even ones as text (ASCII).
        const n = Math.max(size, id.length + 1);
        let payload;
        if (kind === 'undici') payload = id + 'u'.repeat(n);
        else if (n % 2) payload = Buffer.concat([Buffer.from(id), rng.bytes(n - id.length)]);
        else payload = Buffer.concat([Buffer.from(id), Buffer.from(rng.bytes(n).toString('base64').slice(0, n - id.length))]);
        return { kind, room, payload };
    });
    const counts = {};
    const started = Date.now();
    let rssWarm = null;
    let doneCycles = 0;
    let lastReport = Date.now();
    await h.mapLimit(plan, PARALLEL, async (c) => {
        if (c.kind === 'undici') await undiciCycle(server, c.room, c.payload);
        else {
            await rawCycle(server.port, c.kind, c.room, c.payload).catch((e) => h.fail(e.message));
        }
        counts[c.kind] = (counts[c.kind] || 0) + 1;
        doneCycles++;
        if (doneCycles === WARMUP) rssWarm = rssKiB(server.pid);
        if (Date.now() - lastReport > 10000) {
            lastReport = Date.now();
            h.info(`${doneCycles}/${cycles} cycles, server fds ${server.fdCount()}, RSS ${rssKiB(server.pid)} KiB`);
        }
    });
    const secs = (Date.now() - started) / 1000;
    if (rssWarm === null) rssWarm = rssStart;
    await server.expectFds(fd0, 10000, `after ${cycles} churn cycles`);
    const fdEnd = server.fdCount();
    await server.expectMetric(gauge, g0, 10000, `after ${cycles} churn cycles`);
    const m = await server.metrics();
    const accepted = m.values.get(h.connectionCounter(m));
    h.check(accepted >= cycles, `${accepted} connections accepted for ${cycles} cycles`);
    const rssEnd = rssKiB(server.pid);
    h.info(`${cycles} cycles in ${secs.toFixed(1)} s (${Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(', ')})`);
    h.info(`fds ${fd0} -> ${fdEnd}; ${gauge} back to ${g0}; ` +
        `RSS start ${rssStart} KiB, after ${WARMUP} cycles ${rssWarm} KiB, end ${rssEnd} KiB; ` +
        `receive buffers ${m.values.get('uringws_recv_buffers')}`);
    const sanitizer = h.sanitizer(server.pid);
    if (sanitizer) {
        h.info(`sanitized server (${sanitizer}): RSS bound not applied, LeakSanitizer checks at exit`);
    } else {
        h.check(rssEnd - rssWarm <= RSS_SLACK_KIB,
            `server RSS grew by ${rssEnd - rssWarm} KiB over ${cycles - WARMUP} cycles (${rssWarm} -> ${rssEnd} KiB), more than ${RSS_SLACK_KIB} KiB`);
    }
    await server.stop();
    return `${cycles} cycles in ${secs.toFixed(1)} s; RSS ${rssWarm} -> ${rssEnd} KiB; fds back to ${fd0}`;
}

h.run(path.basename(__filename, '.js'), main, { timeoutMs: 170000 });
