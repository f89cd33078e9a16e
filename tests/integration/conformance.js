// RFC 6455 conformance, case by case, in the groups of the Autobahn|Testsuite fuzzing client:
// 1 framing, 2 ping/pong, 3 reserved bits, 4 opcodes, 5 fragmentation, 6 UTF-8, 7 close
// handling, 9 limits, 10 misc, plus masking (5.1), which Autobahn cannot test from the client
// side. Each case opens a raw connection to /echo, sends its frames (in one write, in chops or
// byte by byte), closes with 1000 unless the server is expected to fail the connection, and
// then compares everything the server sent (echoed messages, pongs, the close code) with the
// expected sequence, exactly; the server must also close the TCP connection. Where a browser
// client can express the case, undici's WebSocket repeats it and reads the close event.
'use strict';

const path = require('node:path');
const h = require('./lib/harness');
const { OP, encodeFrame, closePayload, RawClient } = require('./lib/rawws');

const MAX_MESSAGE = 1 << 20;   // the server runs with --max-message 1m
const PARALLEL = 8;            // cases in flight at once
const CASE_MS = 10000;         // one case, start to TCP close
const FAIL_FAST_MS = 3000;     // how long a fail-fast case waits for the close

// ---- one raw connection that records what the server sends -----------------------------

class Session {
    constructor(port) {
        this.port = port;
        this.events = [];
        this.waiters = [];
        this.ended = false;
    }

    async open() {
        this.c = await RawClient.connect(this.port, '/echo', {
            message: (op, p) => this.push({ t: 'msg', op, p }),
            pong: (p) => this.push({ t: 'pong', p }),
            close: (code, reason) => this.push({ t: 'close', code, reason }),
            error: (e) => this.push({ t: 'error', msg: e.message }),
        });
        this.c.endPromise.then(() => { this.ended = true; this.wake(); });
        return this;
    }

    push(e) {
        e.at = Date.now();
        this.events.push(e);
        this.wake();
    }

    wake() {
        const w = this.waiters;
        this.waiters = [];
        for (const f of w) f();
    }

    // Resolves with the first event matching pred; fails after ms or if the connection ends
    // without one.
    async until(pred, ms, what) {
        return this.wait(() => this.events.find(pred), ms, what);
    }

    // Resolves once there are at least n events.
    async count(n, ms, what) {
        return this.wait(() => this.events.length >= n, ms, what);
    }

    async wait(done, ms, what) {
        const deadline = Date.now() + ms;
        for (;;) {
            const r = done();
            if (r) return r;
            if (this.ended) h.fail(`${what}: connection closed without it; got ${describe(this.events)}`);
            const left = deadline - Date.now();
            if (left <= 0) h.fail(`${what}: not within ${ms} ms; got ${describe(this.events)}`);
            await new Promise((r) => {
                const t = setTimeout(r, left);
                this.waiters.push(() => { clearTimeout(t); r(); });
            });
        }
    }

    get writable() {
        const s = this.c.socket;
        return !s.destroyed && !s.writableEnded;
    }

    // One write() of the given bytes.
    write(bytes) {
        return this.c.write(bytes);
    }

    // The bytes in writes of `size` bytes, each handed to the kernel before the next is
    // queued (so Node cannot gather them into one send). Stops once the server has sent its
    // close frame, as a well-behaved client would. Like RawClient.writeInPieces (which
    // pauses 1 ms per piece, too slow for 64 KiB byte by byte), it holds the raw client's own
    // writes -- automatic pongs, the close echo -- until the last piece is out, so that they
    // never land inside the frame being cut.
    async chop(bytes, size = 1) {
        const c = this.c;
        c.inPieces = true;
        try {
            for (let i = 0, n = 0; i < bytes.length; i += size, n++) {
                if (!this.writable || c.closeFrame) return;
                await new Promise((r) => c.socket.write(bytes.subarray(i, i + size), () => r()));
                // A write the kernel takes at once calls back without a pass of the event
                // loop, so a long chop would starve every other case's reads (and timers)
                // until it ends; on a slow machine (a VM under emulation) for seconds.
                if (n % 64 === 63) await new Promise((r) => setImmediate(r));
            }
        } finally {
            c.inPieces = false;
            const held = c.held;
            c.held = [];
            for (const w of held) c.writeNow(w.bytes).then(w.resolve);
        }
    }

    send(op, payload, opts) {
        return this.write(encodeFrame(op, payload, opts));
    }

    // The client's close frame (so the raw client does not answer the server's reply).
    close(code = 1000, reason = '') {
        return this.c.send(OP.CLOSE, closePayload(code, reason));
    }
}

// ---- expected events ---------------------------------------------------------------------

const E = {
    text: (s) => ({ t: 'msg', op: OP.TEXT, p: Buffer.isBuffer(s) ? s : Buffer.from(s, 'utf8') }),
    binary: (b) => ({ t: 'msg', op: OP.BINARY, p: b }),
    pong: (b = Buffer.alloc(0)) => ({ t: 'pong', p: Buffer.isBuffer(b) ? b : Buffer.from(b, 'utf8') }),
    close: (code) => ({ t: 'close', code }),
};

function short(buf) {
    if (buf.length <= 24) return `0x${buf.toString('hex')}`;
    return `${buf.length} bytes 0x${buf.subarray(0, 8).toString('hex')}...`;
}

function describe1(e) {
    switch (e.t) {
    case 'msg': return `${e.op === OP.TEXT ? 'text' : e.op === OP.BINARY ? 'binary' : `op${e.op}`}(${short(e.p)})`;
    case 'pong': return `pong(${short(e.p)})`;
    case 'close': return `close(${e.code}${e.reason ? ` "${e.reason}"` : ''})`;
    case 'error': return `error(${e.msg})`;
    default: return JSON.stringify(e);
    }
}

function describe(events) {
    return events.length ? `[${events.map(describe1).join(', ')}]` : '[nothing]';
}

