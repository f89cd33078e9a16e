// Admission limits and timeouts, each against a server started with it and (where the
// default differs) one without it, so that every case fails when the behaviour is missing:
// --origin (403 for other origins and for no Origin unless `none` is listed; off by
// default), --max-header-bytes and --max-headers (431), --max-conns-per-ip (429, per
// address, released on close; with direct descriptors and with regular fds), --max-rooms
// (503 for a new room, not for an existing one or /echo, released when a room empties) and
// room-name validation (400), --first-frame-timeout (1008 for a client that says nothing
// after the 101; a pong to the server's ping counts), --write-stall-timeout (a client that
// reads nothing is dropped; an idle one is not), --max-queue-frames (1008) and
// --close-timeout (a close frame left unanswered). Each refusal is checked on the wire
// (status line, socket closed by the server) and in /metrics.
'use strict';

const crypto = require('node:crypto');
const net = require('node:net');
const h = require('./lib/harness');
const { OP, FrameParser, RawClient, handshakeRequest, acceptFor } = require('./lib/rawws');

const STEP_MS = 5000;

// Sends an upgrade for `path` and reads the response head. For a 101 resolves
// {status: 101, client: RawClient}; for anything else waits until the server closes the
// socket and resolves {status, head, closedByServer: true}.
function upgrade(port, path, { extra = '', localAddress, handlers = {} } = {}) {
    return new Promise((resolve, reject) => {
        const key = crypto.randomBytes(16).toString('base64');
        const s = net.connect({ host: '127.0.0.1', port, localAddress });
        let head = Buffer.alloc(0);
        let status = 0;
        const timer = setTimeout(() => {
            s.destroy();
            reject(new h.TestFailure(`upgrade ${path}: no answer (or no close after status ${status}) within ${STEP_MS} ms`));
        }, STEP_MS);
        const onData = (c) => {
            head = Buffer.concat([head, c]);
            const end = head.indexOf('\r\n\r\n');
            if (end < 0 || status) return;
            const m = /^HTTP\/1\.1 (\d{3}) /.exec(head.toString('latin1'));
            if (!m) {
                clearTimeout(timer);
                s.destroy();
                reject(new h.TestFailure(`upgrade ${path}: bad status line ${JSON.stringify(head.toString('latin1').slice(0, 80))}`));
                return;
            }
            status = Number(m[1]);
            if (status !== 101) return; // wait for the server to close
            const text = head.subarray(0, end).toString('latin1');
            if (!text.includes(`Sec-WebSocket-Accept: ${acceptFor(key)}`)) {
                clearTimeout(timer);
                s.destroy();
                reject(new h.TestFailure(`upgrade ${path}: 101 without the right accept key`));
                return;
            }
            clearTimeout(timer);
            s.off('data', onData);
            s.off('close', onClose);
            const client = new RawClient(s, handlers);
            client.attach();
            const rest = head.subarray(end + 4);
            resolve({ status, client });
            if (rest.length) client.onData(rest);
        };
        const onClose = () => {
            clearTimeout(timer);
            if (status && status !== 101) resolve({ status, head: head.toString('latin1'), closedByServer: true });
            else reject(new h.TestFailure(`upgrade ${path}: closed before a response`));
        };
        s.on('data', onData);
        s.on('close', onClose);
        s.on('error', () => {}); // a reset after the response still counts as closed
        s.write(handshakeRequest(path, key, { extra }));
    });
}

async function expectStatus(port, path, want, what, opts) {
    const r = await upgrade(port, path, opts);
    h.checkEq(r.status, want, what);
    if (want !== 101) h.check(r.closedByServer, `${what}: the server did not close the socket`);
    return r;
}

async function closeAll(clients) {
    await Promise.all(clients.map((c) => h.withTimeout(c.close(1000), STEP_MS, 'close handshake')));
}

// Waits until a raw client has the server's close frame (or the connection is gone).
function closeFrameOf(client, ms, what) {
    return h.pollUntil(() => client.closeFrame || (client.ended && { code: 1006 }), ms,
        () => `${what}: no close from the server within ${ms} ms`, 20);
}

// ---- origin ---------------------------------------------------------------------------------

