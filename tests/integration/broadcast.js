// Broadcast fan-out with real clients. Server with -c 2; room A has 1000 clients, 10 of which
// send 100 messages each (text and binary, 0 B to 1 MiB; two of the senders are raw TCP
// clients that fragment messages, interleave pings and dribble bytes); room B has 5 clients
// and 2 senders. Every client must receive exactly its room's messages, byte-exact (sha256),
// with the sent type (text as string, binary as ArrayBuffer or Blob per binaryType), in
// per-sender order, and in the same total order as every other client of the room.
// Clients are spread over worker threads so that the test is not bound to one core.
'use strict';

const os = require('node:os');
const path = require('node:path');
const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads');
const { setImmediate: tick } = require('node:timers/promises');
const h = require('./lib/harness');
const { Rng, sha256, Catalogue, Tracker, trackWebSocket, compareOrders } = require('./lib/messages');
const { OP, encodeFrame, RawClient } = require('./lib/rawws');

const MiB = 1 << 20;

// The whole message plan follows from the seed, so every worker rebuilds the same plan and
// catalogues instead of receiving payloads from the main thread.
function makePlan(seed, cfg) {
    const rng = new Rng(seed);
    const A = new Catalogue(cfg.roomA);
    const B = new Catalogue(cfg.roomB);
    const rawSenders = new Set();
    for (let i = cfg.sendersA - cfg.rawSendersA; i < cfg.sendersA; i++) rawSenders.add(i);

    // Sizes at the frame-length encoding boundaries, the empty message, and the large ones.
    // `raw` pins a message to a raw (fragmenting) sender or to an undici sender.
    const specials = [
        { size: 0, binary: false }, { size: 0, binary: true }, { size: 1, binary: true },
        { size: 125, binary: false }, { size: 126, binary: true }, { size: 127, binary: false },
        { size: 65535, binary: true }, { size: 65536, binary: false }, { size: 65537, binary: true },
        { size: MiB, binary: false, raw: false },
        { size: MiB, binary: true, raw: true, fragment: true },
        { size: 256 * 1024, binary: false, raw: true, fragment: true },
        { size: 200000, binary: true, raw: false },
    ];
    const slots = [];   // slots[sender][idx] = spec
    for (let s = 0; s < cfg.sendersA; s++) slots.push(new Array(cfg.perSender).fill(null));
    for (const sp of specials) {
        for (;;) {
            let s = rng.int(0, cfg.sendersA - 1);
            if (sp.raw === true && rawSenders.size) s = rng.pick([...rawSenders]);
            if (sp.raw === false && rawSenders.has(s)) continue;
            const i = rng.int(0, cfg.perSender - 1);
            if (slots[s][i]) continue;
            slots[s][i] = sp;
            break;
        }
    }
    const sends = new Map();  // "a3" -> [{binary, text, bytes, fragment}]
    const generate = (cat, others, sender, spec) => {
        for (;;) {
            const text = spec.binary ? null : rng.text(spec.size);
            const bytes = spec.binary ? rng.bytes(spec.size) : Buffer.from(text, 'utf8');
            if (others.some((o) => o.lookup(spec.binary, sha256(bytes)))) continue;
            const e = cat.add(sender, spec.binary, bytes);
            if (!e) {
                if (spec.size === 0) throw new Error('two empty messages of one type in the plan');
                continue;
            }
            sends.get(sender).push({ binary: spec.binary, text, bytes, fragment: !!spec.fragment });
            return;
        }
    };
    const ordinarySize = () => {
        const r = rng.next();
        if (r < 0.7) return rng.int(1, 200);
        if (r < 0.95) return rng.int(201, 4096);
        return rng.int(4097, 32768);
    };
    for (let s = 0; s < cfg.sendersA; s++) {
        const name = `a${s}`;
        sends.set(name, []);
        for (let i = 0; i < cfg.perSender; i++) {
            const sp = slots[s][i] || { size: ordinarySize(), binary: rng.chance(0.4) };
            if (rawSenders.has(s) && !slots[s][i]) sp.fragment = rng.chance(0.6);
            generate(A, [], name, sp);
        }
    }
    for (let s = 0; s < cfg.sendersB; s++) {
        const name = `b${s}`;
        sends.set(name, []);
        for (let i = 0; i < cfg.perSenderB; i++) {
            generate(B, [A], name, { size: rng.int(1, 2000), binary: rng.chance(0.4) });
        }
    }
    return { A, B, sends, rawSenders };
}