function same(a, b) {
    if (a.t !== b.t) return false;
    if (a.t === 'msg') return a.op === b.op && a.p.equals(b.p);
    if (a.t === 'pong') return a.p.equals(b.p);
    if (a.t === 'close') return a.code === b.code;
    return false;
}

// ---- the case table ------------------------------------------------------------------------

const cases = [];
// body(s) does the sending and returns the expected events. `closes` false: the body ends
// with the client's own close frame, so the expected list ends with the server's reply.
function add(id, rfc, group, title, body) {
    cases.push({ id, rfc, group, title, body });
}

// The frames, written as described by `how`: 'one' (one write), 'frames' (one write per
// frame), a number n (chops of n bytes, 1 = byte by byte).
async function sendFrames(s, frames, how) {
    if (how === 'frames') {
        for (const f of frames) await s.write(f);
    } else if (how === 'one') {
        await s.write(Buffer.concat(frames));
    } else {
        await s.chop(Buffer.concat(frames), how);
    }
}

const HOW = { one: 'in one write', frames: 'one write per frame', 1: 'byte by byte', 997: 'in chops of 997 bytes' };

// A case where the server answers with `expected` and then the client closes normally.
function okCase(id, rfc, group, title, frames, expected, how = 'one') {
    add(id, rfc, group, `${title}, ${HOW[how]}`, async (s) => {
        await sendFrames(s, frames, how);
        // Wait for the answers before closing, so a late answer cannot race our close.
        await s.count(expected.length, CASE_MS / 2, `${id}: ${describe(expected)}`);
        await s.close(1000);
        return [...expected, E.close(1000)];
    });
}

// A case where the server must fail the connection with `code` (after the `before` answers).
function failCase(id, rfc, group, title, frames, code, before = [], how = 'one') {
    add(id, rfc, group, `${title}, ${HOW[how]}`, async (s) => {
        await sendFrames(s, frames, how);
        return [...before, E.close(code)];
    });
}

const f = (op, payload = Buffer.alloc(0), opts = {}) =>
    encodeFrame(op, Buffer.isBuffer(payload) ? payload : Buffer.from(payload, 'utf8'), opts);
const text = (s, opts) => f(OP.TEXT, s, opts);
const cont = (s, opts) => f(OP.CONT, s, opts);
const ping = (s, opts) => f(OP.PING, s, opts);
const pong = (s, opts) => f(OP.PONG, s, opts);
const bytes = (...b) => Buffer.from(b);
function pattern(n, seed) {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
    return b;
}

const G1 = 'Autobahn 1 Framing';
const G2 = 'Autobahn 2 Pings/Pongs';
const G3 = 'Autobahn 3 Reserved Bits';
const G4 = 'Autobahn 4 Opcodes';
const G5 = 'Autobahn 5 Fragmentation';
const G6 = 'Autobahn 6 UTF-8 Handling';
const G7 = 'Autobahn 7 Close Handling';
const G9 = 'Autobahn 9 Limits/Performance';
const G10 = 'Autobahn 10 Misc';
const GM = 'masking (no Autobahn group: 5.1 binds clients)';

// 1 Framing: the 7-bit, 16-bit and 64-bit length encodings at their edges (RFC 5.2), payload
// data delivered unchanged (5.6).
const LENGTHS = [0, 125, 126, 127, 128, 65535, 65536];
LENGTHS.forEach((n, i) => {
    const t = Buffer.alloc(n, '*');
    const b = pattern(n, i);
    for (const how of ['one', 1]) {
        const sfx = how === 1 ? 'b' : '';
        okCase(`1.1.${i + 1}${sfx}`, '5.2, 5.6', G1, `text of ${n} bytes`, [f(OP.TEXT, t)], [E.text(t)], how);
        okCase(`1.2.${i + 1}${sfx}`, '5.2, 5.6', G1, `binary of ${n} bytes`, [f(OP.BINARY, b)], [E.binary(b)], how);
    }
});
okCase('1.1.8', '5.2, 5.6', G1, 'text of 65536 bytes', [f(OP.TEXT, Buffer.alloc(65536, '*'))],
    [E.text(Buffer.alloc(65536, '*'))], 997);
okCase('1.2.8', '5.2, 5.6', G1, 'binary of 65536 bytes', [f(OP.BINARY, pattern(65536, 8))],
    [E.binary(pattern(65536, 8))], 997);
{
    // 5.2 puts the minimal-length duty on the sender; the server accepts a 16-bit length
    // under 126 and a 64-bit one under 65536 (documented in core/frame.c).
    const p = Buffer.from('non-minimal');
    const mk = (ext) => {
        const m = encodeFrame(OP.TEXT, p);           // 2 + 4 mask + payload
        const head = ext === 2 ? Buffer.from([0x81, 0x80 | 126, 0, p.length])
            : Buffer.from([0x81, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, p.length]);
        return Buffer.concat([head, m.subarray(2)]);
    };
    okCase('1.x.1', '5.2', G1, '11-byte text with a 16-bit length (non-minimal, accepted)', [mk(2)], [E.text(p)]);
    okCase('1.x.2', '5.2', G1, '11-byte text with a 64-bit length (non-minimal, accepted)', [mk(8)], [E.text(p)]);
    const msb = Buffer.from([0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 5, 1, 2, 3, 4]);
    failCase('1.x.3', '5.2', G1, '64-bit length with the most significant bit set -> 1002', [msb], 1002);
}