async function origin(o) {
    const allow = 'http://a.example, https://B.example:8443';
    let server = await new h.Server(o.server, ['-c', '2', '-v', '--origin', allow]).start();
    const ok = [];
    ok.push((await expectStatus(server.port, '/r', 101, 'listed origin', { extra: 'Origin: http://a.example\r\n' })).client);
    ok.push((await expectStatus(server.port, '/r', 101, 'listed origin in other case', { extra: 'Origin: https://b.example:8443\r\n' })).client);
    await expectStatus(server.port, '/r', 403, 'unlisted origin', { extra: 'Origin: http://evil.example\r\n' });
    await expectStatus(server.port, '/r', 403, 'origin that only starts like a listed one', { extra: 'Origin: http://a.example.evil\r\n' });
    await expectStatus(server.port, '/r', 403, 'listed origin on another port', { extra: 'Origin: https://b.example\r\n' });
    await expectStatus(server.port, '/r', 403, 'no Origin header without `none`');
    // Plain HTTP is not an upgrade: the allow-list does not apply.
    h.checkEq((await h.httpRequest(server.port, '/healthz', { headers: { Origin: 'http://evil.example' } })).status, 200, '/healthz with any Origin');
    const m = await server.metrics();
    h.checkEq(m.values.get('uringws_origin_rejects_total'), 4, 'uringws_origin_rejects_total');
    h.check(/uringws_handshake_errors_total\{status="403"\} 4/.test(m.text), 'handshake_errors_total{status="403"} is not 4');
    await closeAll(ok);
    await server.stop();

    server = await new h.Server(o.server, ['-c', '1', '--origin', 'http://a.example,none']).start();
    const c = (await expectStatus(server.port, '/r', 101, 'no Origin with `none` listed')).client;
    await expectStatus(server.port, '/r', 403, 'unlisted origin with `none` listed', { extra: 'Origin: http://evil.example\r\n' });
    await closeAll([c]);
    await server.stop();

    // Off by default.
    server = await new h.Server(o.server, ['-c', '1']).start();
    const d = (await expectStatus(server.port, '/r', 101, 'any origin without --origin', { extra: 'Origin: http://evil.example\r\n' })).client;
    await closeAll([d]);
    await server.stop();
    return 'origin ok';
}

// ---- max-header-bytes -------------------------------------------------------------------------

async function headerBytes(o) {
    const pad = (n) => ({ extra: `X-Pad: ${'p'.repeat(n)}\r\n` });
    let server = await new h.Server(o.server, ['-c', '1', '--max-header-bytes', '1k']).start();
    const c = (await expectStatus(server.port, '/r', 101, '800-byte head under a 1k limit', pad(600))).client;
    await expectStatus(server.port, '/r', 431, '1.5k head over a 1k limit', pad(1300));
    await closeAll([c]);
    await server.stop();
    const lines = (n) => ({ extra: Array.from({ length: n }, (_, i) => `X-H${i}: v\r\n`).join('') });
    server = await new h.Server(o.server, ['-c', '1', '--max-headers', '10']).start();
    // The upgrade itself has 5 header lines.
    const e = (await expectStatus(server.port, '/r', 101, '10 header lines under --max-headers 10', lines(5))).client;
    await expectStatus(server.port, '/r', 431, '11 header lines over --max-headers 10', lines(6));
    await closeAll([e]);
    await server.stop();
    server = await new h.Server(o.server, ['-c', '1']).start();
    const d = (await expectStatus(server.port, '/r', 101, '1.5k head and 11 header lines under the defaults',
        { extra: pad(1300).extra + lines(5).extra })).client;
    await closeAll([d]);
    await server.stop();
    return 'max-header-bytes and max-headers ok';
}

// ---- max-conns-per-ip -------------------------------------------------------------------------

async function perIp(o, extraArgs) {
    const server = await new h.Server(o.server, ['-c', '2', '-v', '--max-conns-per-ip', '3', ...extraArgs]).start();
    await h.sleep(200); // the harness's health check connection is gone
    const a = [];
    for (let i = 0; i < 3; i++) a.push((await expectStatus(server.port, '/r', 101, `connection ${i + 1} of 3 from 127.0.0.1`)).client);
    await expectStatus(server.port, '/r', 429, 'connection 4 from 127.0.0.1');
    const b = (await expectStatus(server.port, '/r', 101, 'connection from 127.0.0.2', { localAddress: '127.0.0.2' })).client;
    // Plain HTTP counts too: a fourth socket of any kind is refused.
    const r = await h.httpRequest(server.port, '/healthz').catch((e) => ({ status: e.message }));
    h.checkEq(r.status, 429, 'GET /healthz as a fourth connection from 127.0.0.1');
    await a.shift().close(1000);
    let refused = 2; // the upgrade and the GET above
    const c = await h.pollUntil(async () => {
        const u = await upgrade(server.port, '/r');
        if (u.status === 429) refused++; // the server may not have seen the close yet
        return u.status === 101 ? u.client : null;
    }, 3000, () => 'the count of 127.0.0.1 was not released after a close');
    a.push(c);
    await closeAll([...a, b]);
    await h.sleep(300); // the server's side of the closes is done: /metrics gets a slot
    const m = await server.metrics();
    h.checkEq(m.values.get('uringws_per_ip_rejects_total'), refused, 'uringws_per_ip_rejects_total');
    await server.stop();
    return `max-conns-per-ip ok${extraArgs.length ? ' (' + extraArgs.join(' ') + ')' : ''}`;
}