// Which clients exist; each runs in worker (index % workers).
function clientList(cfg) {
    const list = [];
    for (let i = 0; i < cfg.clientsA; i++) {
        const sender = i < cfg.sendersA ? `a${i}` : null;
        const raw = i >= cfg.sendersA - cfg.rawSendersA && i < cfg.sendersA;
        list.push({ label: `A${i}`, room: 'A', sender, raw, binaryType: i % 10 === 7 ? 'blob' : 'arraybuffer' });
    }
    for (let i = 0; i < cfg.clientsB; i++) {
        list.push({ label: `B${i}`, room: 'B', sender: i < cfg.sendersB ? `b${i}` : null, raw: false,
            binaryType: i % 2 ? 'blob' : 'arraybuffer' });
    }
    return list;
}

// ---------------------------------------------------------------- worker side

async function undiciSend(ws, msgs, progress) {
    for (let i = 0; i < msgs.length; i++) {
        const m = msgs[i];
        if (!m.binary) ws.send(m.text);
        else if (i % 2) ws.send(m.bytes.buffer.slice(m.bytes.byteOffset, m.bytes.byteOffset + m.bytes.length));
        else ws.send(new Uint8Array(m.bytes));
        progress.sent = i + 1;
        while (ws.bufferedAmount > 4 * MiB && ws.readyState === 1) await h.sleep(2);
        await tick();
    }
}

// Sends through the raw socket: fragments with random cut points (zero-length fragments and
// cuts inside UTF-8 sequences included), pings between fragments, and sometimes the first
// bytes one write at a time so the server sees partial headers.
async function rawSend(client, msgs, rng, pings, progress) {
    for (const m of msgs) {
        if (client.socket.destroyed) return;
        const opcode = m.binary ? OP.BINARY : OP.TEXT;
        const frames = [];
        if (m.fragment) {
            const k = rng.int(2, 6);
            const cuts = [0];
            for (let j = 1; j < k; j++) cuts.push(rng.int(0, m.bytes.length));
            cuts.push(m.bytes.length);
            cuts.sort((x, y) => x - y);
            for (let j = 0; j < k; j++) {
                frames.push(encodeFrame(j === 0 ? opcode : OP.CONT, m.bytes.subarray(cuts[j], cuts[j + 1]),
                    { fin: j === k - 1 }));
                if (j < k - 1 && rng.chance(0.5)) {
                    const p = rng.bytes(rng.int(0, 125));
                    pings.push(p);
                    frames.push(encodeFrame(OP.PING, p));
                }
            }
        } else {
            frames.push(encodeFrame(opcode, m.bytes));
        }
        const buf = Buffer.concat(frames);
        if (rng.chance(0.1)) {
            // Not a loop of client.write: a pong to a server ping would land between the pieces.
            await client.writeInPieces(buf, 20, 1);
        } else {
            await client.write(buf);
        }
        progress.sent++;
        await tick();
    }
}