// 2 Pings/Pongs (RFC 5.5.2, 5.5.3): a pong carries the ping's application data; control
// payloads are at most 125 bytes (5.5); unsolicited pongs are ignored.
{
    const hello = Buffer.from('Hello, world!');
    const bin = bytes(0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff);
    const p125 = pattern(125, 2);
    okCase('2.1', '5.5.2, 5.5.3', G2, 'ping without payload', [ping('')], [E.pong()]);
    okCase('2.2', '5.5.2, 5.5.3', G2, 'ping with a text payload', [ping(hello)], [E.pong(hello)]);
    okCase('2.3', '5.5.2, 5.5.3', G2, 'ping with a binary payload', [ping(bin)], [E.pong(bin)]);
    okCase('2.4', '5.5.2, 5.5.3', G2, 'ping with a 125-byte payload', [ping(p125)], [E.pong(p125)]);
    failCase('2.5', '5.5', G2, 'ping with a 126-byte payload -> 1002', [ping(pattern(126, 3))], 1002);
    okCase('2.6', '5.5.2, 5.5.3', G2, 'ping with a 125-byte payload', [ping(p125)], [E.pong(p125)], 1);
    okCase('2.7', '5.5.3', G2, 'unsolicited pong without payload is ignored', [pong('')], []);
    okCase('2.8', '5.5.3', G2, 'unsolicited pong with payload is ignored', [pong('unsolicited pong payload')], []);
    okCase('2.9', '5.5.3', G2, 'unsolicited pong, then ping: one pong for the ping',
        [pong('unsolicited pong payload'), ping('ping payload')], [E.pong('ping payload')]);
    const ten = Array.from({ length: 10 }, (_, i) => `payload-${i}`);
    okCase('2.10', '5.5.2', G2, 'ten pings in a row, pongs in order', ten.map((p) => ping(p)), ten.map((p) => E.pong(p)));
    okCase('2.11', '5.5.2', G2, 'ten pings in a row, pongs in order', ten.map((p) => ping(p)), ten.map((p) => E.pong(p)), 1);
    okCase('2.x.1', '5.5.2, 5.4', G2, 'pings between two echoed messages',
        [text('one'), ping('p'), text('two')], [E.text('one'), E.pong('p'), E.text('two')]);
}

// 3 Reserved bits (RFC 5.2: RSV1-3 MUST be 0 unless an extension defines them; none is
// negotiated). Frames before the bad one are answered; nothing after it is.
{
    const hi = 'Hello, world!';
    failCase('3.1', '5.2', G3, 'text with RSV=1 -> 1002', [text(hi, { rsv: 1 })], 1002);
    failCase('3.2', '5.2', G3, 'text, text with RSV=2, ping -> echo then 1002',
        [text(hi), text(hi, { rsv: 2 }), ping('')], 1002, [E.text(hi)]);
    failCase('3.3', '5.2', G3, 'text, text with RSV=3, ping -> echo then 1002',
        [text(hi), text(hi, { rsv: 3 }), ping('')], 1002, [E.text(hi)], 1);
    failCase('3.4', '5.2', G3, 'text, text with RSV=4 (RSV1, deflate not negotiated), ping -> echo then 1002',
        [text(hi), text(hi, { rsv: 4 }), ping('')], 1002, [E.text(hi)], 1);
    failCase('3.5', '5.2', G3, 'binary with RSV=5 -> 1002', [f(OP.BINARY, pattern(8, 5), { rsv: 5 })], 1002);
    failCase('3.6', '5.2', G3, 'ping with RSV=6 -> 1002', [ping(hi, { rsv: 6 })], 1002);
    failCase('3.7', '5.2', G3, 'close with RSV=7 -> 1002', [f(OP.CLOSE, closePayload(1000), { rsv: 7 })], 1002);
    failCase('3.x.1', '5.2', G3, 'pong with RSV=1 -> 1002', [pong('', { rsv: 1 })], 1002);
    failCase('3.x.2', '5.2', G3, 'continuation with RSV1 -> 1002',
        [text('frag', { fin: false }), cont('ment', { rsv: 4 })], 1002);
}

// 4 Opcodes (RFC 5.2: an unknown opcode fails the connection): data 3-7, control 0xB-0xF.
{
    const hi = 'Hello, world!';
    failCase('4.1.1', '5.2', G4, 'reserved data opcode 3 -> 1002', [f(3)], 1002);
    failCase('4.1.2', '5.2', G4, 'reserved data opcode 4 with payload -> 1002', [f(4, 'reserved opcode payload')], 1002);
    failCase('4.1.3', '5.2', G4, 'text, opcode 5, ping -> echo then 1002', [text(hi), f(5), ping('')], 1002, [E.text(hi)]);
    failCase('4.1.4', '5.2', G4, 'text, opcode 6 with payload, ping -> echo then 1002',
        [text(hi), f(6, 'reserved opcode payload'), ping('')], 1002, [E.text(hi)]);
    failCase('4.1.5', '5.2', G4, 'text, opcode 7 with payload, ping -> echo then 1002',
        [text(hi), f(7, 'reserved opcode payload'), ping('')], 1002, [E.text(hi)], 1);
    failCase('4.2.1', '5.2', G4, 'reserved control opcode 11 -> 1002', [f(0xb)], 1002);
    failCase('4.2.2', '5.2', G4, 'reserved control opcode 12 with payload -> 1002', [f(0xc, 'reserved opcode payload')], 1002);
    failCase('4.2.3', '5.2', G4, 'text, opcode 13, ping -> echo then 1002', [text(hi), f(0xd), ping('')], 1002, [E.text(hi)]);
    failCase('4.2.4', '5.2', G4, 'text, opcode 14 with payload, ping -> echo then 1002',
        [text(hi), f(0xe, 'reserved opcode payload'), ping('')], 1002, [E.text(hi)]);
    failCase('4.2.5', '5.2', G4, 'text, opcode 15 with payload, ping -> echo then 1002',
        [text(hi), f(0xf, 'reserved opcode payload'), ping('')], 1002, [E.text(hi)], 1);
}