// ---- max-rooms --------------------------------------------------------------------------------

async function maxRooms(o) {
    const server = await new h.Server(o.server, ['-c', '2', '-v', '--max-rooms', '2']).start();
    const a = (await expectStatus(server.port, '/room-a', 101, 'first room')).client;
    const b = (await expectStatus(server.port, '/room-b', 101, 'second room')).client;
    await expectStatus(server.port, '/room-c', 503, 'third room past --max-rooms 2');
    const a2 = (await expectStatus(server.port, '/room-a', 101, 'an existing room')).client;
    const e = (await expectStatus(server.port, '/echo', 101, '/echo is not a room')).client;
    // Room names: at most 64 bytes, no control characters (checked before the room limit).
    await expectStatus(server.port, `/${'r'.repeat(65)}`, 400, '65-byte room name');
    await expectStatus(server.port, '/a%01b', 400, 'room name with a control character');
    await b.close(1000);
    const c = await h.pollUntil(async () => {
        const u = await upgrade(server.port, '/room-c');
        return u.status === 101 ? u.client : null;
    }, 3000, () => 'room-b emptied but room-c is still refused');
    // The rooms still work: a message to room-a reaches both members.
    const got = [];
    a2.handlers.message = (op, p) => got.push(p.toString());
    await a.send(OP.TEXT, Buffer.from('hello a'));
    await h.pollUntil(() => got.includes('hello a'), 3000, () => 'room-a message not delivered');
    const m = await server.metrics();
    h.check(m.values.get('uringws_room_limit_rejects_total') >= 1, 'uringws_room_limit_rejects_total is 0');
    await closeAll([a, a2, e, c]);
    await server.stop();
    return 'max-rooms ok';
}

// ---- first-frame-timeout -----------------------------------------------------------------------

async function firstFrame(o) {
    // No pings: a silent client has nothing to answer.
    let server = await new h.Server(o.server, ['-c', '1', '-v', '--first-frame-timeout', '1s', '--ping-interval', '0']).start();
    const t0 = Date.now();
    const silent = (await expectStatus(server.port, '/r', 101, 'silent client')).client;
    const talker = (await expectStatus(server.port, '/r', 101, 'talking client')).client;
    await talker.send(OP.TEXT, Buffer.from('hi'));
    const cf = await closeFrameOf(silent, 4000, 'silent client');
    const ms = Date.now() - t0;
    h.checkEq(cf.code, 1008, 'close code for a client with no frame');
    h.check(ms >= 900, `closed after ${ms} ms, before the 1 s deadline`);
    await h.sleep(500);
    h.check(!talker.closeFrame && !talker.ended, 'a client that sent a frame was closed');
    h.checkEq(await server.metric('uringws_first_frame_timeouts_total'), 1, 'uringws_first_frame_timeouts_total');
    await closeAll([talker]);
    await server.stop();

    // With pings, a client that only listens proves itself with its pong.
    server = await new h.Server(o.server, ['-c', '1', '--first-frame-timeout', '1s', '--ping-interval', '300ms']).start();
    const listener = (await expectStatus(server.port, '/r', 101, 'listening client')).client;
    await h.sleep(1800);
    h.check(!listener.closeFrame && !listener.ended, 'a client answering pings was closed by the first-frame timeout');
    h.checkEq(await server.metric('uringws_first_frame_timeouts_total'), 0, 'uringws_first_frame_timeouts_total with pongs');
    await closeAll([listener]);
    await server.stop();
    return `first-frame-timeout ok (closed after ${ms} ms)`;
}

// ---- close-timeout ---------------------------------------------------------------------------------

// The server closes (1008 from the first-frame timeout) and the client never answers the
// close frame: the server drops the socket after --close-timeout.
async function closeTimeout(o) {
    const server = await new h.Server(o.server, ['-c', '1', '--close-timeout', '1s', '--first-frame-timeout', '300ms',
        '--ping-interval', '0']).start();
    const c = (await expectStatus(server.port, '/r', 101, 'client')).client;
    c.closeSent = true; // RawClient then does not echo the server's close frame
    const cf = await closeFrameOf(c, 3000, 'silent client');
    h.checkEq(cf.code, 1008, 'close code from the first-frame timeout');
    const t0 = Date.now();
    await h.withTimeout(c.endPromise, 4000, 'socket not closed by the server after --close-timeout 1s');
    const ms = Date.now() - t0;
    h.check(ms >= 700, `closed ${ms} ms after the close frame: before --close-timeout 1s`);
    await server.stop();
    return `close-timeout ok (${ms} ms)`;
}

