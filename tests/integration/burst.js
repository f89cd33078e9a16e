// Bursts and stuck readers against the slow-consumer rule (docs/operations.md, "Slow
// consumers"): a member is judged by what its socket does over --slow-grace, not by what one
// loop pass queued for it.
//   1. burst: eager readers (raw clients that read everything) in one room, and a publisher
//      (a member too, reading its own copies) that writes 4 x --max-queue of 64 KiB frames in
//      ONE write(). Every member must get every message, byte for byte and in order, and
//      nothing may be counted as a slow-consumer close or drop. Under -c 1 and -c 2, both
//      policies, the frame limit (--max-queue-frames) as well as the byte limit, and with
//      1000 members at -c 2 plus a wss member.
//   2. stuck: healthy readers beside readers that stop reading, under a sustained stream far
//      larger than --max-queue plus the socket buffers. The healthy ones get everything; only
//      the stuck ones are closed with 1008 (`close`) or trimmed (`drop-oldest`); the log line
//      names the limit, the excess and the time over it; the server's peak RSS stays within
//      a bound far below the stream's size (printed).
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const h = require('./lib/harness');
const T = require('./lib/tlsutil');
const { OP, encodeFrame, RawClient } = require('./lib/rawws');

const FRAME = 64 << 10;

function rssKiB(pid) {
    return Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
}

// A member that checks each message against `expected` (an array of Buffers), in order.
function member(expected) {
    const m = { got: 0, bad: null, closed: null, ready: false };
    m.handlers = {
        message: (op, p) => {
            if (op === OP.TEXT) { m.ready = true; return; } // a join probe (see joined())
            if (m.bad) return;
            if (m.got >= expected.length) m.bad = `message ${m.got + 1} of ${expected.length}`;
            else if (op !== OP.BINARY || !p.equals(expected[m.got])) m.bad = `message ${m.got} is not the one sent (${p.length} bytes)`;
            m.got++;
        },
        close: (code, reason) => { m.closed = m.closed || `close frame ${code} '${reason}'`; },
        end: () => { m.closed = m.closed || 'EOF without a close frame'; },
        error: (e) => { m.bad = m.bad || e.message; },
    };
    return m;
}

async function counters(server) {
    const v = (await server.metrics()).values;
    return {
        closes: v.get('uringws_slow_consumer_closes_total'),
        drops: v.get('uringws_slow_consumer_dropped_frames_total'),
        over: v.get('uringws_queue_over_limit_total'),
    };
}

async function closeAll(clients) {
    await Promise.all(clients.map((c) => h.withTimeout(c.close(), 10000, 'closing a client')));
}

// A member's join reaches the room's home core after its 101 (with -c 2, possibly after a
// message from another core): text probes go out until every member has seen one.
async function joined(pub, subs) {
    await h.pollUntil(async () => {
        if (subs.every((s) => s.ready)) return true;
        await pub.send(OP.TEXT, Buffer.from('probe'));
        await h.sleep(100);
        return subs.every((s) => s.ready);
    }, 20000, () => `${subs.filter((s) => !s.ready).length} members never joined the room`, 1);
}

// ---- 1. a burst that eager readers drain --------------------------------------------------------

async function burst(o, { cores, policy, members, maxQueue, maxFrames = 0, frame = FRAME, wssMember = false }) {
    const args = ['-c', String(cores), '--max-queue', String(maxQueue), '--slow-policy', policy, '--ping-interval', '0', '-v'];
    if (maxFrames) args.push('--max-queue-frames', String(maxFrames));
    const certs = wssMember ? T.makeCerts() : null;
    const server = wssMember ? await (await T.TlsServer.create(o.server, args, { certs })).start()
        : await new h.Server(o.server, args).start();
    // 4 x the limit: four times the bytes, or four times the frames.
    const count = maxFrames ? 4 * maxFrames : Math.ceil((4 * maxQueue) / frame);
    const expected = Array.from({ length: count }, (_, i) => {
        const b = crypto.randomBytes(frame);
        b.writeUInt32BE(i, 0);
        return b;
    });
    const room = `/burst-${cores}-${policy}-${members}`;
    const subs = Array.from({ length: members }, () => member(expected));
    await h.mapLimit(subs, 100, async (s) => { s.client = await RawClient.connect(server.port, room, s.handlers); });
    if (wssMember) {
        const s = member(expected);
        s.client = await RawClient.connect(server.tlsPort, room, s.handlers, { tls: { ca: certs.ca, servername: 'localhost' } });
        s.wss = true;
        subs.push(s);
    }
    const pub = member(expected);
    pub.client = await RawClient.connect(server.port, room, pub.handlers);
    subs.push(pub);
    await joined(pub.client, subs);
    const before = await counters(server);
    const what = `-c ${cores} ${policy}, ${members}${wssMember ? ' + 1 wss' : ''} members, ` +
        `${count} x ${frame >> 10} KiB in one write (limit ${maxFrames ? maxFrames + ' frames' : (maxQueue >> 10) + ' KiB'})`;
    await pub.client.write(Buffer.concat(expected.map((p) => encodeFrame(OP.BINARY, p))));
    await h.pollUntil(() => subs.every((s) => s.got >= count || s.bad || s.closed), 60000,
        () => `${what}: ${subs.filter((s) => s.got < count).length} members still missing messages ` +
            `(least: ${Math.min(...subs.map((s) => s.got))} of ${count})`, 20);
    const after = await counters(server);
    const bad = subs.find((s) => s.bad || s.closed);
    if (bad) {
        h.fail(`${what}: a ${bad.wss ? 'wss ' : ''}member got ${bad.got} of ${count} messages: ${bad.bad || bad.closed}` +
            ` (slow-consumer closes +${after.closes - before.closes})`);
    }
    h.checkEq(after.closes - before.closes, 0, `${what}: slow-consumer closes`);
    h.checkEq(after.drops - before.drops, 0, `${what}: frames dropped`);
    const msg = `${what}: all ${subs.length} got all ${count}, over-limit episodes absorbed ${after.over - before.over}`;
    h.info(msg);
    await closeAll(subs.map((s) => s.client));
    await server.stop();
    return msg;
}

