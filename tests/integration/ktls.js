// kTLS in a mixed room. One room holds a wss member per TLS version x cipher (6), two plain
// ws members and a plain publisher. The publisher sends messages of 100 B to 300 KB one per
// write, then 64 small ones in one write; every member must get every message byte for byte
// and in order, then close cleanly (1000 echoed, TCP end without error).
// On a kernel with kTLS (the VM stage, scripts/vm.sh) the server runs with --ktls require and
// the test also checks that each wss member was handed to the kernel (transport "ktls",
// uringws_ktls_offloads_total), that no hand-off was refused, and that the frames went out by
// reference: uringws_ktls_tx_ref_bytes_total grew by at least the members' share of the large
// messages, which no cork copy can carry. Without kTLS (this build machine) the same room runs
// with --ktls auto in userspace TLS, and the test checks that nothing claims kTLS.
// --userspace LABEL (the VM stage, before the ChaCha20-Poly1305 modules are loaded) says the
// kernel cannot take that cipher: the server runs with --ktls auto, must name those suites in
// its start-up log, and the room then mixes kTLS members, userspace TLS members (their
// hand-offs refused and counted) and plain ones.
'use strict';

const crypto = require('node:crypto');
const h = require('./lib/harness');
const T = require('./lib/tlsutil');
const { OP, encodeFrame, RawClient } = require('./lib/rawws');

const SIZES = [100, 4096, 65536, 300000];
const ROUNDS = 8;   // SIZES.length x ROUNDS messages one per write
const SMALL = 64;   // then this many 32-byte messages in one write

function member(expected) {
    const m = { got: 0, bad: null, ended: false };
    m.handlers = {
        message: (op, p) => {
            if (op === OP.TEXT) { m.ready = true; return; } // join probe
            if (m.bad) return;
            if (m.got >= expected.length) m.bad = `message ${m.got + 1} of ${expected.length}`;
            else if (op !== OP.BINARY || !p.equals(expected[m.got])) m.bad = `message ${m.got} differs (${p.length} bytes)`;
            m.got++;
        },
        end: () => { m.ended = true; },
        error: (e) => { m.bad = m.bad || `socket error: ${e.message}`; },
    };
    return m;
}

async function kernelHasKtls(o, certs) {
    const probe = await (await T.TlsServer.create(o.server, ['-c', '1', '--ktls', 'auto'], { certs })).start();
    const m = /uringws_ktls_available\{mode="auto",probe="([A-Za-z_]+)"\} (\d)/.exec(await probe.metricsText());
    h.check(m, 'uringws_ktls_available in /metrics');
    await probe.stop();
    return m[1] === 'ok';
}