// ---- a reader that stops reading ---------------------------------------------------------------

// A client of `room` that sends one message and then reads nothing, and a publisher in the
// same room that sends `count` messages of `size` random bytes, yielding after each so that
// it reads its own copies meanwhile (it must not become a slow reader itself).
async function stopReading(server, room, count, size) {
    const stuck = (await expectStatus(server.port, room, 101, 'client that stops reading')).client;
    const pub = (await expectStatus(server.port, room, 101, 'publisher')).client;
    await stuck.send(OP.TEXT, Buffer.from('x'));
    stuck.socket.pause();
    // The publisher is a member too and must stay a good reader: it sends its next message
    // once its own copy of the last one is back, so its queue never holds more than one or
    // two frames, however many messages the server takes in one loop pass.
    let echoed = 0;
    pub.handlers.message = () => { echoed++; };
    const msg = crypto.randomBytes(size);
    for (let i = 0; i < count; i++) {
        await pub.send(OP.BINARY, msg);
        await h.pollUntil(() => echoed > i, STEP_MS, () => `publisher got ${echoed} of its ${i + 1} messages back`, 1);
    }
    return { stuck, pub };
}

// ---- write-stall-timeout -----------------------------------------------------------------------

async function writeStall(o) {
    // A queue limit far above what is sent, so only the stall timeout can end the reader.
    const server = await new h.Server(o.server, ['-c', '1', '-v', '--write-stall-timeout', '1s', '--ping-interval', '0',
        '--max-queue', '256m']).start();
    const idle = (await expectStatus(server.port, '/other', 101, 'idle client')).client;
    await idle.send(OP.TEXT, Buffer.from('x'));
    // 24 MiB: far more than loopback socket buffers hold, so the server's sends stop.
    const { stuck, pub } = await stopReading(server, '/room', 96, 256 << 10);
    await server.expectMetric('uringws_write_stall_drops_total', 1, 8000, 'a client that reads nothing');
    // The idle client and the publisher (which reads) are untouched.
    await h.sleep(1500);
    h.checkEq(await server.metric('uringws_write_stall_drops_total'), 1, 'write stalls after the idle wait');
    h.check(!idle.closeFrame && !idle.ended, 'an idle client was dropped');
    const got = [];
    idle.handlers.message = (op, p) => got.push(p.toString());
    await idle.send(OP.TEXT, Buffer.from('still here'));
    await h.pollUntil(() => got.includes('still here'), 3000, () => 'idle client no longer served');
    stuck.socket.destroy();
    await closeAll([idle, pub]);
    await server.stop();
    return 'write-stall-timeout ok';
}

// ---- max-queue-frames ---------------------------------------------------------------------------

async function queueFrames(o) {
    // Bytes far above what is sent: only the frame count can make the reader a slow consumer.
    const server = await new h.Server(o.server, ['-c', '1', '-v', '--max-queue', '1g', '--max-queue-frames', '8',
        '--write-stall-timeout', '0', '--ping-interval', '0']).start();
    // 8 MiB in 64 KiB messages: past the socket buffers (about 4 MB), then 8 queued frames.
    const { stuck, pub } = await stopReading(server, '/q', 128, 64 << 10);
    await server.expectMetric('uringws_slow_consumer_closes_total', 1, 8000, '--max-queue-frames 8');
    h.check(/slow consumer: \d+ bytes, \d+ frames queued, over --max-queue-frames 8 by \d+ frames for \d+ ms .*closing with 1008/.test(server.log),
        'slow-consumer log line naming --max-queue-frames 8');
    stuck.socket.destroy();
    await closeAll([pub]);
    await server.stop();
    return 'max-queue-frames ok';
}

h.run('limits', async () => {
    const o = h.parseOptions();
    const done = [];
    done.push(await origin(o));
    done.push(await headerBytes(o));
    done.push(await perIp(o, []));
    done.push(await perIp(o, ['--no-direct']));
    done.push(await maxRooms(o));
    done.push(await firstFrame(o));
    done.push(await writeStall(o));
    done.push(await queueFrames(o));
    done.push(await closeTimeout(o));
    return done.join('; ');
}, { timeoutMs: 120000 });