// 5 Fragmentation (RFC 5.4: control frames may be injected between fragments and are never
// fragmented themselves; continuations need a message in progress; 5.5: FIN set on control).
{
    failCase('5.1', '5.4, 5.5', G5, 'ping in two fragments -> 1002', [ping('fragment1', { fin: false }), cont('fragment2')], 1002);
    failCase('5.2', '5.4, 5.5', G5, 'pong in two fragments -> 1002', [pong('fragment1', { fin: false }), cont('fragment2')], 1002);
    failCase('5.x.1', '5.4, 5.5', G5, 'close in two fragments -> 1002',
        [f(OP.CLOSE, closePayload(1000), { fin: false }), cont('')], 1002);
    const two = [text('fragment1', { fin: false }), cont('fragment2')];
    okCase('5.3', '5.4', G5, 'text in two fragments', two, [E.text('fragment1fragment2')]);
    okCase('5.4', '5.4', G5, 'text in two fragments', two, [E.text('fragment1fragment2')], 'frames');
    okCase('5.5', '5.4', G5, 'text in two fragments', two, [E.text('fragment1fragment2')], 1);
    const withPing = [text('fragment1', { fin: false }), ping('pongme!'), cont('fragment2')];
    okCase('5.6', '5.4', G5, 'text in two fragments with a ping between', withPing,
        [E.pong('pongme!'), E.text('fragment1fragment2')]);
    okCase('5.7', '5.4', G5, 'text in two fragments with a ping between', withPing,
        [E.pong('pongme!'), E.text('fragment1fragment2')], 'frames');
    okCase('5.8', '5.4', G5, 'text in two fragments with a ping between', withPing,
        [E.pong('pongme!'), E.text('fragment1fragment2')], 1);
    const after = text('after');
    failCase('5.9', '5.4', G5, 'continuation (FIN) with nothing to continue, then text -> 1002',
        [cont('non-continuation payload'), after], 1002);
    failCase('5.10', '5.4', G5, 'continuation (FIN) with nothing to continue, then text -> 1002',
        [cont('non-continuation payload'), after], 1002, [], 'frames');
    failCase('5.11', '5.4', G5, 'continuation (FIN) with nothing to continue, then text -> 1002',
        [cont('non-continuation payload'), after], 1002, [], 1);
    failCase('5.12', '5.4', G5, 'continuation (no FIN) with nothing to continue, then text -> 1002',
        [cont('non-continuation payload', { fin: false }), after], 1002);
    failCase('5.14', '5.4', G5, 'continuation (no FIN) with nothing to continue, then text -> 1002',
        [cont('non-continuation payload', { fin: false }), after], 1002, [], 1);
    failCase('5.15', '5.4', G5, 'text in two fragments, continuation with nothing to continue -> echo then 1002',
        [text('fragment1', { fin: false }), cont('fragment2'), cont('fragment3', { fin: false }), cont('fragment4')],
        1002, [E.text('fragment1fragment2')]);
    failCase('5.18', '5.4', G5, 'text (no FIN), then a new text inside it -> 1002',
        [text('fragment1', { fin: false }), text('fragment2')], 1002);
    failCase('5.x.2', '5.4', G5, 'binary (no FIN), then a new binary inside it -> 1002',
        [f(OP.BINARY, pattern(3, 1), { fin: false }), f(OP.BINARY, pattern(3, 2))], 1002);
    const five = [text('fragment1', { fin: false }), cont('fragment2', { fin: false }), ping('pongme 1!'),
        cont('fragment3', { fin: false }), ping('pongme 2!'), cont('fragment4', { fin: false }), cont('fragment5')];
    const fiveOut = [E.pong('pongme 1!'), E.pong('pongme 2!'), E.text('fragment1fragment2fragment3fragment4fragment5')];
    okCase('5.19', '5.4', G5, 'text in five fragments with two pings between', five, fiveOut, 'frames');
    okCase('5.20', '5.4', G5, 'text in five fragments with two pings between', five, fiveOut, 1);
    const bin = pattern(3000, 7);
    okCase('5.x.3', '5.4', G5, 'binary in three fragments',
        [f(OP.BINARY, bin.subarray(0, 1000), { fin: false }), cont(bin.subarray(1000, 2000), { fin: false }),
            cont(bin.subarray(2000))], [E.binary(bin)], 'frames');
    okCase('5.x.4', '5.4', G5, 'binary with empty first, middle and last fragments',
        [f(OP.BINARY, Buffer.alloc(0), { fin: false }), cont(bin.subarray(0, 10), { fin: false }),
            cont('', { fin: false }), cont(bin.subarray(10, 20), { fin: false }), cont('')],
        [E.binary(bin.subarray(0, 20))], 'frames');
    const oneByte = Buffer.from('x'.repeat(100));
    okCase('5.x.5', '5.4', G5, 'text in 100 one-byte fragments',
        [...oneByte].map((c, i) => f(i ? OP.CONT : OP.TEXT, Buffer.from([c]), { fin: i === 99 })), [E.text(oneByte)]);
}

