// Slow consumers against healthy ones in the same room, for both --slow-policy values. Per
// policy, one server (-c 2, --max-queue 256k) and one room with 1000 healthy subscribers
// (raw clients that read everything) and a publisher sending 1 KiB messages at a steady rate:
//   1. baseline: the publisher sends MESSAGES messages; every healthy subscriber must get
//      every one, in order; their delivery latencies (publish to receipt, one clock) give
//      the baseline p99;
//   2. 50 slow subscribers join (slow_clients.py: they upgrade, then read nothing; small
//      socket buffers so --max-queue, not the kernel, holds their backlog), and the same run
//      is repeated. The healthy ones must again get every message in order, with a p99 of at
//      most FACTOR x the baseline p99 + SLACK_MS, and the server's RSS (sampled throughout)
//      must stay under connections x --max-queue + RSS_FIXED_MIB.
//   3. the slow ones read again. `close`: each got a contiguous prefix of the messages then a
//      close frame 1008 (or, had it not room even for that, an EOF), and
//      uringws_slow_consumer_closes_total is 50. `drop-oldest`: each is still open, got the
//      last message, saw gaps but whole frames in increasing order, and the dropped-frames
//      counter is above 0.
'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./lib/harness');
const { OP, RawClient } = require('./lib/rawws');

const HEALTHY = 1000;
const SLOW = 50;
const MESSAGES = 600;            // per phase; 600 KiB is past 256 KiB + ~100 KB of socket buffers
const WARMUP = 100;
const RATE = 150;                // messages per second
const SIZE = 1024;
const MAX_QUEUE = 256 << 10;
const FACTOR = 3;
const SLACK_MS = 20;
const RSS_FIXED_MIB = 96;
const PY = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

function rssKiB(pid) {
    return Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
}

