// A WebSocket client written directly on a TCP socket, for what real clients will not do:
// fragmented messages with interleaved control frames, malformed frames, partial writes,
// abrupt drops. It checks the server's side of the protocol strictly (101 + accept key,
// unmasked server frames, no RSV bits, control frame rules) and reports violations as errors.
'use strict';

const crypto = require('node:crypto');
const net = require('node:net');
const tls = require('node:tls');
const { isUtf8 } = require('node:buffer');

const OP = { CONT: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa };
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

// One frame as bytes. Client frames are masked unless mask === false (used to provoke 1002).
function encodeFrame(opcode, payload = Buffer.alloc(0), { fin = true, mask = true, rsv = 0 } = {}) {
    const len = payload.length;
    const extLen = len < 126 ? 0 : len < 65536 ? 2 : 8;
    const head = Buffer.alloc(2 + extLen + (mask ? 4 : 0));
    head[0] = (fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0x0f);
    head[1] = (mask ? 0x80 : 0) | (extLen === 0 ? len : extLen === 2 ? 126 : 127);
    if (extLen === 2) head.writeUInt16BE(len, 2);
    else if (extLen === 8) head.writeBigUInt64BE(BigInt(len), 2);
    if (!mask) return Buffer.concat([head, payload]);
    const key = crypto.randomBytes(4);
    key.copy(head, 2 + extLen);
    const body = Buffer.allocUnsafe(len);
    for (let i = 0; i < len; i++) body[i] = payload[i] ^ key[i & 3];
    return Buffer.concat([head, body]);
}

function closePayload(code, reason = '') {
    const r = Buffer.from(reason, 'utf8');
    const b = Buffer.alloc(2 + r.length);
    b.writeUInt16BE(code, 0);
    r.copy(b, 2);
    return b;
}

// Incremental parser for server-to-client frames. Chunks are kept in a list and only the
// bytes of one frame are joined, so a 1 MiB frame arriving in 64 KiB reads is not copied
// quadratically.
class FrameParser {
    constructor(onFrame) {
        this.onFrame = onFrame;
        this.chunks = [];
        this.avail = 0;
    }

    take(n) {
        const out = Buffer.allocUnsafe(n);
        let off = 0;
        while (off < n) {
            const c = this.chunks[0];
            const k = Math.min(c.length, n - off);
            c.copy(out, off, 0, k);
            off += k;
            if (k === c.length) this.chunks.shift();
            else this.chunks[0] = c.subarray(k);
        }
        this.avail -= n;
        return out;
    }

    peek(n) {
        if (this.chunks[0].length >= n) return this.chunks[0].subarray(0, n);
        const b = this.take(n);
        this.chunks.unshift(b);
        this.avail += n;
        return b;
    }

    push(chunk) {
        this.chunks.push(chunk);
        this.avail += chunk.length;
        for (;;) {
            if (this.avail < 2) return;
            const h = this.peek(2);
            let len = h[1] & 0x7f;
            let hl = 2;
            if (len === 126) hl = 4;
            else if (len === 127) hl = 10;
            const masked = (h[1] & 0x80) !== 0;
            if (masked) hl += 4;
            if (this.avail < hl) return;
            const hd = this.peek(hl);
            // 5.2: the sender uses the minimal length encoding.
            if (len === 126) {
                len = hd.readUInt16BE(2);
                if (len < 126) throw new Error(`server protocol violation: ${len}-byte frame with a 16-bit length`);
            } else if (len === 127) {
                const big = hd.readBigUInt64BE(2);
                if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`frame length ${big} from server`);
                len = Number(big);
                if (len < 65536) throw new Error(`server protocol violation: ${len}-byte frame with a 64-bit length`);
            }
            if (this.avail < hl + len) return;
            this.take(hl);
            const payload = this.take(len);
            this.onFrame({ fin: (h[0] & 0x80) !== 0, rsv: (h[0] >> 4) & 7, opcode: h[0] & 0x0f, masked, payload });
        }
    }
}