// 6 UTF-8 (RFC 5.6: text is UTF-8; 8.1: invalid UTF-8 fails the connection with 1007, and
// may do so as soon as a byte cannot be part of valid UTF-8 -- Autobahn's "fail fast").
{
    okCase('6.1.1', '5.6', G6, 'empty text', [text('')], [E.text('')]);
    okCase('6.1.2', '5.6, 5.4', G6, 'text in three empty fragments',
        [text('', { fin: false }), cont('', { fin: false }), cont('')], [E.text('')], 'frames');
    okCase('6.1.3', '5.6, 5.4', G6, 'text: empty, "middle frame payload", empty fragments',
        [text('', { fin: false }), cont('middle frame payload', { fin: false }), cont('')],
        [E.text('middle frame payload')], 'frames');
    const mixed = Buffer.from('Hello-\u00b5@\u00df\u00f6\u00e4\u00fc\u00e0\u00e1-UTF-8!!', 'utf8');
    okCase('6.2.1', '5.6', G6, 'valid multi-byte text in one frame', [text(mixed)], [E.text(mixed)]);
    // Fragments cut on code point boundaries, then one byte per fragment (every multi-byte
    // code point split across fragments).
    const cps = [...mixed.toString('utf8')].map((c) => Buffer.from(c, 'utf8'));
    okCase('6.2.2', '5.6, 5.4', G6, 'valid multi-byte text, one code point per fragment',
        cps.map((c, i) => f(i ? OP.CONT : OP.TEXT, c, { fin: i === cps.length - 1 })), [E.text(mixed)], 'frames');
    const perByte = (buf, op = OP.TEXT) => [...buf].map((c, i) => f(i ? OP.CONT : op, Buffer.from([c]), { fin: i === buf.length - 1 }));
    okCase('6.2.3', '5.6, 5.4', G6, 'valid multi-byte text, one byte per fragment (code points split)',
        perByte(mixed), [E.text(mixed)], 'frames');
    const kosme = Buffer.from('cebae1bdb9cf83cebcceb5', 'hex');
    okCase('6.2.4', '5.6, 5.4', G6, '"\u03ba\u1f79\u03c3\u03bc\u03b5", one byte per fragment',
        perByte(kosme), [E.text(kosme)], 'frames');
    const emoji = Buffer.from('a\u{1F600}b', 'utf8');
    for (const cut of [2, 3, 4]) {
        okCase(`6.2.x.${cut}`, '5.6, 5.4', G6, `4-byte code point split ${cut - 1}|${5 - cut} across two fragments`,
            [text(emoji.subarray(0, cut), { fin: false }), cont(emoji.subarray(cut))], [E.text(emoji)], 'frames');
    }
    const bad = Buffer.concat([kosme, Buffer.from('eda080', 'hex'), Buffer.from('edited', 'utf8')]);
    failCase('6.3.1', '8.1', G6, 'invalid UTF-8 text in one frame -> 1007', [text(bad)], 1007);
    failCase('6.3.2', '8.1', G6, 'invalid UTF-8 text, one byte per fragment -> 1007', perByte(bad), 1007, [], 'frames');

    // 6.4: fail fast. Autobahn sends valid | invalid | valid and waits after each part; the
    // close must arrive before the last part is sent.
    const failFast = (id, title, part2, single) => add(id, '8.1', G6, title, async (s) => {
        const part1 = kosme;
        const part3 = Buffer.from('edited', 'utf8');
        if (single) {
            const all = Buffer.concat([part1, part2, part3]);
            const fr = f(OP.TEXT, all);
            const hl = fr.length - all.length;
            await s.write(fr.subarray(0, hl + part1.length));
            await h.sleep(50);
            await s.write(fr.subarray(hl + part1.length, hl + part1.length + part2.length));
            const e = await s.until((x) => x.t === 'close', FAIL_FAST_MS, `${id}: close 1007 before the rest of the frame`);
            h.checkEq(e.code, 1007, `${id}: close code before the rest of the frame`);
            if (s.writable) await s.write(fr.subarray(hl + part1.length + part2.length));
        } else {
            await s.write(text(part1, { fin: false }));
            await h.sleep(50);
            await s.write(cont(part2, { fin: false }));
            const e = await s.until((x) => x.t === 'close', FAIL_FAST_MS, `${id}: close 1007 before the final fragment`);
            h.checkEq(e.code, 1007, `${id}: close code before the final fragment`);
            if (s.writable) await s.write(cont(part3));
        }
        return [E.close(1007)];
    });
    failFast('6.4.1', 'fail fast: 3 fragments, the 2nd holds U+110000 (F4 90 80 80); close before the 3rd',
        Buffer.from('f4908080', 'hex'), false);
    failFast('6.4.2', 'fail fast: 3 fragments, the 2nd holds F4 90 only; close before the 3rd',
        Buffer.from('f490', 'hex'), false);
    failFast('6.4.3', 'fail fast: one frame in 3 writes, the 2nd holds F4 90 80 80; close before the rest',
        Buffer.from('f4908080', 'hex'), true);
    failFast('6.4.4', 'fail fast: one frame in 3 writes, the 2nd holds F4 90 only; close before the rest',
        Buffer.from('f490', 'hex'), true);

    // 6.5-6.23: sequences from Markus Kuhn's UTF-8 decoder stress test as Autobahn uses them,
    // each in one frame and one byte per fragment.
    const seqs = [
        ['6.5.1', true, 'cebae1bdb9cf83cebcceb5', 'kosme'],
        ['6.6.x', true, '00', 'U+0000'],
        ['6.7.1', true, '00', 'first 1-byte sequence U+0000'],
        ['6.7.2', true, 'c280', 'first 2-byte sequence U+0080'],
        ['6.7.3', true, 'e0a080', 'first 3-byte sequence U+0800'],
        ['6.7.4', true, 'f0908080', 'first 4-byte sequence U+10000'],
        ['6.8.1', false, 'f888808080', '5-byte sequence'],
        ['6.8.2', false, 'fc8480808080', '6-byte sequence'],
        ['6.9.1', true, '7f', 'last 1-byte sequence U+007F'],
        ['6.9.2', true, 'dfbf', 'last 2-byte sequence U+07FF'],
        ['6.9.3', true, 'efbfbf', 'last 3-byte sequence U+FFFF'],
        ['6.9.4', true, 'f48fbfbf', 'last code point U+10FFFF'],
        ['6.10.1', false, 'f7bfbfbf', '4-byte sequence above U+10FFFF'],
        ['6.10.2', false, 'fbbfbfbfbf', '5-byte sequence U+3FFFFFF'],
        ['6.10.3', false, 'fdbfbfbfbfbf', '6-byte sequence U+7FFFFFFF'],
        ['6.11.1', true, 'ed9fbf', 'U+D7FF'],
        ['6.11.2', true, 'ee8080', 'U+E000'],
        ['6.11.3', true, 'efbfbd', 'U+FFFD'],
        ['6.11.4', true, 'f48fbfbf', 'U+10FFFF'],
        ['6.11.5', false, 'f4908080', 'U+110000'],
        ['6.12.1', false, '80', 'lone continuation byte 0x80'],
        ['6.12.2', false, 'bf', 'lone continuation byte 0xBF'],
        ['6.12.3', false, '80bf', '2 continuation bytes'],
        ['6.12.8', false, '80bf80bf80bf80', '7 continuation bytes'],
        ['6.13.1', false, 'c020c120c220', 'lonely 2-byte start bytes followed by spaces'],
        ['6.13.2', false, 'e020e120', 'lonely 3-byte start bytes followed by spaces'],
        ['6.13.3', false, 'f020f120', 'lonely 4-byte start bytes followed by spaces'],
        ['6.14.1', false, 'c0', '2-byte sequence with the last byte missing (C0)'],
        ['6.14.2', false, 'e080', '3-byte sequence with the last byte missing'],
        ['6.14.3', false, 'f08080', '4-byte sequence with the last byte missing'],
        ['6.14.6', false, 'df', '2-byte sequence U+07FF with the last byte missing'],
        ['6.14.7', false, 'efbf', '3-byte sequence U+FFFF with the last byte missing'],
        ['6.14.8', false, 'f7bfbf', '4-byte sequence with the last byte missing'],
        ['6.15.1', false, 'c0e080f08080dfefbff7bfbf', 'concatenated incomplete sequences'],
        ['6.16.1', false, 'fe', 'impossible byte 0xFE'],
        ['6.16.2', false, 'ff', 'impossible byte 0xFF'],
        ['6.16.3', false, 'fefeffff', 'impossible bytes FE FE FF FF'],
        ['6.17.1', false, 'c0af', 'overlong "/" in 2 bytes'],
        ['6.17.2', false, 'e080af', 'overlong "/" in 3 bytes'],
        ['6.17.3', false, 'f08080af', 'overlong "/" in 4 bytes'],
        ['6.18.1', false, 'c1bf', 'maximum overlong 2-byte sequence'],
        ['6.18.2', false, 'e09fbf', 'maximum overlong 3-byte sequence'],
        ['6.18.3', false, 'f08fbfbf', 'maximum overlong 4-byte sequence'],
        ['6.19.1', false, 'c080', 'overlong NUL in 2 bytes'],
        ['6.19.2', false, 'e08080', 'overlong NUL in 3 bytes'],
        ['6.20.1', false, 'eda080', 'lone high surrogate U+D800'],
        ['6.20.7', false, 'edbfbf', 'lone low surrogate U+DFFF'],
        ['6.21.1', false, 'eda080edb080', 'surrogate pair U+D800 U+DC00 encoded separately'],
        ['6.22.1', true, 'efbfbe', 'noncharacter U+FFFE (valid UTF-8)'],
        ['6.22.2', true, 'efb790', 'noncharacter U+FDD0 (valid UTF-8)'],
        ['6.22.3', true, 'f09fbfbf', 'noncharacter U+1FFFF (valid UTF-8)'],
        ['6.23.1', true, 'efbbbf', 'U+FEFF byte order mark'],
    ];
    for (const [id, valid, hex, title] of seqs) {
        const b = Buffer.from(hex, 'hex');
        if (valid) {
            okCase(id, '5.6', G6, `${title}: valid`, [text(b)], [E.text(b)]);
            okCase(`${id}f`, '5.6, 5.4', G6, `${title}: valid`, perByte(b), [E.text(b)], 'one');
        } else {
            failCase(id, '8.1', G6, `${title} -> 1007`, [text(b)], 1007);
            failCase(`${id}f`, '8.1, 5.4', G6, `${title}, one byte per fragment -> 1007`, perByte(b), 1007);
        }
    }
    failCase('6.x.1', '8.1', G6, 'invalid UTF-8 in a later fragment -> 1007',
        [text('valid ', { fin: false }), cont(bytes(0xf0, 0x9f), { fin: false }), cont(bytes(0x41))], 1007, [], 'frames');
    failCase('6.x.2', '8.1', G6, 'message ending inside a code point -> 1007',
        [text(bytes(0x61, 0xf0, 0x9f), { fin: false }), cont(bytes(0x98))], 1007, [], 'frames');
    okCase('6.x.3', '5.6', G6, 'invalid UTF-8 in a binary message is not checked',
        [f(OP.BINARY, bytes(0xff, 0xc0, 0xed, 0xa0, 0x80))], [E.binary(bytes(0xff, 0xc0, 0xed, 0xa0, 0x80))]);
}

