// Test messages: a seeded generator for text (exact UTF-8 byte length, code points from every
// UTF-8 length class) and binary payloads, a catalogue that names each message by the hash of
// its bytes, and a per-client Tracker that checks what arrives against the catalogue without
// keeping payloads (identity, type, per-sender order, count, and the order of arrival).
'use strict';

const crypto = require('node:crypto');

// mulberry32 for decisions, AES-128-CTR keyed by the seed for bulk bytes: both reproducible
// from the seed printed by each test.
class Rng {
    constructor(seed) {
        this.s = seed >>> 0;
        const key = crypto.createHash('sha256').update(`uringws-test-${seed}`).digest();
        this.cipher = crypto.createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32));
    }

    next() {
        let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    }

    int(lo, hi) {
        return lo + Math.floor(this.next() * (hi - lo + 1));
    }

    chance(p) {
        return this.next() < p;
    }

    pick(arr) {
        return arr[Math.floor(this.next() * arr.length)];
    }

    bytes(n) {
        return this.cipher.update(Buffer.alloc(n));
    }

    // A string whose UTF-8 encoding is exactly n bytes. Mostly ASCII, with code points of
    // 2, 3 and 4 bytes (including U+0000, U+FFFF and supplementary planes) mixed in, so that
    // fragment boundaries and read boundaries fall inside multi-byte sequences.
    text(n) {
        const parts = [];
        let left = n;
        while (left > 0) {
            const r = this.next();
            let cp;
            if (r < 0.7 || left === 1) cp = r < 0.002 ? 0 : this.int(0x20, 0x7e);
            else if (r < 0.8 || left === 2) cp = this.int(0x80, 0x7ff);
            else if (r < 0.9 || left === 3) {
                // No surrogates (not scalar values) and no U+FEFF: a receiving WebSocket's
                // TextDecoder strips a leading byte order mark, so a message starting with
                // one would arrive three bytes short and look corrupted.
                do cp = this.int(0x800, 0xffff); while ((cp >= 0xd800 && cp <= 0xdfff) || cp === 0xfeff);
            } else cp = this.int(0x10000, 0x10ffff);
            const len = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
            parts.push(String.fromCodePoint(cp));
            left -= len;
        }
        return parts.join('');
    }
}

const sha256 = (buf) => crypto.createHash('sha256').update(buf).digest('hex');

// Messages known to a test, keyed by type + content hash. Each entry says who sent it and
// its position in that sender's sequence. The payload bytes stay in the entry too (the test
// sends them, and a corrupted delivery is diagnosed against them); trackers only hash.
class Catalogue {
    constructor(name) {
        this.name = name;
        this.byKey = new Map();
        this.entries = [];             // by gid
        this.perSender = new Map();   // sender -> number of messages
        this.size = 0;
        this.bytes = 0;
    }

    static key(binary, hash) {
        return (binary ? 'b:' : 't:') + hash;
    }

    // Returns the entry, or null when an identical message is already present (the caller
    // generates another payload: every message must be distinguishable by content).
    add(sender, binary, bytes, extra = {}) {
        const hash = sha256(bytes);
        const key = Catalogue.key(binary, hash);
        if (this.byKey.has(key)) return null;
        const idx = this.perSender.get(sender) || 0;
        const e = { gid: this.size, sender, idx, binary, size: bytes.length, hash, bytes, ...extra };
        this.byKey.set(key, e);
        this.entries.push(e);
        this.perSender.set(sender, idx + 1);
        this.size++;
        this.bytes += bytes.length;
        return e;
    }

    lookup(binary, hash) {
        return this.byKey.get(Catalogue.key(binary, hash));
    }
}

// Checks one client's stream of received messages. `others` are catalogues of other rooms:
// a hit there is reported as a room-isolation failure rather than as garbage. The order of
// arrival is kept as catalogue ids (4 bytes a message) so clients can be compared.
class Tracker {
    constructor(label, catalogue, { others = [], expected = catalogue.size } = {}) {
        this.label = label;
        this.cat = catalogue;
        this.others = others;
        this.expected = expected;
        this.count = 0;
        this.next = new Map();   // sender -> index expected next
        this.got = new Map();    // sender -> messages received
        this.seq = [];
        this.errors = [];
        this.onComplete = null;
    }

    error(msg) {
        if (this.errors.length < 5) this.errors.push(`${this.label}: ${msg}`);
    }

    // binary: whether it arrived as a binary message; bytes: the payload as UTF-8/raw bytes.
    receive(binary, bytes) {
        const hash = sha256(bytes);
        const e = this.cat.lookup(binary, hash);
        if (!e) {
            const other = this.others.find((c) => c.lookup(binary, hash));
            if (other) {
                const o = other.lookup(binary, hash);
                this.error(`got message ${o.sender}#${o.idx} of "${other.name}", which must not reach "${this.cat.name}"`);
            } else if (this.cat.lookup(!binary, hash)) {
                const o = this.cat.lookup(!binary, hash);
                this.error(`message ${o.sender}#${o.idx} arrived as ${binary ? 'binary' : 'text'}, was sent as ${o.binary ? 'binary' : 'text'}`);
            } else {
                this.error(`received unknown ${binary ? 'binary' : 'text'} message of ${bytes.length} bytes ` +
                    `(sha256 ${hash.slice(0, 16)}): ${diagnose(this.cat, binary, bytes, this.next)}`);
            }
            return;
        }
        const want = this.next.get(e.sender) || 0;
        if (e.idx !== want) {
            this.error(e.idx < want
                ? `message ${e.sender}#${e.idx} delivered again (or out of order) after #${want - 1}`
                : `message ${e.sender}#${e.idx} arrived but #${want} from that sender did not come before it`);
        }
        this.next.set(e.sender, Math.max(want, e.idx + 1));
        this.got.set(e.sender, (this.got.get(e.sender) || 0) + 1);
        this.seq.push(e.gid);
        this.count++;
        if (this.count > this.expected) this.error(`more messages than the ${this.expected} sent`);
        if (this.count === this.expected && this.onComplete) this.onComplete();
    }

