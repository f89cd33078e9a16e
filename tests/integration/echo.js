// /echo: every message comes back to its sender only, byte-exact and with its type, in order.
// Two undici clients (binaryType arraybuffer and blob) and one raw client (fragmented
// messages, UTF-8 sequences split across fragments, an interleaved ping) talk at once; each
// must get exactly its own messages. Then SIGTERM: every client gets close 1001 and the
// server exits 0.
'use strict';

const path = require('node:path');
const h = require('./lib/harness');
const { Rng, sha256, Catalogue, Tracker, trackWebSocket } = require('./lib/messages');
const { OP, encodeFrame, RawClient } = require('./lib/rawws');

const MiB = 1 << 20;

function addUnique(cat, rng, sender, size, binary, sends) {
    for (;;) {
        const text = binary ? null : rng.text(size);
        const bytes = binary ? rng.bytes(size) : Buffer.from(text, 'utf8');
        if (cat.add(sender, binary, bytes)) {
            sends.push({ binary, text, bytes });
            return;
        }
        if (size === 0) throw new Error('duplicate empty message in plan');
    }
}

async function main() {
    const o = h.parseOptions();
    const rng = new Rng(o.seed);
    const server = await new h.Server(o.server, ['-c', '2']).start();

    // Sizes around the 7/16/64-bit length encodings, empty and 1 MiB messages. Only client A
    // sends empty messages, so every message of the test is unique.
    const cats = { A: new Catalogue('echo client A'), B: new Catalogue('echo client B'), R: new Catalogue('echo raw client R') };
    const sends = { A: [], B: [], R: [] };
    const sizesA = [[0, false], [0, true], [1, false], [1, true], [125, false], [126, true], [127, true],
        [65535, false], [65536, true], [65537, false], [MiB, true], [MiB, false], [300, false], [7, true]];
    for (const [n, bin] of sizesA) addUnique(cats.A, rng, 'A', n, bin, sends.A);
    for (let i = 0; i < 40; i++) addUnique(cats.B, rng, 'B', rng.int(1, 70000), rng.chance(0.5), sends.B);
    const rawMsgs = [];
    // Text whose 4-byte character is split 1|3, 2|2 and 3|1 over fragments, with an empty
    // first fragment and a ping in between.
    const emoji = Buffer.from('a\u{1F600}b\u20ACc\u00E9d', 'utf8');
    for (const cut of [2, 3, 4]) {
        const b = Buffer.concat([emoji, Buffer.from(String(cut))]);
        cats.R.add('R', false, b);
        rawMsgs.push({ frames: [encodeFrame(OP.TEXT, Buffer.alloc(0), { fin: false }),
            encodeFrame(OP.CONT, b.subarray(0, cut), { fin: false }),
            encodeFrame(OP.PING, Buffer.from(`ping-${cut}`)),
            encodeFrame(OP.CONT, b.subarray(cut), { fin: true })] });
    }
    for (let i = 0; i < 10; i++) {
        const binary = i % 2 === 1;
        const size = rng.int(1, 200000);
        let bytes;
        do bytes = binary ? rng.bytes(size) : Buffer.from(rng.text(size), 'utf8');
        while (cats.R.lookup(binary, sha256(bytes)));
        cats.R.add('R', binary, bytes);
        const k = rng.int(2, 5);
        const cuts = [0];
        for (let j = 1; j < k; j++) cuts.push(rng.int(0, bytes.length));
        cuts.push(bytes.length);
        cuts.sort((x, y) => x - y);
        const frames = [];
        for (let j = 0; j < k; j++) {
            frames.push(encodeFrame(j ? OP.CONT : binary ? OP.BINARY : OP.TEXT, bytes.subarray(cuts[j], cuts[j + 1]), { fin: j === k - 1 }));
        }
        rawMsgs.push({ frames });
    }

    const all = Object.values(cats);
    const trackers = {};
    for (const k of ['A', 'B', 'R']) trackers[k] = new Tracker(k, cats[k], { others: all.filter((c) => c !== cats[k]) });
    const A = await h.connectWs(server.url('/echo'), { binaryType: 'arraybuffer' });
    const B = await h.connectWs(server.url('/echo'), { binaryType: 'blob' });
    const closes = {};
    for (const [k, ws] of [['A', A], ['B', B]]) {
        trackWebSocket(ws, trackers[k]);
        ws.addEventListener('error', () => trackers[k].error('error event'));
        closes[k] = h.closed(ws);
    }
    const pongs = [];
    let rawClose = null;
    const R = await RawClient.connect(server.port, '/echo', {
        message: (op, p) => trackers.R.receive(op === OP.BINARY, p),
        pong: (p) => pongs.push(p.toString()),
        close: (code) => { rawClose = code; },
        error: (e) => trackers.R.error(`raw socket: ${e.message}`),
    });

    const sendUndici = async (ws, list) => {
        for (const m of list) {
            ws.send(m.binary ? new Uint8Array(m.bytes) : m.text);
            await h.sleep(0);
        }
    };
    const sendRaw = async () => {
        for (const m of rawMsgs) {
            // Each frame in its own write so the server sees the message arrive in pieces.
            for (const f of m.frames) await R.write(f);
            await h.sleep(1);
        }
    };
    await Promise.all([sendUndici(A, sends.A), sendUndici(B, sends.B), sendRaw()]);
    await h.withTimeout(Promise.all(Object.values(trackers).map((t) => t.completion())), 60000,
        'all echoes back: ' + Object.values(trackers).map((t) => `${t.label} ${t.count}/${t.expected}`).join(', '))
        .catch((e) => h.fail(`${e.message}; errors: ${Object.values(trackers).flatMap((t) => t.errors).join('; ')}`));
    await h.sleep(500); // a message delivered twice or to the wrong client would show up now
    const errors = Object.values(trackers).flatMap((t) => t.errors);
    h.check(errors.length === 0, () => `echo problems:\n  ${errors.join('\n  ')}`);
    for (const t of Object.values(trackers)) h.checkEq(t.count, t.expected, `messages echoed to ${t.label}`);
    h.checkEq(pongs.join(','), 'ping-2,ping-3,ping-4', 'pongs for the pings interleaved in fragmented messages');

    // Shutdown with clients connected: close 1001 to each, then exit 0.
    await server.stop();
    for (const k of ['A', 'B']) {
        const ev = await h.withTimeout(closes[k], 5000, `close event at client ${k} after SIGTERM`);
        h.checkEq(ev.code, 1001, `close code at client ${k} after SIGTERM`);
    }
    await h.withTimeout(R.endPromise, 5000, 'raw client connection closed after SIGTERM');
    h.checkEq(rawClose, 1001, 'close code in the close frame to the raw client after SIGTERM');
    return `${cats.A.size + cats.B.size + cats.R.size} messages echoed, seed ${o.seed}`;
}

h.run(path.basename(__filename, '.js'), main, { timeoutMs: 80000 });