// 7 Close handling (RFC 5.5.1: the endpoint answers a close with a close, echoing the status
// code, sends nothing after it, and the server closes the TCP connection first (7.1.1);
// 7.4: which codes may be sent; 7.1.6 / 8.1: the reason is UTF-8).
{
    okCase('7.1.1', '5.5.1', G7, 'text, then close 1000: echo, close 1000', [text('Hello World!')], [E.text('Hello World!')]);
    const closeAnd = (id, title, extra, how = 'one') => add(id, '5.5.1', G7, `${title}, ${HOW[how]}`, async (s) => {
        s.c.closeSent = true;
        await sendFrames(s, [f(OP.CLOSE, closePayload(1000)), ...extra], how);
        return [E.close(1000)];
    });
    closeAnd('7.1.2', 'close 1000 twice: one close back', [f(OP.CLOSE, closePayload(1000))]);
    closeAnd('7.1.3', 'close 1000, then ping: no pong', [ping('Hello World!')]);
    closeAnd('7.1.4', 'close 1000, then text: not echoed', [text('Hello World!')]);
    closeAnd('7.1.4b', 'close 1000, then text: not echoed', [text('Hello World!')], 'frames');
    add('7.1.5', '5.5.1', G7, 'first fragment, close 1000, last fragment: nothing echoed', async (s) => {
        s.c.closeSent = true;
        await sendFrames(s, [text('fragment1', { fin: false }), f(OP.CLOSE, closePayload(1000)), cont('fragment2')], 'frames');
        return [E.close(1000)];
    });
    add('7.1.6', '5.5.1', G7, '256 KiB text, close 1000, ping: echo, close, no pong', async (s) => {
        const big = Buffer.alloc(256 << 10, 'BAsd7&jh23');
        s.c.closeSent = true;
        await s.write(Buffer.concat([text(big), f(OP.CLOSE, closePayload(1000)), ping('Hello World!')]));
        return [E.text(big), E.close(1000)];
    });
    add('7.3.1', '5.5.1, 7.4', G7, 'close without payload: close 1000 back', async (s) => {
        s.c.closeSent = true;
        await s.write(f(OP.CLOSE));
        return [E.close(1000)];
    });
    failCase('7.3.2', '5.5.1', G7, 'close with a 1-byte payload -> 1002', [f(OP.CLOSE, bytes(0x03))], 1002);
    const echoClose = (id, rfc, title, code, reason, want = code) => add(id, rfc, G7, title, async (s) => {
        s.c.closeSent = true;
        await s.write(f(OP.CLOSE, Buffer.concat([closePayload(code), Buffer.isBuffer(reason) ? reason : Buffer.from(reason)])));
        return [E.close(want)];
    });
    echoClose('7.3.3', '5.5.1', 'close 1000 without reason: echoed', 1000, '');
    echoClose('7.3.4', '5.5.1', 'close 1000 with reason: 1000 echoed', 1000, 'Hello World!');
    echoClose('7.3.5', '5.5.1', 'close 1000 with a 123-byte reason (125-byte payload): echoed', 1000, '*'.repeat(123));
    failCase('7.3.6', '5.5', G7, 'close with a 124-byte reason (126-byte payload) -> 1002',
        [f(OP.CLOSE, Buffer.concat([closePayload(1000), Buffer.alloc(124, '*')]))], 1002);
    echoClose('7.5.1', '5.5.1, 8.1', 'close with invalid UTF-8 in the reason -> 1007', 1000,
        Buffer.from('cebae1bdb9cf83cebcceb5eda080656469746564', 'hex'), 1007);
    const valid = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999];
    valid.forEach((code, i) => echoClose(`7.7.${i + 1}`, '7.4.1, 7.4.2', `close ${code}: echoed`, code, ''));
    const invalid = [0, 999, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016, 1100, 2000, 2999];
    invalid.forEach((code, i) => echoClose(`7.9.${i + 1}`, '7.4.1, 7.4.2', `close ${code} -> 1002`, code, '', 1002));
    echoClose('7.13.1', '7.4.2', 'close 5000 -> 1002', 5000, '', 1002);
    echoClose('7.13.2', '7.4.2', 'close 65535 -> 1002', 65535, '', 1002);
    add('7.x.1', '5.5.1', G7, 'close 1000 in chops of 1 byte: echoed', async (s) => {
        s.c.closeSent = true;
        await s.chop(f(OP.CLOSE, closePayload(1000, 'bye')), 1);
        return [E.close(1000)];
    });
}