async function workerMain() {
    const { port, seed, cfg, clients } = workerData;
    const plan = makePlan(seed, cfg);
    const cats = { A: plan.A, B: plan.B };
    const paths = { A: '/' + encodeURIComponent(cfg.roomA), B: '/' + encodeURIComponent(cfg.roomB) };
    const live = [];
    let closing = false;

    await h.mapLimit(clients, 25, async (c) => {
        const cat = cats[c.room];
        const t = new Tracker(c.label, cat, { others: [c.room === 'A' ? plan.B : plan.A] });
        const entry = { c, t, ws: null, raw: null, pings: [] };
        if (c.raw) {
            entry.raw = await RawClient.connect(port, paths[c.room], {
                message: (op, payload) => t.receive(op === OP.BINARY, payload),
                pong: (p) => {
                    const i = entry.pings.findIndex((q) => q.equals(p));
                    if (i >= 0) entry.pings.splice(0, i + 1); // earlier ones may go unanswered (RFC 6455 5.5.3)
                },
                close: (code, reason) => { if (!closing) t.error(`server sent close ${code} "${reason}"`); },
                end: () => { if (!closing) t.error('server closed the TCP connection'); },
                error: (e) => t.error(`raw socket: ${e.message}`),
            });
        } else {
            const ws = await h.connectWs(`ws://127.0.0.1:${port}${paths[c.room]}`, { binaryType: c.binaryType });
            trackWebSocket(ws, t);
            ws.addEventListener('error', () => { if (!closing) t.error('error event'); });
            ws.addEventListener('close', (ev) => { if (!closing) t.error(`closed unexpectedly: code ${ev.code} "${ev.reason}"`); });
            entry.ws = ws;
        }
        live.push(entry);
    });
    parentPort.postMessage({ t: 'ready' });

    await new Promise((resolve) => parentPort.once('message', resolve)); // 'go'
    const started = Date.now();
    const senders = live.filter((e) => e.c.sender).map(async (e) => {
        const msgs = plan.sends.get(e.c.sender);
        e.sending = true;
        e.sent = 0;          // messages handed to the socket so far
        if (e.raw) {
            const rng = new Rng((seed + 7919 * (Number(e.c.label.slice(1)) + 1)) >>> 0);
            await rawSend(e.raw, msgs, rng, e.pings, e);
            // The last ping must be answered even if the server coalesced earlier ones.
            const last = Buffer.from(`final-${e.c.label}`);
            e.pings.push(last);
            await e.raw.send(OP.PING, last);
        } else {
            await undiciSend(e.ws, msgs, e);
        }
        e.sending = false;
    });
    const progress = setInterval(() => {
        const behind = live.filter((e) => !e.t.complete);
        parentPort.postMessage({ t: 'progress', complete: live.length - behind.length, of: live.length,
            min: behind.length ? Math.min(...behind.map((e) => e.t.count)) : 0 });
    }, 5000);
    // Done when every client has its messages; given up at the deadline, or earlier when the
    // senders are finished and nothing has arrived anywhere for stallMs.
    const all = Promise.all([...senders, ...live.map((e) => e.t.completion())]);
    let sendersDone = false;
    Promise.all(senders).then(() => { sendersDone = true; });
    const stalled = (async () => {
        let last = -1, since = Date.now();
        for (;;) {
            await h.sleep(500);
            const total = live.reduce((n, e) => n + e.t.count, 0);
            if (total !== last || !sendersDone) { last = total; since = Date.now(); }
            else if (Date.now() - since >= cfg.stallMs) return false;
        }
    })();
    const inTime = await Promise.race([all.then(() => true), stalled, h.sleep(cfg.deliverMs).then(() => false)]);
    clearInterval(progress);
    if (inTime) {
        // Anything beyond the expected messages would arrive now.
        await h.sleep(500);
        await h.pollUntil(() => live.every((e) => !e.raw || e.pings.length === 0), 10000, () => 'unanswered ping', 20)
            .catch(() => {
                for (const e of live) if (e.raw && e.pings.length) e.t.error(`${e.pings.length} ping(s) not answered with a pong, including the last one`);
            });
    }
    // What each sender still holds, to tell "server stopped reading" from "stopped sending".
    const senderState = live.filter((e) => e.c.sender).map((e) => `${e.c.sender} (${e.raw ? 'raw' : 'undici'}): ` +
        `${e.sent === plan.sends.get(e.c.sender).length ? 'all sent' : `${e.sending ? 'still sending' : 'stopped'} after ` +
            `${e.sent} of ${plan.sends.get(e.c.sender).length} messages`}, ` +
        (e.raw ? `${e.raw.socket.writableLength} bytes queued in Node, ${e.raw.socket.bytesWritten} written, ` +
            `socket ${e.raw.socket.destroyed ? 'destroyed' : e.raw.socket.readyState}`
            : `bufferedAmount ${e.ws.bufferedAmount}`));
    parentPort.postMessage({ t: 'result', inTime, ms: Date.now() - started, senderState, results: live.map((e) => e.t.result()) });

    await new Promise((resolve) => parentPort.once('message', resolve)); // 'close'
    closing = true;
    const closeErrors = [];
    await h.mapLimit(live, 50, async (e) => {
        try {
            if (e.raw) {
                await h.withTimeout(e.raw.close(1000), 10000, `${e.c.label}: server closing the TCP connection after close 1000`);
                if (!e.raw.closeFrame || e.raw.closeFrame.code !== 1000) {
                    closeErrors.push(`${e.c.label}: close 1000 answered with ${JSON.stringify(e.raw.closeFrame)}`);
                }
            } else {
                const done = h.closed(e.ws);
                e.ws.close(1000, 'bye');
                const ev = await h.withTimeout(done, 10000, `${e.c.label}: close event after close(1000)`);
                if (ev.code !== 1000 || !ev.wasClean) closeErrors.push(`${e.c.label}: close 1000 answered with code ${ev.code}, wasClean ${ev.wasClean}`);
            }
        } catch (err) {
            closeErrors.push(err.message);
        }
    });
    parentPort.postMessage({ t: 'closed', errors: closeErrors.slice(0, 10) });
}