function percentile(sorted, p) {
    return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

// Healthy subscriber: checks order and completeness, records latencies into the phase's array.
function healthy(state) {
    const sub = { next: 0, bad: null };
    sub.handlers = {
        message: (op, p) => {
            const now = performance.now();
            const id = p.readUInt32BE(0);
            if (id !== sub.next && !sub.bad) sub.bad = `expected message ${sub.next}, got ${id}`;
            sub.next = id + 1;
            const ph = state.phase;
            if (ph) ph.lat[ph.n++] = now - p.readDoubleLE(4);
        },
        error: (e) => { sub.bad = sub.bad || e.message; },
        close: (code) => { sub.bad = sub.bad || `closed by the server with ${code}`; },
    };
    return sub;
}

// Publishes ids [from, from + count) at RATE; returns when all are written.
async function publish(pub, from, count) {
    const payload = Buffer.alloc(SIZE, 0x61);
    const t0 = performance.now();
    for (let i = 0; i < count; i++) {
        const due = t0 + (i * 1000) / RATE;
        const wait = due - performance.now();
        if (wait > 1) await h.sleep(wait);
        payload.writeUInt32BE(from + i, 0);
        payload.writeDoubleLE(performance.now(), 4);
        await pub.send(OP.BINARY, payload);
    }
}

async function phase(server, state, pub, subs, from, what, count = MESSAGES) {
    state.phase = { lat: new Float64Array(HEALTHY * count), n: 0 };
    let rssMax = 0;
    const sampler = setInterval(() => { rssMax = Math.max(rssMax, rssKiB(server.pid)); }, 50);
    await publish(pub, from, count);
    const last = from + count;
    await h.pollUntil(() => subs.every((s) => s.next >= last || s.bad), 20000,
        () => `${what}: ${subs.filter((s) => s.next < last).length} healthy subscribers still missing messages`, 20);
    clearInterval(sampler);
    rssMax = Math.max(rssMax, rssKiB(server.pid));
    const bad = subs.find((s) => s.bad);
    if (bad) h.fail(`${what}: a healthy subscriber: ${bad.bad}`);
    const ph = state.phase;
    state.phase = null;
    h.checkEq(ph.n, HEALTHY * count, `${what}: deliveries to healthy subscribers`);
    const sorted = Array.from(ph.lat).sort((a, b) => a - b);
    return { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: sorted[sorted.length - 1], rssMax };
}

function slowClients(port, roomPath) {
    const py = spawn(PY, [path.join(__dirname, 'slow_clients.py'), '--port', String(port), '--path', roomPath,
        '--count', String(SLOW)], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const lines = [];
    let waiter = null;
    py.stdout.on('data', (c) => {
        out += c;
        let i;
        while ((i = out.indexOf('\n')) >= 0) {
            lines.push(JSON.parse(out.slice(0, i)));
            out = out.slice(i + 1);
            if (waiter) waiter();
        }
    });
    py.stderr.on('data', (c) => { err += c; });
    const next = (ms, what) => h.withTimeout(new Promise((resolve, reject) => {
        const check = () => {
            if (lines.length) { waiter = null; resolve(lines.shift()); }
        };
        waiter = check;
        py.once('exit', (code) => { if (!lines.length) reject(new h.TestFailure(`slow_clients.py exited with ${code}: ${err}`)); });
        check();
    }), ms, `slow_clients.py: ${what}`);
    return { py, next, send: (line) => py.stdin.write(`${line}\n`) };
}

async function runPolicy(o, policy) {
    const server = await new h.Server(o.server, ['-c', '2', '--max-queue', String(MAX_QUEUE), '--slow-policy', policy,
        '--ping-interval', '0', '--close-timeout', '10s', '-v']).start();
    const room = `/slow-${policy}`;
    const state = { phase: null };
    const subs = Array.from({ length: HEALTHY }, () => healthy(state));
    await h.mapLimit(subs, 100, async (s) => { s.client = await RawClient.connect(server.port, room, s.handlers); });
    const pub = await RawClient.connect(server.port, room, { message: () => {} });

    // Warm-up (first-touch allocations on both sides), not measured.
    await phase(server, state, pub, subs, 0, `${policy} warm-up`, WARMUP);
    const base = await phase(server, state, pub, subs, WARMUP, `${policy} baseline`);
    const slow = slowClients(server.port, room);
    h.checkEq((await slow.next(15000, 'upgrades')).ready, SLOW, 'slow clients upgraded');
    const first = WARMUP + MESSAGES;
    const loaded = await phase(server, state, pub, subs, first, `${policy} with ${SLOW} slow`);
    const last = first + MESSAGES - 1;
    slow.send(`read 15 ${last}`);
    const res = (await slow.next(20000, 'reports')).clients;
    h.checkEq(res.length, SLOW, 'slow client reports');

    const factor = loaded.p99 / base.p99;
    const summary = `${policy}: healthy p99 ${base.p99.toFixed(1)} ms -> ${loaded.p99.toFixed(1)} ms with ${SLOW} slow ` +
        `(x${factor.toFixed(2)}; p50 ${base.p50.toFixed(1)} -> ${loaded.p50.toFixed(1)}), server RSS max ${(loaded.rssMax / 1024).toFixed(0)} MiB`;
    h.info(summary);
    h.check(loaded.p99 <= FACTOR * base.p99 + SLACK_MS,
        `${policy}: healthy p99 ${loaded.p99.toFixed(1)} ms with slow consumers > ${FACTOR} x ${base.p99.toFixed(1)} + ${SLACK_MS} ms`);
    const conns = HEALTHY + SLOW + 1;
    const rssLimitKiB = (conns * MAX_QUEUE) / 1024 + RSS_FIXED_MIB * 1024;
    h.check(loaded.rssMax < rssLimitKiB, `${policy}: server RSS ${loaded.rssMax} KiB over ${rssLimitKiB} KiB`);

    const m = await server.metrics();
    for (const [i, r] of res.entries()) {
        h.check(!r.error, () => `${policy}: slow client ${i}: ${r.error}`);
        h.check(r.in_order, `${policy}: slow client ${i} saw messages out of order`);
        h.check(r.ids > 0 && r.first === first, () => `${policy}: slow client ${i} did not start at message ${first}: ${JSON.stringify(r)}`);
        if (policy === 'close') {
            h.check(r.close === 1008 || (r.close === null && r.eof), () => `${policy}: slow client ${i} not closed with 1008: ${JSON.stringify(r)}`);
            h.checkEq(r.gaps, 0, `${policy}: gaps seen by slow client ${i} before its close`);
            h.check(r.last < last, `${policy}: slow client ${i} got every message: it was never slow`);
        } else {
            h.check(r.close === null && !r.eof, () => `${policy}: slow client ${i} was closed: ${JSON.stringify(r)}`);
            h.checkEq(r.last, last, `${policy}: last message seen by slow client ${i}`);
            h.check(r.gaps > 0, `${policy}: slow client ${i} saw no gap`);
        }
    }
    const closes = m.values.get('uringws_slow_consumer_closes_total');
    const dropped = m.values.get('uringws_slow_consumer_dropped_frames_total');
    const logged = (server.log.match(policy === 'close' ? /slow consumer: \d+ bytes.*closing with 1008/g
        : /slow consumer: dropped its \d+ oldest queued frames/g) || []).length;
    h.checkEq(logged, SLOW, `${policy}: -v log lines for the slow consumers`);
    if (policy === 'close') {
        h.checkEq(closes, SLOW, 'uringws_slow_consumer_closes_total');
        h.checkEq(dropped, 0, 'dropped frames under close');
    } else {
        h.checkEq(closes, 0, 'slow-consumer closes under drop-oldest');
        h.check(dropped > 0, 'uringws_slow_consumer_dropped_frames_total is 0');
        h.check(m.values.get('uringws_slow_consumer_dropped_bytes_total') >= dropped * SIZE,
            'dropped bytes below dropped frames x message size');
    }
    slow.py.stdin.end();
    await Promise.all(subs.map((s) => s.client.close(1000)));
    await pub.close(1000);
    await server.stop();
    return summary;
}

h.run('slow_consumer', async () => {
    const o = h.parseOptions({ policy: { type: 'string' } });
    const policies = o.policy ? [o.policy] : ['close', 'drop-oldest'];
    const out = [];
    for (const p of policies) out.push(await runPolicy(o, p));
    return out.join('; ');
}, { timeoutMs: 150000 });
