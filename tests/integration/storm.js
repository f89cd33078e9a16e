// Disconnect storm: 500 raw clients in a busy room vanish without a close frame (FIN, RST via
// resetAndDestroy, in the middle of a frame, after they stopped reading so the server has sends
// queued to them) plus a few half-finished handshakes, while 50 undici clients chat through
// it. The 50 must see every message, in one order, with no error or close; afterwards the
// server's descriptor count and its open-connections gauge return to what they were with the
// 50 alone, and to the idle values once those leave.
'use strict';

const net = require('node:net');
const path = require('node:path');
const h = require('./lib/harness');
const { Rng, Catalogue, Tracker, trackWebSocket, compareOrders } = require('./lib/messages');
const { OP, encodeFrame, RawClient } = require('./lib/rawws');

const ROOM = '/storm';
const SURVIVORS = 50;
const STORM = 500;
const HALF_HANDSHAKES = 24;
const PER_SENDER = 40;

// The ways a storm client leaves. Every one of them skips the close handshake.
const KINDS = ['fin', 'paused-fin', 'mid-frame', 'mid-frame-rst', 'rst'];

function drop(c, kind) {
    const s = c.socket;
    switch (kind) {
    case 'fin':
    case 'paused-fin':   // with unread data the kernel turns this into an RST
        s.destroy();
        break;
    case 'mid-frame': {
        const f = encodeFrame(OP.TEXT, Buffer.alloc(1000, 0x61));
        s.write(f.subarray(0, 16));
        s.destroy();
        break;
    }
    case 'mid-frame-rst': {
        const f = encodeFrame(OP.BINARY, Buffer.alloc(100000, 0x62));
        s.write(f.subarray(0, 3000));
        s.resetAndDestroy();
        break;
    }
    case 'rst':
        s.resetAndDestroy();
        break;
    default:
        throw new Error(kind);
    }
}