h.run('ktls', async () => {
    const o = h.parseOptions({ userspace: { type: 'string' } });
    const certs = T.makeCerts();
    const hasKtls = await kernelHasKtls(o, certs);
    h.check(!o.userspace || T.SUITES.some((s) => s.label === o.userspace), `--userspace ${o.userspace}: no such suite`);
    h.check(!o.userspace || hasKtls, '--userspace needs a kernel with kTLS');
    const mode = hasKtls && !o.userspace ? 'require' : 'auto';
    // The members the kernel takes.
    const inKernel = (s) => hasKtls && s.label !== o.userspace;
    const server = await (await T.TlsServer.create(o.server, ['-c', '2', '--ktls', mode, '--max-queue', '64m', '-v'],
        { certs })).start();

    const expected = [];
    for (let r = 0; r < ROUNDS; r++) for (const n of SIZES) expected.push(crypto.randomBytes(n));
    const small = [];
    for (let i = 0; i < SMALL; i++) small.push(crypto.randomBytes(32));
    expected.push(...small);

    const members = [];
    for (const s of T.SUITES) {
        const m = member(expected);
        m.what = `wss ${s.version} ${s.label}`;
        m.client = await RawClient.connect(server.tlsPort, '/mixed', m.handlers, {
            tls: { ca: certs.ca, servername: 'localhost', minVersion: s.version, maxVersion: s.version, ciphers: s.ciphers },
        });
        members.push(m);
    }
    for (let i = 0; i < 2; i++) {
        const m = member(expected);
        m.what = `ws ${i}`;
        m.client = await RawClient.connect(server.port, '/mixed', m.handlers);
        members.push(m);
    }
    const pub = await RawClient.connect(server.port, '/mixed', {});
    // Everyone is in the room once a probe from the publisher reached them all.
    await h.pollUntil(async () => {
        await pub.send(OP.TEXT, Buffer.from('join?'));
        await h.sleep(100);
        return members.every((m) => m.ready);
    }, 15000, () => `members not joined: ${members.filter((m) => !m.ready).map((m) => m.what).join(', ')}`);

    const wss = T.SUITES.length;
    const nk = T.SUITES.filter(inKernel).length;
    if (hasKtls) {
        h.checkEq(await server.value('uringws_connections_by_transport', { transport: 'ktls' }), nk,
            'wss members handed to kernel TLS');
        h.checkEq(await server.value('uringws_connections_by_transport', { transport: 'tls' }), wss - nk,
            'wss members in userspace TLS');
        h.checkEq(await server.value('uringws_ktls_refused_total', {}), wss - nk, 'kTLS hand-offs refused');
        if (o.userspace) {
            const line = /kTLS: this kernel refuses TLS_TX for ([^:]*): those sessions stay in userspace/.exec(server.log);
            h.check(line, () => 'the start-up log does not name the suites the kernel refuses');
            const named = line[1].split(', ').map((x) => x.replace(/ \(\w+\)$/, ''));
            h.checkEq(named.length, wss - nk, `suites named as refused (${line[1]})`);
            const cipher = { aes128gcm: /AES-128-GCM/, aes256gcm: /AES-256-GCM/, chacha20: /ChaCha20/ }[o.userspace];
            h.check(named.every((x) => cipher.test(x)), () => `refused suites named: ${line[1]}`);
        }
    } else {
        h.checkEq(await server.value('uringws_connections_by_transport', { transport: 'ktls' }), 0,
            'no kTLS connection on a kernel without kTLS');
        h.checkEq(await server.value('uringws_connections_by_transport', { transport: 'tls' }), wss,
            'wss members in userspace TLS');
    }
    const ref0 = await server.value('uringws_ktls_tx_ref_bytes_total', {});

    for (let i = 0; i < SIZES.length * ROUNDS; i++) await pub.write(encodeFrame(OP.BINARY, expected[i]));
    await pub.write(Buffer.concat(small.map((p) => encodeFrame(OP.BINARY, p))));
    await h.pollUntil(() => members.every((m) => m.got >= expected.length || m.bad), 60000,
        () => `still missing messages: ${members.filter((m) => m.got < expected.length).map((m) => `${m.what} ${m.got}`).join(', ')}`);
    for (const m of members) {
        h.check(!m.bad, () => `${m.what}: ${m.bad}`);
        h.checkEq(m.got, expected.length, `${m.what}: messages`);
    }

    const ref = (await server.value('uringws_ktls_tx_ref_bytes_total', {})) - ref0;
    const copied = await server.value('uringws_ktls_tx_copied_bytes_total', {});
    // The 64 KiB and 300 KB messages are far over the cork's small-frame size: they can only
    // have gone by reference.
    const large = expected.filter((p) => p.length >= 65536).reduce((s, p) => s + p.length, 0);
    if (hasKtls) {
        h.check(ref >= nk * large, () => `kTLS: ${ref} bytes sent by reference, less than ${nk} x ${large} of large messages`);
        const text = await server.metricsText();
        const dirs = ['tx', 'rx', 'tx_rx'].map((d) => `${d} ${T.labeledValue(text, 'uringws_ktls_offloads_total', { dirs: d }) || 0}`);
        h.checkEq(T.labeledValue(text, 'uringws_ktls_offloads_total', {}), nk, `kTLS hand-offs (${dirs.join(', ')})`);
        h.info(`kTLS: ${nk} members in the kernel (hand-offs ${dirs.join(', ')}), ${wss - nk} in userspace TLS; ` +
            `${ref} bytes by reference, ${copied} copied into the cork`);
    } else {
        h.checkEq(ref, 0, 'kTLS by-reference bytes on a kernel without kTLS');
    }

    // Clean closes: each member's close frame is answered with 1000 and the TCP (and TLS) end.
    for (const m of members) {
        await h.withTimeout(m.client.close(1000), 10000, `${m.what}: close`);
        h.check(m.client.closeFrame && m.client.closeFrame.code === 1000, () => `${m.what}: close reply ${JSON.stringify(m.client.closeFrame)}`);
        h.check(!m.bad, () => `${m.what}: ${m.bad}`);
    }
    await pub.close(1000);
    const errs = T.labeledValue(await server.metricsText(), 'uringws_tls_errors_total', {});
    h.checkEq(errs, 0, 'TLS errors');
    await server.stop();
    const room = !hasKtls ? '--ktls auto without kTLS: 6 userspace TLS'
        : o.userspace ? `--ktls auto, no ${o.userspace} in the kernel: ${nk} kTLS + ${wss - nk} userspace TLS`
            : '--ktls require: 6 kTLS';
    return `${room} + 3 plain members got ` +
        `${expected.length} messages each, byte exact and in order${hasKtls ? `; ${ref} bytes by reference` : ''}`;
}, { timeoutMs: 170000 });