// ---------------------------------------------------------------- main side

async function main() {
    const o = h.parseOptions({
        clients: { type: 'string' }, 'per-sender': { type: 'string' }, workers: { type: 'string' },
        'deliver-seconds': { type: 'string' },
    });
    const cfg = {
        roomA: 'fan out', roomB: 'quiet-room',
        clientsA: Number(o.clients || 1000), sendersA: 10, rawSendersA: 2, perSender: Number(o['per-sender'] || 100),
        clientsB: 5, sendersB: 2, perSenderB: 25,
        deliverMs: Number(o['deliver-seconds'] || 150) * 1000, stallMs: 20000,
    };
    const nWorkers = Number(o.workers || Math.max(2, Math.min(4, os.cpus().length)));
    const plan = makePlan(o.seed, cfg);
    h.info(`room A: ${cfg.clientsA} clients, ${plan.A.size} messages, ${(plan.A.bytes / MiB).toFixed(2)} MiB ` +
        `(${((plan.A.bytes * cfg.clientsA) / MiB / 1024).toFixed(2)} GiB fanned out); room B: ${cfg.clientsB} clients, ${plan.B.size} messages`);

    // The clients share two cores with the server, so they read slowly; a queue limit big
    // enough for everything one client is sent keeps the slow-consumer policy out of a test
    // of fan-out correctness.
    const maxQueue = Math.max(64 * MiB, 2 * plan.A.bytes);
    const server = await new h.Server(o.server, ['-c', '2', '--max-queue', String(maxQueue)]).start();
    const gauge = h.connectionGauge(await server.metrics());
    const idle = await h.settled(() => server.metric(gauge), gauge);

    const clients = clientList(cfg);
    const workers = [];
    for (let w = 0; w < nWorkers; w++) {
        const mine = clients.filter((_, i) => i % nWorkers === w);
        const worker = new Worker(__filename, { workerData: { port: server.port, seed: o.seed, cfg, clients: mine } });
        const inbox = [];
        let wake = null;
        worker.on('message', (m) => {
            if (m.t === 'progress') h.info(`worker ${w}: ${m.complete}/${m.of} clients complete, the slowest other has ${m.min}`);
            else if (m.t === 'fatal') h.abort(`worker ${w}: ${m.msg}`);
            else { inbox.push(m); if (wake) wake(); }
        });
        worker.on('error', (e) => h.abort(`worker ${w}: ${e.stack || e}`));
        worker.on('exit', (code) => { if (code !== 0) h.abort(`worker ${w} exited with ${code}`); });
        const next = async (t) => {
            while (!inbox.length) await new Promise((r) => { wake = r; });
            const m = inbox.shift();
            if (m.t !== t) h.fail(`worker ${w}: expected ${t}, got ${JSON.stringify(m).slice(0, 300)}`);
            return m;
        };
        workers.push({ worker, next });
    }
    await h.withTimeout(Promise.all(workers.map((w) => w.next('ready'))), 120000, 'all clients connected');
    h.info(`${clients.length} clients connected; ${server.fdCount()} fds open in the server`);
    await server.expectMetric(gauge, idle + clients.length, 5000, `${clients.length} clients connected, ${idle} when idle`);

    const before = await server.metrics();
    for (const w of workers) w.worker.postMessage({ t: 'go' });
    const results = await Promise.all(workers.map((w) => w.next('result')));
    const all = results.flatMap((r) => r.results);
    const slow = Math.max(...results.map((r) => r.ms));
    const problems = [];
    for (const r of results) {
        if (!r.inTime) problems.push(`not all messages delivered (deadline ${cfg.deliverMs / 1000} s, or ${cfg.stallMs / 1000} s without progress)`);
    }
    for (const r of all) problems.push(...r.errors);
    const incomplete = all.filter((r) => r.count !== r.expected);
    if (incomplete.length) {
        problems.push(`${incomplete.length} client(s) did not receive exactly their room's messages, e.g. ` +
            incomplete.slice(0, 3).map((r) => `${r.label} ${r.count}/${r.expected}`).join(', '));
    }
    for (const [room, cat] of [['A', plan.A], ['B', plan.B]]) {
        const inRoom = all.filter((r) => r.label.startsWith(room)).sort((x, y) => Number(x.label.slice(1)) - Number(y.label.slice(1)));
        const diff = compareOrders(cat, inRoom);
        if (diff) problems.push(`room ${cat.name}: ${diff}`);
    }
    if (problems.length) {
        // Incomplete clients grouped by how far each sender's stream got to them.
        const groups = new Map();
        for (const r of incomplete) {
            const cat = r.label.startsWith('A') ? plan.A : plan.B;
            const sig = [...cat.perSender].map(([snd, n]) => `${snd} ${r.got[snd] || 0}/${n}`).join(', ');
            if (!groups.has(sig)) groups.set(sig, []);
            groups.get(sig).push(r.label);
        }
        const detail = [...groups].slice(0, 6).map(([sig, labels]) =>
            `${labels.length} client(s) (${labels.slice(0, 5).join(' ')}${labels.length > 5 ? ' ...' : ''}) got per sender: ${sig}`);
        h.fail(`${problems.length} problem(s), first ones:\n  ${[...new Set(problems)].slice(0, 20).join('\n  ')}` +
            (detail.length ? `\nmessages received, by sender:\n  ${detail.join('\n  ')}` : '') +
            `\nsenders:\n  ${results.flatMap((r) => r.senderState).join('\n  ')}`);
    }
    h.info(`all ${all.length} clients got their room's messages in one order (${(slow / 1000).toFixed(1)} s)`);

    // Built once, queued by reference: one frame built per message published, and one queue
    // entry per message per member, whatever the number of cores the members are spread over.
    const after = await server.metrics();
    const delta = (name) => after.values.get(name) - before.values.get(name);
    h.checkEq(delta('uringws_frames_built_total'), plan.A.size + plan.B.size, 'frames built for the messages published');
    h.checkEq(delta('uringws_messages_out_total'), plan.A.size * cfg.clientsA + plan.B.size * cfg.clientsB,
        'frames queued to recipients (messages x members)');
    h.info(`${plan.A.size + plan.B.size} frames built for ${delta('uringws_messages_out_total')} deliveries`);

    for (const w of workers) w.worker.postMessage({ t: 'close' });
    const closedRes = await h.withTimeout(Promise.all(workers.map((w) => w.next('closed'))), 60000, 'clients closing');
    const closeErrors = closedRes.flatMap((r) => r.errors);
    if (closeErrors.length) h.fail(`close handshake problems:\n  ${closeErrors.join('\n  ')}`);
    await server.stop();
    return `${all.length} clients, ${plan.A.size}+${plan.B.size} messages, ${((plan.A.bytes * cfg.clientsA) / MiB / 1024).toFixed(2)} GiB delivered, seed ${o.seed}`;
}

if (isMainThread) {
    h.run(path.basename(__filename, '.js'), main, { timeoutMs: 225000 });
} else {
    workerMain().catch((e) => {
        parentPort.postMessage({ t: 'fatal', msg: e.stack || String(e) });
        process.exit(1);
    });
}