// 9 Limits: --max-message bounds a message (one frame or the sum of its fragments); past it
// the server closes with 1009 (7.4.1), refusing a frame by its header alone.
{
    const lim = MAX_MESSAGE;
    const bigT = Buffer.alloc(lim, 'Ab3');
    const bigB = pattern(lim, 9);
    okCase('9.1.x', '5.2, 5.6', G9, `text of exactly --max-message (${lim} bytes)`, [text(bigT)], [E.text(bigT)]);
    okCase('9.2.x', '5.2, 5.6', G9, `binary of exactly --max-message (${lim} bytes)`, [f(OP.BINARY, bigB)], [E.binary(bigB)]);
    const frags = [];
    for (let o = 0; o < lim; o += 65536) frags.push(f(o ? OP.CONT : OP.BINARY, bigB.subarray(o, o + 65536), { fin: o + 65536 >= lim }));
    okCase('9.4.x', '5.4', G9, `binary of --max-message in 64 KiB fragments`, frags, [E.binary(bigB)], 'frames');
    okCase('9.6.x', '5.2', G9, `binary of --max-message`, [f(OP.BINARY, bigB)], [E.binary(bigB)], 997);
    failCase('9.x.1', '7.4.1', G9, `text of --max-message + 1 bytes -> 1009`, [text(Buffer.alloc(lim + 1, 'a'))], 1009);
    failCase('9.x.2', '7.4.1', G9, `fragments adding up to --max-message + 1 -> 1009`,
        [f(OP.BINARY, bigB, { fin: false }), cont(bytes(1))], 1009, [], 'frames');
    add('9.x.3', '7.4.1, 10.4', G9, 'a header announcing --max-message + 1 is refused before any payload', async (s) => {
        const fr = f(OP.BINARY, Buffer.alloc(lim + 1, 5));
        await s.write(fr.subarray(0, 14)); // 2 + 8 length + 4 mask
        const e = await s.until((x) => x.t === 'close', FAIL_FAST_MS, '9.x.3: close 1009 before the payload');
        h.checkEq(e.code, 1009, '9.x.3: close code for an oversized header');
        return [E.close(1009)];
    });
    failCase('9.x.4', '7.4.1, 10.4', G9, 'a header announcing 2^62 bytes -> 1009',
        [Buffer.from([0x82, 0xff, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4])], 1009);
}

// 10 Misc: a long text that a client library would auto-fragment.
{
    const t = Buffer.alloc(65536, 'x');
    const fr = [];
    for (let o = 0; o < t.length; o += 1300) fr.push(f(o ? OP.CONT : OP.TEXT, t.subarray(o, o + 1300), { fin: o + 1300 >= t.length }));
    okCase('10.1.1', '5.4', G10, 'text of 65536 bytes in 1300-byte fragments', fr, [E.text(t)], 'frames');
}

// Masking (RFC 5.1: a server MUST close the connection on an unmasked client frame, 5.3).
{
    failCase('M.1', '5.1, 5.3', GM, 'unmasked text -> 1002', [text('hello', { mask: false })], 1002);
    failCase('M.2', '5.1, 5.3', GM, 'unmasked ping -> 1002', [ping('hello', { mask: false })], 1002);
    failCase('M.3', '5.1, 5.3', GM, 'unmasked close -> 1002', [f(OP.CLOSE, closePayload(1000), { mask: false })], 1002);
    failCase('M.4', '5.1, 5.3', GM, 'masked text, then an unmasked continuation -> 1002',
        [text('a', { fin: false }), cont('b', { mask: false })], 1002);
    okCase('M.5', '5.3', GM, 'all-zero masking key', [Buffer.concat([Buffer.from([0x81, 0x85, 0, 0, 0, 0]), Buffer.from('hello')])],
        [E.text('hello')]);
}