async function main() {
    const o = h.parseOptions();
    h.check(typeof net.Socket.prototype.resetAndDestroy === 'function',
        `this Node (${process.version}) has no socket.resetAndDestroy(); Node 18.3 or newer is needed`);
    const rng = new Rng(o.seed);
    // Survivors read as fast as one process allows; a generous queue limit keeps the
    // slow-consumer policy out of a test about disconnects.
    const server = await new h.Server(o.server, ['-c', '2', '--max-queue', String(32 << 20)]).start();
    // Baselines once the server is idle. The gauge may count the /metrics request's own
    // connection, so every check below compares with the idle value plus the clients.
    const gauge = h.connectionGauge(await server.metrics());
    const fdIdle = await server.settledFds();
    const gaugeIdle = await h.settled(() => server.metric(gauge), gauge);

    // Plan: every survivor sends PER_SENDER unique messages.
    const cat = new Catalogue('storm');
    const plan = [];
    for (let s = 0; s < SURVIVORS; s++) {
        const list = [];
        while (list.length < PER_SENDER) {
            const r = rng.next();
            const size = r < 0.7 ? rng.int(1, 512) : r < 0.95 ? rng.int(513, 8192) : rng.int(8193, 32768);
            const binary = rng.chance(0.3);
            const text = binary ? null : rng.text(size);
            const bytes = binary ? rng.bytes(size) : Buffer.from(text, 'utf8');
            if (cat.add(`s${s}`, binary, bytes)) list.push({ binary, text, bytes });
        }
        plan.push(list);
    }

    let quiet = false;  // set when the survivors close on purpose
    const survivors = await h.mapLimit(Array.from({ length: SURVIVORS }, (_, i) => i), 10, async (i) => {
        const t = new Tracker(`S${i}`, cat);
        const ws = await h.connectWs(server.url(ROOM), { binaryType: i % 5 === 4 ? 'blob' : 'arraybuffer' });
        trackWebSocket(ws, t);
        ws.addEventListener('error', () => t.error('error event'));
        ws.addEventListener('close', (ev) => { if (!quiet) t.error(`closed: code ${ev.code} "${ev.reason}"`); });
        return { ws, t };
    });
    await server.expectMetric(gauge, gaugeIdle + SURVIVORS, 5000, `${SURVIVORS} clients connected, ${gaugeIdle} when idle`);
    const fdSurvivors = await server.settledFds();

    const storm = await h.mapLimit(Array.from({ length: STORM }, (_, i) => i), 50, async (i) => {
        const kind = KINDS[i % KINDS.length];
        const c = await RawClient.connect(server.port, ROOM, { error: () => {} });
        if (kind === 'paused-fin' || kind === 'mid-frame-rst') c.socket.pause();
        return { c, kind };
    });
    await server.expectMetric(gauge, gaugeIdle + SURVIVORS + STORM, 5000,
        `${SURVIVORS + STORM} clients connected, ${gaugeIdle} when idle`);
    // Not counted above: whether a socket still in its handshake counts as a connection is
    // the server's choice.
    const half = await Promise.all(Array.from({ length: HALF_HANDSHAKES }, () => new Promise((resolve, reject) => {
        const s = net.connect({ host: '127.0.0.1', port: server.port }, () => {
            s.write(`GET ${ROOM} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConn`);
            resolve(s);
        });
        s.on('error', reject);
    })));
    h.info(`${SURVIVORS} survivors + ${STORM} storm clients + ${HALF_HANDSHAKES} half handshakes open; ` +
        `server fds: idle ${fdIdle}, survivors ${fdSurvivors}, now ${server.fdCount()}`);

    // Chat in three phases; the storm happens in batches between the sends of phase 2.
    const sendRange = async (from, to) => {
        for (let k = from; k < to; k++) {
            for (let s = 0; s < SURVIVORS; s++) {
                const m = plan[s][k];
                survivors[s].ws.send(m.binary ? new Uint8Array(m.bytes) : m.text);
            }
            await h.sleep(2);
        }
    };
    await sendRange(0, 10);
    const order = storm.map((_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
        const j = rng.int(0, i);
        [order[i], order[j]] = [order[j], order[i]];
    }
    const batches = 10;
    for (let b = 0; b < batches; b++) {
        for (const i of order.slice((b * STORM) / batches, ((b + 1) * STORM) / batches)) drop(storm[i].c, storm[i].kind);
        if (b % 2) half[b] && half[b].resetAndDestroy();
        else half[b] && half[b].destroy();
        await sendRange(10 + b * 2, 12 + b * 2);
    }
    for (const s of half.slice(batches)) s.destroy();
    await sendRange(30, PER_SENDER);

    const expected = SURVIVORS * PER_SENDER;
    await h.withTimeout(Promise.all(survivors.map((s) => s.t.completion())), 60000, `all ${expected} messages at every survivor`)
        .catch((e) => {
            const behind = survivors.filter((s) => !s.t.complete).map((s) => `${s.t.label} ${s.t.count}/${expected}`);
            h.fail(`${e.message}: ${behind.slice(0, 10).join(', ')}; errors: ${survivors.flatMap((s) => s.t.errors).slice(0, 10).join('; ')}`);
        });
    await h.sleep(300);
    const errors = survivors.flatMap((s) => s.t.errors);
    h.check(errors.length === 0, () => `survivor problems:\n  ${errors.slice(0, 20).join('\n  ')}`);
    const diff = compareOrders(cat, survivors.map((s) => s.t.result()));
    if (diff) h.fail(diff);

    await server.expectFds(fdSurvivors, 5000, 'after the storm (back to the survivors\' count)');
    await server.expectMetric(gauge, gaugeIdle + SURVIVORS, 5000, 'after the storm (back to the survivors\' count)');
    h.info(`after the storm: fds ${server.fdCount()}, ${gauge} back to ${gaugeIdle + SURVIVORS}`);

    quiet = true;
    const closes = await Promise.all(survivors.map((s) => {
        const p = h.closed(s.ws);
        s.ws.close(1000);
        return h.withTimeout(p, 10000, `close event for ${s.t.label}`);
    }));
    const unclean = closes.filter((ev) => ev.code !== 1000 || !ev.wasClean);
    h.check(unclean.length === 0, () => `${unclean.length} survivors closed with code ${unclean[0].code}, wasClean ${unclean[0].wasClean}`);
    await server.expectFds(fdIdle, 5000, 'after the survivors closed (back to idle)');
    await server.expectMetric(gauge, gaugeIdle, 5000, 'after the survivors closed (back to idle)');
    await server.stop();
    return `${STORM} dropped (${KINDS.join(', ')}), ${expected} messages at each of ${SURVIVORS} survivors, seed ${o.seed}`;
}

h.run(path.basename(__filename, '.js'), main, { timeoutMs: 110000 });