function handshakeRequest(path, key, { host = '127.0.0.1', extra = '' } = {}) {
    return `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;
}

function acceptFor(key) {
    return crypto.createHash('sha1').update(key + WS_GUID).digest('base64');
}

// A connected raw client. Events are delivered through the callbacks in `handlers`:
//   message(opcode, payload)  complete data message (TEXT or BINARY, fragments joined)
//   pong(payload), close(code, reason), error(err), end()
// Server pings are answered automatically unless autoPong is false, and a close frame from
// the server is answered with the same code (as browsers do) unless this side sent one
// first; either reply waits until a frame being written in pieces (writeInPieces) is out. Protocol violations by the server become error(Error) and the socket is destroyed.
class RawClient {
    constructor(socket, handlers = {}) {
        this.socket = socket;
        this.handlers = handlers;
        this.autoPong = true;
        this.closeSent = false;
        this.closeFrame = null;   // {code, reason} of the server's close frame
        this.ended = false;       // the server closed its side (FIN)
        this.frag = null;         // {opcode, parts: []} while a fragmented message arrives
        this.inPieces = false;    // writeInPieces is under way: other writes wait in `held`
        this.held = [];           // [{bytes, resolve}] written once the pieces are out
        this.parser = new FrameParser((f) => this.frame(f));
        this.endPromise = new Promise((resolve) => { this.resolveEnd = resolve; });
    }

    // Opens a TCP connection, sends the upgrade and checks the 101. Rejects on anything else.
    // With `tls` (node:tls connect options: ca, minVersion, ciphers...) the client speaks
    // wss: the same frames inside a TLS session.
    static connect(port, path, handlers = {}, { timeoutMs = 10000, extra = '', tls: tlsOpts = null } = {}) {
        return new Promise((resolve, reject) => {
            const key = crypto.randomBytes(16).toString('base64');
            const socket = tlsOpts ? tls.connect({ host: '127.0.0.1', port, ...tlsOpts }) : net.connect({ host: '127.0.0.1', port });
            let head = Buffer.alloc(0);
            const timer = setTimeout(() => {
                socket.destroy();
                reject(new Error(`raw handshake to ${path}: no 101 within ${timeoutMs} ms`));
            }, timeoutMs);
            const onData = (chunk) => {
                head = Buffer.concat([head, chunk]);
                const end = head.indexOf('\r\n\r\n');
                if (end < 0) {
                    if (head.length > 16384) { socket.destroy(); reject(new Error('raw handshake: response head too long')); }
                    return;
                }
                clearTimeout(timer);
                socket.off('data', onData);
                socket.off('error', onErr);
                socket.off('close', onClose);
                const text = head.subarray(0, end).toString('latin1');
                const lines = text.split('\r\n');
                const status = lines[0];
                const headers = {};
                for (const l of lines.slice(1)) {
                    const i = l.indexOf(':');
                    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
                }
                const problems = [];
                if (!/^HTTP\/1\.1 101 /.test(status)) problems.push(`status line ${JSON.stringify(status)}`);
                if ((headers.upgrade || '').toLowerCase() !== 'websocket') problems.push(`Upgrade: ${headers.upgrade}`);
                if (!/(^|,)\s*upgrade\s*(,|$)/i.test(headers.connection || '')) problems.push(`Connection: ${headers.connection}`);
                if (headers['sec-websocket-accept'] !== acceptFor(key)) problems.push(`Sec-WebSocket-Accept: ${headers['sec-websocket-accept']} (want ${acceptFor(key)})`);
                if (headers['sec-websocket-extensions']) problems.push(`unrequested extensions: ${headers['sec-websocket-extensions']}`);
                if (problems.length) {
                    socket.destroy();
                    reject(new Error(`raw handshake to ${path}: ${problems.join('; ')}`));
                    return;
                }
                const c = new RawClient(socket, handlers);
                c.attach();
                const rest = head.subarray(end + 4);
                resolve(c);
                if (rest.length) c.onData(rest);
            };
            const onErr = (e) => { clearTimeout(timer); reject(new Error(`raw handshake to ${path}: ${e.message}`)); };
            const onClose = () => { clearTimeout(timer); reject(new Error(`raw handshake to ${path}: socket closed before 101`)); };
            socket.on('data', onData);
            socket.on('error', onErr);
            socket.on('close', onClose);
            socket.setNoDelay(true);
            socket.write(handshakeRequest(path, key, { extra }));
        });
    }

    attach() {
        this.socket.on('data', (c) => this.onData(c));
        this.socket.on('end', () => {
            this.ended = true;
            if (this.handlers.end) this.handlers.end();
        });
        this.socket.on('error', (e) => this.error(e));
        this.socket.on('close', () => this.resolveEnd());
    }

    onData(chunk) {
        try {
            this.parser.push(chunk);
        } catch (e) {
            this.error(e);
        }
    }

    error(e) {
        if (this.failed) return;
        this.failed = e;
        this.socket.destroy();
        if (this.handlers.error) this.handlers.error(e);
    }

    violation(msg) {
        throw new Error(`server protocol violation: ${msg}`);
    }

    frame(f) {
        if (this.closeFrame) this.violation(`frame (opcode ${f.opcode}) after the close frame`);
        if (f.masked) this.violation(`masked frame (opcode ${f.opcode})`);
        if (f.rsv) this.violation(`RSV bits ${f.rsv} set without a negotiated extension`);
        if (f.opcode >= 0x8) {
            if (!f.fin) this.violation(`fragmented control frame (opcode ${f.opcode})`);
            if (f.payload.length > 125) this.violation(`control frame of ${f.payload.length} bytes`);
            if (f.opcode === OP.PING) {
                if (this.autoPong) this.send(OP.PONG, f.payload);
                if (this.handlers.ping) this.handlers.ping(f.payload);
            } else if (f.opcode === OP.PONG) {
                if (this.handlers.pong) this.handlers.pong(f.payload);
            } else if (f.opcode === OP.CLOSE) {
                if (f.payload.length === 1) this.violation('close frame with a 1-byte payload');
                const code = f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005;
                const reason = f.payload.subarray(2).toString('utf8');
                this.closeFrame = { code, reason };
                if (!this.closeSent) {
                    const echo = code >= 1000 && code < 5000 && ![1004, 1005, 1006, 1015].includes(code);
                    this.send(OP.CLOSE, echo ? closePayload(code) : Buffer.alloc(0)).catch(() => {});
                }
                if (this.handlers.close) this.handlers.close(code, reason);
            } else {
                this.violation(`reserved control opcode ${f.opcode}`);
            }
            return;
        }
        if (f.opcode === OP.CONT) {
            if (!this.frag) this.violation('continuation frame without a message in progress');
            this.frag.parts.push(f.payload);
        } else if (f.opcode === OP.TEXT || f.opcode === OP.BINARY) {
            if (this.frag) this.violation('new data frame inside a fragmented message');
            this.frag = { opcode: f.opcode, parts: [f.payload] };
        } else {
            this.violation(`reserved data opcode ${f.opcode}`);
        }
        if (f.fin) {
            const { opcode, parts } = this.frag;
            this.frag = null;
            const payload = parts.length === 1 ? parts[0] : Buffer.concat(parts);
            if (opcode === OP.TEXT && !isUtf8(payload)) this.violation('text message that is not UTF-8');
            if (this.handlers.message) this.handlers.message(opcode, payload);
        }
    }

    // Writes raw bytes; resolves when the socket can take more (backpressure). While
    // writeInPieces is under way the bytes wait until its last piece is out: a pong or close
    // echo sent from the data handler must never land inside a frame written in pieces (the
    // server would parse its bytes as that frame's payload).
    write(bytes) {
        if (this.inPieces) return new Promise((resolve) => this.held.push({ bytes, resolve }));
        return this.writeNow(bytes);
    }

    // Writes bytes with the first `n` one per write, `gapMs` apart, so that the server sees
    // a frame (header included) arrive in pieces; the rest follows in one write. Frames this
    // client sends meanwhile (automatic pongs, the close echo, any write()) go out after it.
    async writeInPieces(bytes, n, gapMs = 1) {
        if (this.inPieces) throw new Error('writeInPieces: another one is under way');
        this.inPieces = true;
        try {
            const k = Math.min(n, bytes.length);
            for (let i = 0; i < k; i++) {
                await this.writeNow(bytes.subarray(i, i + 1));
                await new Promise((r) => setTimeout(r, gapMs));
            }
            if (k < bytes.length) await this.writeNow(bytes.subarray(k));
        } finally {
            this.inPieces = false;
            const held = this.held;
            this.held = [];
            for (const w of held) this.writeNow(w.bytes).then(w.resolve);
        }
    }

    writeNow(bytes) {
        if (this.socket.destroyed || this.socket.writableEnded) return Promise.resolve();
        if (this.socket.write(bytes)) return Promise.resolve();
        return new Promise((resolve) => {
            const done = () => { this.socket.off('drain', done); this.socket.off('close', done); resolve(); };
            this.socket.on('drain', done);
            this.socket.on('close', done);
        });
    }

    send(opcode, payload, opts) {
        if (opcode === OP.CLOSE) this.closeSent = true;
        return this.write(encodeFrame(opcode, payload, opts));
    }

    // Sends a close frame and waits until the server has closed the TCP connection.
    async close(code = 1000, reason = '') {
        await this.send(OP.CLOSE, closePayload(code, reason));
        await this.endPromise;
    }
}

module.exports = { OP, encodeFrame, closePayload, FrameParser, RawClient, handshakeRequest, acceptFor };