// ---- 2. stuck readers beside healthy ones -------------------------------------------------------

const STREAM = 1600;          // 64 KiB messages: 100 MiB, far past --max-queue + socket buffers
const PER_WRITE = 8;          // frames per write, one write every WRITE_MS: about 16 MB/s
const WRITE_MS = 32;
const STUCK_MAX_QUEUE = 1 << 20;
const RSS_BOUND_MIB = 48;     // what the stuck members may cost: see docs/operations.md

async function stuck(o, policy) {
    const HEALTHY = 10, STUCK = 5;
    const server = await new h.Server(o.server, ['-c', '2', '--max-queue', String(STUCK_MAX_QUEUE), '--slow-policy', policy,
        '--ping-interval', '0', '--write-stall-timeout', '0', '--close-timeout', '30s', '-v']).start();
    const room = `/stuck-${policy}`;
    const body = crypto.randomBytes(FRAME);
    const payload = (i) => { const b = Buffer.from(body); b.writeUInt32BE(i, 0); return b; };
    // Healthy: every message, in order, byte for byte.
    const healthy = Array.from({ length: HEALTHY }, () => {
        const s = { next: 0, bad: null, ready: false };
        s.handlers = {
            message: (op, p) => {
                if (op === OP.TEXT) { s.ready = true; return; }
                if (s.bad) return;
                const id = p.readUInt32BE(0);
                if (id !== s.next) s.bad = `expected message ${s.next}, got ${id}`;
                else if (p.length !== FRAME || p.compare(body, 4, FRAME, 4, FRAME) !== 0) s.bad = `message ${id} corrupted`;
                s.next = id + 1;
            },
            close: (code) => { s.bad = s.bad || `closed by the server with ${code}`; },
            end: () => { s.bad = s.bad || 'EOF'; },
            error: (e) => { s.bad = s.bad || e.message; },
        };
        return s;
    });
    // Stuck: stop reading right after the upgrade; later read what the server kept for them.
    const stuckOnes = Array.from({ length: STUCK }, () => {
        const s = { ids: [], close: null, ended: false, torn: false, ready: false };
        s.handlers = {
            message: (op, p) => {
                if (op === OP.TEXT) s.ready = true;
                else s.ids.push(p.readUInt32BE(0));
            },
            close: (code, reason) => { s.close = { code, reason }; },
            end: () => { s.ended = true; },
            error: () => { s.torn = true; },
        };
        return s;
    });
    await h.mapLimit([...healthy, ...stuckOnes], 50, async (s) => { s.client = await RawClient.connect(server.port, room, s.handlers); });
    const pub = healthy[0].client; // a member that reads everything publishes
    await joined(pub, [...healthy, ...stuckOnes]);
    for (const s of stuckOnes) s.client.socket.pause();
    const before = await counters(server);
    const rss0 = rssKiB(server.pid);
    let rssMax = rss0;
    const sampler = setInterval(() => { rssMax = Math.max(rssMax, rssKiB(server.pid)); }, 20);
    const t0 = performance.now();
    for (let i = 0; i < STREAM; i += PER_WRITE) {
        const due = t0 + (i / PER_WRITE) * WRITE_MS;
        const wait = due - performance.now();
        if (wait > 1) await h.sleep(wait);
        const frames = [];
        for (let k = i; k < Math.min(STREAM, i + PER_WRITE); k++) frames.push(encodeFrame(OP.BINARY, payload(k)));
        await pub.write(Buffer.concat(frames));
    }
    await h.pollUntil(() => healthy.every((s) => s.next >= STREAM || s.bad), 30000,
        () => `${policy}: ${healthy.filter((s) => s.next < STREAM).length} healthy readers still missing messages`, 20);
    clearInterval(sampler);
    rssMax = Math.max(rssMax, rssKiB(server.pid));
    const bad = healthy.find((s) => s.bad);
    if (bad) h.fail(`${policy}: a healthy reader (got ${bad.next} of ${STREAM}): ${bad.bad}`);
    const mid = await counters(server);
    const growth = (rssMax - rss0) / 1024;
    const summary = `${policy}: ${HEALTHY} healthy got all ${STREAM} x 64 KiB (${(STREAM * FRAME) >> 20} MiB) beside ` +
        `${STUCK} stuck; server RSS ${(rss0 / 1024).toFixed(0)} -> peak ${(rssMax / 1024).toFixed(0)} MiB ` +
        `(+${growth.toFixed(1)} MiB, bound ${RSS_BOUND_MIB})`;
    h.info(summary);
    const sanitizer = h.sanitizer(server.pid);
    if (sanitizer) h.info(`sanitized server (${sanitizer}): RSS bound not applied, LeakSanitizer checks at exit`);
    else h.check(growth <= RSS_BOUND_MIB, `${policy}: server RSS grew by ${growth.toFixed(1)} MiB > ${RSS_BOUND_MIB} MiB`);

    // The stuck ones read again.
    for (const s of stuckOnes) s.client.socket.resume();
    if (policy === 'close') {
        h.checkEq(mid.closes - before.closes, STUCK, 'close: slow-consumer closes (only the stuck ones)');
        await h.pollUntil(() => stuckOnes.every((s) => s.ended || s.torn), 20000, () => 'close: a stuck reader was not closed');
        for (const s of stuckOnes) {
            h.check(s.ids.every((id, k) => id === k), `close: a stuck reader got messages out of order or with a gap`);
            h.check(s.ids.length < STREAM, `close: a stuck reader got all ${STREAM} messages`);
            if (s.close) h.checkEq(s.close.code, 1008, 'close: the stuck reader\'s close code');
        }
        const line = /conn \d+: slow consumer: (\d+) bytes, (\d+) frames queued, over --max-queue (\d+) by (\d+) bytes for (\d+) ms \(its socket took (\d+) bytes meanwhile\), closing with 1008/.exec(server.log);
        h.check(line, 'close: the slow-consumer log line names the limit, the excess and the time over it');
        h.checkEq(Number(line[3]), STUCK_MAX_QUEUE, 'close: the limit in the log line');
        h.check(Number(line[5]) >= 1000, `close: judged slow after ${line[5]} ms over the limit, before --slow-grace 1s`);
        h.info(`close: ${stuckOnes.map((s) => s.ids.length).join(', ')} messages reached the stuck readers, ` +
            `${stuckOnes.filter((s) => s.close).length} got the close frame 1008; log: ${line[0]}`);
    } else {
        h.checkEq(mid.closes - before.closes, 0, 'drop-oldest: slow-consumer closes');
        h.check(mid.drops > before.drops, 'drop-oldest: no frames dropped for the stuck readers');
        // A last message after the stream: each stuck reader must still be open and get it.
        await pub.write(encodeFrame(OP.BINARY, payload(STREAM)));
        await h.pollUntil(() => stuckOnes.every((s) => s.ids.includes(STREAM)), 20000,
            () => 'drop-oldest: a stuck reader did not get the last message after reading again');
        for (const s of stuckOnes) {
            h.check(!s.close && !s.ended, 'drop-oldest: a stuck reader was closed');
            h.check(s.ids.every((id, k) => k === 0 || id > s.ids[k - 1]), 'drop-oldest: frames out of order');
            h.check(s.ids.length < STREAM, 'drop-oldest: a stuck reader saw no gap');
        }
        h.info(`drop-oldest: dropped ${mid.drops - before.drops} frames; the stuck readers got ` +
            `${stuckOnes.map((s) => s.ids.length).join(', ')} messages`);
        await closeAll(stuckOnes.map((s) => s.client));
    }
    for (const s of stuckOnes) s.client.socket.destroy();
    await closeAll(healthy.map((s) => s.client));
    await server.stop();
    return summary;
}

h.run('burst', async () => {
    const o = h.parseOptions();
    const results = [];
    results.push(await burst(o, { cores: 1, policy: 'close', members: 10, maxQueue: 1 << 20 }));
    results.push(await burst(o, { cores: 1, policy: 'drop-oldest', members: 10, maxQueue: 1 << 20 }));
    results.push(await burst(o, { cores: 2, policy: 'close', members: 10, maxQueue: 1 << 20 }));
    results.push(await burst(o, { cores: 2, policy: 'drop-oldest', members: 10, maxQueue: 1 << 20 }));
    // The frame limit: 4 x 16 frames of 4 KiB (they ride one batch block).
    results.push(await burst(o, { cores: 1, policy: 'close', members: 10, maxQueue: 1 << 30, maxFrames: 16, frame: 4096 }));
    results.push(await burst(o, { cores: 2, policy: 'close', members: 1000, maxQueue: 256 << 10, wssMember: true }));
    results.push(await stuck(o, 'close'));
    results.push(await stuck(o, 'drop-oldest'));
    return results.join('; ');
}, { timeoutMs: 240000 });