// ---- running the raw cases ---------------------------------------------------------------

async function runCase(server, cs) {
    const s = await new Session(server.port).open();
    const expected = await cs.body(s);
    try {
        await h.withTimeout(s.c.endPromise, CASE_MS, 'the server closing the TCP connection');
    } catch (e) {
        s.c.socket.destroy();
        h.fail(`[${cs.id}] ${cs.title} (RFC 6455 ${cs.rfc}, ${cs.group}): ${e.message}; ` +
            `expected ${describe(expected)}, got ${describe(s.events)}`);
    }
    const got = s.events;
    const ok = got.length === expected.length && got.every((e, i) => same(e, expected[i]));
    if (!ok) {
        h.fail(`[${cs.id}] ${cs.title} (RFC 6455 ${cs.rfc}, ${cs.group}): expected ${describe(expected)}, got ${describe(got)}`);
    }
}

// ---- the same cases through a browser-compatible client ------------------------------------

function nextMessage(ws) {
    return new Promise((resolve) => ws.addEventListener('message', (ev) => resolve(ev.data), { once: true }));
}

async function undiciCases(server) {
    const n = { cases: 0 };
    const toBuf = (d) => (typeof d === 'string' ? Buffer.from(d, 'utf8') : Buffer.from(d));
    // 1.1 / 1.2: every length edge, text and binary, echoed byte-exact with its type.
    {
        const ws = await h.connectWs(server.url('/echo'));
        for (const len of LENGTHS) {
            for (const bin of [false, true]) {
                const payload = bin ? pattern(len, len & 0xff) : '*'.repeat(len);
                const back = nextMessage(ws);
                ws.send(bin ? new Uint8Array(payload) : payload);
                const d = await h.withTimeout(back, 5000, `undici: echo of ${bin ? 'binary' : 'text'} ${len}`);
                h.checkEq(typeof d === 'string', !bin, `undici 1.${bin ? 2 : 1}: type of the ${len}-byte echo`);
                h.check(toBuf(d).equals(bin ? payload : Buffer.from(payload)), `undici 1.${bin ? 2 : 1}: ${len}-byte echo differs`);
                n.cases++;
            }
        }
        // 6.2: multi-byte text, every UTF-8 length class.
        const s = 'Hello-\u00b5@\u00df\u00f6\u00e4\u00fc\u00e0\u00e1-UTF-8!! \u03ba\u1f79\u03c3\u03bc\u03b5 \u{1F600}\u{10FFFF}';
        const back = nextMessage(ws);
        ws.send(s);
        h.checkEq(await h.withTimeout(back, 5000, 'undici 6.2 echo'), s, 'undici 6.2: multi-byte text echo');
        n.cases++;
        // 9: a message of exactly the limit comes back.
        const big = pattern(MAX_MESSAGE, 1);
        const backBig = nextMessage(ws);
        ws.send(new Uint8Array(big));
        h.check(toBuf(await h.withTimeout(backBig, 10000, 'undici 9 echo')).equals(big), 'undici 9: --max-message echo differs');
        n.cases++;
        const c = h.closed(ws);
        ws.close(1000);
        const ev = await h.withTimeout(c, 5000, 'undici close event');
        h.checkEq(ev.code, 1000, 'undici: close code after close(1000)');
        h.checkEq(ev.wasClean, true, 'undici: wasClean after close(1000)');
    }
    // 7.7: the close codes a browser may send are echoed (close event code, wasClean).
    for (const code of [1000, 3000, 3999, 4000, 4999]) {
        const ws = await h.connectWs(server.url('/echo'));
        const c = h.closed(ws);
        ws.close(code, `reason ${code} \u00e9`);
        const ev = await h.withTimeout(c, 5000, `undici close event after close(${code})`);
        h.checkEq(ev.code, code, `undici 7.7: close code echoed for close(${code})`);
        h.checkEq(ev.wasClean, true, `undici 7.7: wasClean for close(${code})`);
        n.cases++;
    }
    // 9: one byte over the limit -> the close event carries 1009.
    for (const bin of [false, true]) {
        const ws = await h.connectWs(server.url('/echo'));
        let echoed = 0;
        ws.addEventListener('message', () => echoed++);
        const c = h.closed(ws);
        ws.send(bin ? new Uint8Array(MAX_MESSAGE + 1) : 'x'.repeat(MAX_MESSAGE + 1));
        const ev = await h.withTimeout(c, 10000, `undici close event after a ${MAX_MESSAGE + 1}-byte message`);
        h.checkEq(ev.code, 1009, `undici 9: close code for a ${bin ? 'binary' : 'text'} message over --max-message`);
        h.checkEq(echoed, 0, 'undici 9: messages echoed before 1009');
        n.cases++;
    }
    return n.cases;
}

async function main() {
    const o = h.parseOptions();
    const server = await new h.Server(o.server, ['-c', '2', '--max-message', String(MAX_MESSAGE)]).start();
    const ids = new Set();
    for (const cs of cases) {
        h.check(!ids.has(cs.id), `duplicate case id ${cs.id}`);
        ids.add(cs.id);
    }
    const started = Date.now();
    await h.mapLimit(cases, PARALLEL, (cs) => runCase(server, cs));
    const groups = new Map();
    for (const cs of cases) groups.set(cs.group, (groups.get(cs.group) || 0) + 1);
    for (const [g, k] of groups) h.info(`${g}: ${k} cases passed`);
    h.info(`${cases.length} raw cases in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const nu = await undiciCases(server);
    h.info(`${nu} undici WebSocket cases passed`);
    // Still serving after all that.
    const ws = await h.connectWs(server.url('/echo'));
    const back = nextMessage(ws);
    ws.send('still alive');
    h.checkEq(await h.withTimeout(back, 5000, 'echo after the cases'), 'still alive', 'echo after the cases');
    ws.close(1000);
    await server.stop();
    return `${cases.length} raw cases, ${nu} undici cases`;
}

h.run(path.basename(__filename, '.js'), main, { timeoutMs: 150000 });