    // Resolves when the expected number of messages has arrived.
    completion() {
        if (this.complete) return Promise.resolve();
        return new Promise((resolve) => { this.onComplete = resolve; });
    }

    get complete() {
        return this.count >= this.expected;
    }

    result() {
        return { label: this.label, count: this.count, expected: this.expected,
            seq: Uint32Array.from(this.seq), errors: this.errors, got: Object.fromEntries(this.got) };
    }
}

// Explains a delivery that matches no message: the closest sent message of the same type
// (preferring each sender's next expected one), which bytes differ, and the first of them.
// Both payloads are written to diag/ under the working directory (the ctest build dir).
function diagnose(cat, binary, bytes, next) {
    const expectedNext = cat.entries.filter((e) => e.binary === binary && (next.get(e.sender) || 0) === e.idx);
    const sameSize = cat.entries.filter((e) => e.binary === binary && e.size === bytes.length);
    const pool = [...new Set([...expectedNext, ...sameSize])];
    let best = null;
    for (const e of pool) {
        const n = Math.min(e.size, bytes.length);
        let diff = Math.abs(e.size - bytes.length);
        for (let i = 0; i < n; i++) if (e.bytes[i] !== bytes[i]) diff++;
        if (!best || diff < best.diff) best = { e, diff };
    }
    if (!best || best.diff > Math.max(bytes.length, 1) / 2) return 'corrupted or never sent; no sent message of that type is close to it';
    const { e } = best;
    const ranges = [];
    const n = Math.max(e.size, bytes.length);
    for (let i = 0; i < n; i++) {
        if (e.bytes[i] === bytes[i]) continue;
        const last = ranges[ranges.length - 1];
        if (last && last[1] === i - 1) last[1] = i;
        else ranges.push([i, i]);
    }
    let saved = '';
    try {
        const fs = require('node:fs');
        fs.mkdirSync('diag', { recursive: true });
        const base = `diag/${e.sender}-${e.idx}`;
        fs.writeFileSync(`${base}.sent`, e.bytes);
        fs.writeFileSync(`${base}.received-${sha256(bytes).slice(0, 8)}`, bytes);
        saved = `; payloads saved as ${process.cwd()}/${base}.*`;
    } catch (err) {
        saved = `; could not save payloads: ${err.message}`;
    }
    const hex = (b, i) => (b[i] === undefined ? '--' : b[i].toString(16).padStart(2, '0'));
    const [a] = ranges[0];
    return `corrupted copy of ${e.sender}#${e.idx} (${e.size} bytes sent): ${best.diff} bytes differ in ` +
        `${ranges.length} range(s) ${ranges.slice(0, 6).map(([x, y]) => `${x}-${y}`).join(', ')}` +
        `${ranges.length > 6 ? ', ...' : ''}; at ${a} sent ${hex(e.bytes, a)} got ${hex(bytes, a)}${saved}`;
}

// Receives from an undici/browser-API WebSocket into a tracker, in arrival order even for
// Blob payloads (whose bytes are read asynchronously).
function trackWebSocket(ws, tracker) {
    let chain = Promise.resolve();
    ws.addEventListener('message', (ev) => {
        const d = ev.data;
        if (typeof d === 'string') {
            chain = chain.then(() => tracker.receive(false, Buffer.from(d, 'utf8')));
        } else if (d instanceof ArrayBuffer) {
            if (ws.binaryType !== 'arraybuffer') tracker.error(`binary message as ArrayBuffer with binaryType ${ws.binaryType}`);
            chain = chain.then(() => tracker.receive(true, Buffer.from(d)));
        } else if (typeof Blob !== 'undefined' && d instanceof Blob) {
            if (ws.binaryType !== 'blob') tracker.error(`binary message as Blob with binaryType ${ws.binaryType}`);
            const ab = d.arrayBuffer();
            chain = chain.then(() => ab).then((b) => tracker.receive(true, Buffer.from(b)));
        } else {
            tracker.error(`message event with data of type ${Object.prototype.toString.call(d)}`);
        }
    });
}

// Compares the arrival order of every client of one room with the first one; returns a
// description of the first difference or null.
function compareOrders(cat, results) {
    const ref = results[0];
    const name = (gid) => {
        if (gid === undefined) return 'nothing (no more messages)';
        const e = cat.entries[gid];
        return e ? `${e.sender}#${e.idx}` : `?${gid}`;
    };
    for (const r of results.slice(1)) {
        const n = Math.max(ref.seq.length, r.seq.length);
        for (let i = 0; i < n; i++) {
            if (ref.seq[i] !== r.seq[i]) {
                return `${r.label} and ${ref.label} saw different orders: message ${i} was ` +
                    `${name(r.seq[i])} at ${r.label} but ${name(ref.seq[i])} at ${ref.label}`;
            }
        }
    }
    return null;
}

module.exports = { Rng, sha256, Catalogue, Tracker, trackWebSocket, compareOrders };
