// Frames written in pieces while the server pings. A raw client sends text (multi-byte UTF-8)
// and binary messages to /echo, single frames and fragmented ones with pings between the
// fragments, each written a byte at a time for its first bytes (RawClient.writeInPieces), while
// the server pings it every tick. Its automatic pongs must wait until the frame in progress is
// out: a pong written between the pieces becomes part of that frame's payload on the wire, and
// the server rightly closes with 1007 (or 1002). That was the intermittent `broadcast` failure
// (raw sender got 1007 "invalid UTF-8") when the 30 s ping hit a dribbled frame. Every message
// must come back byte-exact and in order, every client ping must be answered, and enough server
// pings must have arrived mid-frame for the run to count.
'use strict';

const path = require('node:path');
const h = require('./lib/harness');
const { Rng, sha256, Catalogue, Tracker } = require('./lib/messages');
const { OP, encodeFrame, RawClient } = require('./lib/rawws');

const MIN_PINGS_MID_FRAME = 5;
const MAX_SECONDS = 30;

async function main() {
    const o = h.parseOptions();
    const rng = new Rng(o.seed);
    // --ping-interval 1ms: a ping every timer tick (250 ms).
    const server = await new h.Server(o.server, ['-c', '1', '--ping-interval', '1ms']).start();

    const cat = new Catalogue('pieces');
    const tracker = new Tracker('R', cat, { expected: Infinity });
    const pings = [];
    let midFrame = 0;
    let serverPings = 0;
    let closing = false;
    const R = await RawClient.connect(server.port, '/echo', {
        message: (op, p) => tracker.receive(op === OP.BINARY, p),
        ping: () => {
            serverPings++;
            if (R.inPieces) midFrame++;
        },
        pong: (p) => {
            const i = pings.findIndex((q) => q.equals(p));
            if (i >= 0) pings.splice(0, i + 1); // earlier ones may go unanswered (RFC 6455 5.5.3)
        },
        close: (code, reason) => { if (!closing) tracker.error(`server sent close ${code} "${reason}"`); },
        end: () => { if (!closing) tracker.error('server closed the TCP connection'); },
        error: (e) => tracker.error(`raw socket: ${e.message}`),
    });

    const started = Date.now();
    let sent = 0;
    while ((midFrame < MIN_PINGS_MID_FRAME || sent < 50) && Date.now() - started < MAX_SECONDS * 1000 &&
        !tracker.errors.length) {
        const binary = rng.chance(0.3);
        const size = rng.int(1, 600);
        let bytes;
        do bytes = binary ? rng.bytes(size) : Buffer.from(rng.text(size), 'utf8');
        while (cat.lookup(binary, sha256(bytes)));
        cat.add('R', binary, bytes);
        const frames = [];
        if (rng.chance(0.5)) {
            // Cuts anywhere, inside UTF-8 sequences and empty fragments included.
            const k = rng.int(2, 4);
            const cuts = [0];
            for (let j = 1; j < k; j++) cuts.push(rng.int(0, bytes.length));
            cuts.push(bytes.length);
            cuts.sort((x, y) => x - y);
            for (let j = 0; j < k; j++) {
                const op = j ? OP.CONT : binary ? OP.BINARY : OP.TEXT;
                frames.push(encodeFrame(op, bytes.subarray(cuts[j], cuts[j + 1]), { fin: j === k - 1 }));
                if (j < k - 1 && rng.chance(0.5)) {
                    const p = rng.bytes(rng.int(0, 20));
                    pings.push(p);
                    frames.push(encodeFrame(OP.PING, p));
                }
            }
        } else {
            frames.push(encodeFrame(binary ? OP.BINARY : OP.TEXT, bytes));
        }
        await R.writeInPieces(Buffer.concat(frames), rng.int(2, 40), 1);
        sent++;
    }
    h.info(`${sent} messages written in pieces; ${serverPings} server pings, ${midFrame} of them ` +
        `while a frame was half written (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    if (!tracker.errors.length) {
        const last = Buffer.from('final');
        pings.push(last);
        await R.send(OP.PING, last);
    }
    await h.pollUntil(() => tracker.errors.length || (tracker.count === sent && pings.length === 0), 10000,
        () => `${tracker.count} of ${sent} messages echoed, ${pings.length} ping(s) unanswered`, 20)
        .catch((e) => tracker.error(e.message));
    h.check(tracker.errors.length === 0, () => `problems:\n  ${tracker.errors.join('\n  ')}`);
    h.checkEq(tracker.count, sent, 'messages echoed');
    h.check(midFrame >= MIN_PINGS_MID_FRAME,
        `only ${midFrame} server ping(s) arrived while a frame was half written in ${MAX_SECONDS} s ` +
        `(${serverPings} in all); the test needs ${MIN_PINGS_MID_FRAME}`);

    closing = true;
    await h.withTimeout(R.close(1000), 5000, 'server closing the TCP connection after close 1000');
    h.checkEq(R.closeFrame && R.closeFrame.code, 1000, 'close code echoed by the server');
    await server.stop();
    return `${sent} messages, ${midFrame} pings mid-frame, seed ${o.seed}`;
}

h.run(path.basename(__filename, '.js'), main, { timeoutMs: 80000 });
