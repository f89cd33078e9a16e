// Connection tokens, minted by an independent implementation (npm jose), against a server
// per algorithm (HS256, RS256, ES256, EdDSA) run with --token-key --require-token
// --client-publish token: a valid token opens exactly the rooms its `rooms` claim names
// (exact and prefix/* patterns), 403 for another room; every refusal is a 401 before any 101
// (missing, bad signature, alg none, algorithm confusion, expired, not yet valid, no exp,
// wrong aud or iss, malformed base64 and JSON), counted by reason in /metrics; a token over
// the head limit is 431. A member without the `publish` claim is closed with 1008 when it
// writes, one with it reaches the room; a connection is closed with 1008 "token expired" at
// exp; POST /api/disconnect closes every connection of a subject on both cores with the
// stated code. No token ever appears in the server's log.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const h = require('./lib/harness');
const { handshakeRequest } = require('./lib/rawws');

const API_KEY = 'tokens-test-api-key-' + crypto.randomBytes(8).toString('hex');
const ISS = 'https://issuer.test';
const AUD = 'uringws-test';

// The status of an upgrade to target (the status line of the server's answer).
function upgradeStatus(port, target, what) {
    return new Promise((resolve, reject) => {
        const s = net.connect({ host: '127.0.0.1', port });
        let got = Buffer.alloc(0);
        const timer = setTimeout(() => {
            s.destroy();
            reject(new h.TestFailure(`${what}: no answer to the upgrade in 5 s`));
        }, 5000);
        s.on('connect', () => s.write(handshakeRequest(target, crypto.randomBytes(16).toString('base64'))));
        s.on('data', (c) => {
            got = Buffer.concat([got, c]);
            const end = got.indexOf('\r\n');
            if (end < 0) return;
            clearTimeout(timer);
            s.destroy();
            const m = /^HTTP\/1\.1 (\d{3})/.exec(got.subarray(0, end).toString('latin1'));
            if (!m) reject(new h.TestFailure(`${what}: bad status line ${JSON.stringify(got.toString('latin1').slice(0, 80))}`));
            else resolve(Number(m[1]));
        });
        s.on('error', (e) => { clearTimeout(timer); reject(new h.TestFailure(`${what}: ${e.message}`)); });
    });
}

const b64u = (x) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url');

// One key pair (or secret) per algorithm: the file the server reads and what jose signs with.
function makeKeys(dir) {
    const keys = {};
    // A text secret with a newline, as `openssl rand -hex 32 > key` writes it: the newline is
    // not part of the secret.
    const secret = Buffer.from(crypto.randomBytes(32).toString('hex'));
    fs.writeFileSync(path.join(dir, 'hs256.key'), Buffer.concat([secret, Buffer.from('\n')]));
    keys.HS256 = { file: path.join(dir, 'hs256.key'), sign: secret };
    const pairs = { RS256: ['rsa', { modulusLength: 2048 }], ES256: ['ec', { namedCurve: 'P-256' }], EdDSA: ['ed25519', {}] };
    for (const [alg, [type, opts]] of Object.entries(pairs)) {
        const { publicKey, privateKey } = crypto.generateKeyPairSync(type, opts);
        const pem = publicKey.export({ type: 'spki', format: 'pem' });
        const file = path.join(dir, `${alg.toLowerCase()}.pem`);
        fs.writeFileSync(file, pem);
        keys[alg] = { file, sign: privateKey, pem };
    }
    return keys;
}

async function mint(jose, alg, key, claims, { exp = '5m', iat = true } = {}) {
    let j = new jose.SignJWT(claims).setProtectedHeader({ alg, typ: 'JWT' });
    if (iat) j = j.setIssuedAt();
    if (exp !== null) j = j.setExpirationTime(exp);
    return j.sign(key);
}

// Every refusal one server gets: [what, token, expected status, metric reason].
async function refusals(jose, alg, keys) {
    const k = keys[alg].sign;
    const base = { rooms: ['chat'], iss: ISS, aud: AUD };
    const good = await mint(jose, alg, k, base);
    const [hd, pl, sig] = good.split('.');
    const flipped = sig.slice(0, -2) + (sig.at(-2) === 'A' ? 'B' : 'A') + sig.at(-1);
    const now = Math.floor(Date.now() / 1000);
    const cases = [
        ['no token', null, 401, 'missing'],
        ['bad signature', `${hd}.${pl}.${flipped}`, 401, 'signature'],
        ['payload changed', `${hd}.${b64u({ ...base, rooms: ['*'], exp: now + 300 })}.${sig}`, 401, 'signature'],
        ['alg none', `${b64u({ alg: 'none', typ: 'JWT' })}.${pl}.`, 401, 'algorithm'],
        ['expired', await mint(jose, alg, k, base, { exp: now - 60 }), 401, 'expired'],
        ['not yet valid', await new jose.SignJWT(base).setProtectedHeader({ alg }).setNotBefore(now + 600)
            .setExpirationTime(now + 900).sign(k), 401, 'not_yet_valid'],
        ['no exp', await mint(jose, alg, k, base, { exp: null }), 401, 'no_exp'],
        ['wrong aud', await mint(jose, alg, k, { ...base, aud: 'someone-else' }), 401, 'audience'],
        ['wrong iss', await mint(jose, alg, k, { ...base, iss: 'https://evil.test' }), 401, 'issuer'],
        ['malformed base64 header', `${hd}!!.${pl}.${sig}`, 401, 'malformed'],
        // Signed properly, so that the payload is parsed (a bad signature is refused first).
        ['malformed JSON payload', await new jose.CompactSign(new TextEncoder().encode('{"rooms": ['))
            .setProtectedHeader({ alg }).sign(k), 401, 'malformed'],
        ['payload not an object', await new jose.CompactSign(new TextEncoder().encode('[1, 2]'))
            .setProtectedHeader({ alg }).sign(k), 401, 'malformed'],
        ['two parts', `${hd}.${pl}`, 401, 'malformed'],
        ['room outside the claim', good, 403, 'room', '/other'],
    ];
    // Algorithm confusion: the server's public key used as an HS256 secret.
    if (keys[alg].pem) {
        const hs = await mint(jose, 'HS256', new TextEncoder().encode(keys[alg].pem), base);
        cases.push(['HS256 signed with the public key', hs, 401, 'algorithm']);
    } else {
        cases.push(['RS256 token for an HS256 key', await mint(jose, 'RS256', keys.RS256.sign, base), 401, 'algorithm']);
    }
    return cases;
}

async function checkAlg(jose, o, alg, keys, dir) {
    const server = await new h.Server(o.server, ['-c', '2', '-v', '--token-key', keys[alg].file, '--require-token',
        '--client-publish', 'token', '--token-issuer', ISS, '--token-audience', AUD, '--token-leeway', '0',
        '--api-key-file', path.join(dir, 'api.keys')]).start();
    const tokens = [];
    const cases = await refusals(jose, alg, keys);
    const want = {};
    for (const [what, tok, status, reason, room = '/chat'] of cases) {
        if (tok) tokens.push(tok);
        const target = tok ? `${room}?token=${encodeURIComponent(tok)}` : room;
        h.checkEq(await upgradeStatus(server.port, target, `${alg} ${what}`), status, `${alg} ${what}: status`);
        want[reason] = (want[reason] || 0) + 1;
    }
    const text = (await h.httpRequest(server.port, '/metrics')).body.toString('utf8');
    for (const [reason, n] of Object.entries(want)) {
        const m = new RegExp(`^uringws_token_refusals_total\\{reason="${reason}"\\} (\\d+)$`, 'm').exec(text);
        h.check(m && Number(m[1]) === n, `${alg}: token_refusals_total{reason="${reason}"} is ${m && m[1]}, expected ${n}`);
    }
    // A token longer than the head limit: 431, like any other oversize head.
    const huge = await mint(jose, alg, keys[alg].sign, { rooms: ['chat'], iss: ISS, aud: AUD, pad: 'x'.repeat(9000) });
    h.checkEq(await upgradeStatus(server.port, `/chat?token=${huge}`, `${alg} huge token`), 431, `${alg} token over the head limit`);

    // Granted rooms by pattern; a writer and a reader.
    const claims = { iss: ISS, aud: AUD, rooms: ['chat', 'news/*'], publish: ['chat'] };
    const writer = await mint(jose, alg, keys[alg].sign, { ...claims, sub: 'writer' });
    const reader = await mint(jose, alg, keys[alg].sign, { iss: ISS, aud: AUD, rooms: ['chat', 'news/*'], sub: 'reader' });
    tokens.push(writer, reader);
    for (const room of ['/news/eu', '/news/eu/fr']) {
        const ws = await h.connectWs(server.url(`${room}?token=${reader}`));
        ws.close();
    }
    h.checkEq(await upgradeStatus(server.port, `/newsroom?token=${reader}`, 'prefix pattern'), 403, `${alg}: news/* does not grant newsroom`);
    const r = await h.connectWs(server.url(`/chat?token=${reader}`));
    const w = await h.connectWs(server.url(`/chat?token=${writer}`));
    const got = new Promise((resolve) => r.addEventListener('message', (ev) => resolve(ev.data), { once: true }));
    w.send(`hello from ${alg}`);
    h.checkEq(await h.withTimeout(got, 5000, 'the writer\'s message at the reader'), `hello from ${alg}`, `${alg}: message`);
    const rc = h.closed(r);
    r.send('a reader writes');
    const ev = await h.withTimeout(rc, 5000, 'close of a member that may not publish');
    h.checkEq(ev.code, 1008, `${alg}: close code of a member writing without the publish claim`);
    h.checkEq(ev.reason, 'publishing not allowed', `${alg}: close reason`);
    w.close();

    // exp: closed with 1008 "token expired" when it passes (leeway 0 here).
    const short = await mint(jose, alg, keys[alg].sign, { ...claims, sub: 'short' }, { exp: Math.floor(Date.now() / 1000) + 2 });
    tokens.push(short);
    const s = await h.connectWs(server.url(`/chat?token=${short}`));
    const t0 = Date.now();
    const se = await h.withTimeout(h.closed(s), 6000, 'close at the token\'s exp');
    h.checkEq(se.code, 1008, `${alg}: close code at exp`);
    h.checkEq(se.reason, 'token expired', `${alg}: close reason at exp`);
    h.check(Date.now() - t0 < 4000, `${alg}: closed ${Date.now() - t0} ms after the open, exp was 2 s away`);
    await server.stop();
    return { server, tokens };
}

// POST /api/disconnect: every connection of the subject, on both cores, with the code.
async function disconnect(jose, o, keys, dir) {
    const server = await new h.Server(o.server, ['-c', '2', '--token-key', keys.EdDSA.file,
        '--api-key-file', path.join(dir, 'api.keys')]).start();
    const tok = (sub) => mint(jose, 'EdDSA', keys.EdDSA.sign, { rooms: ['*'], sub });
    const u1 = await tok('u1');
    const u2 = await tok('u2');
    const victims = [];
    for (let i = 0; i < 8; i++) victims.push(await h.connectWs(server.url(`/room${i % 3}?token=${u1}`)));
    const other = await h.connectWs(server.url(`/room0?token=${u2}`));
    const anon = await h.connectWs(server.url('/room0'));
    const text = (await h.httpRequest(server.port, '/metrics')).body.toString('utf8');
    const perCore = [...text.matchAll(/^uringws_core_connections\{core="(\d+)"\} (\d+)$/gm)].map((m) => Number(m[2]));
    h.check(perCore.length === 2 && perCore.every((n) => n > 0), `connections on both cores: ${perCore}`);
    const closes = victims.map((ws) => h.closed(ws));
    const res = await fetch(`http://127.0.0.1:${server.port}/api/disconnect`, {
        method: 'POST', headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ sub: 'u1', code: 4001, reason: 'banned' }),
    });
    h.checkEq(res.status, 200, 'POST /api/disconnect status');
    h.checkEq(JSON.stringify(await res.json()), '{"sub":"u1","code":4001}', 'POST /api/disconnect body');
    for (const ev of await h.withTimeout(Promise.all(closes), 5000, 'closes of the subject\'s connections')) {
        h.checkEq(ev.code, 4001, 'close code of a disconnected subject');
        h.checkEq(ev.reason, 'banned', 'close reason of a disconnected subject');
    }
    await h.sleep(300);
    h.checkEq(other.readyState, 1, 'another subject stays open');
    h.checkEq(anon.readyState, 1, 'a connection without a token stays open');
    const bad = await fetch(`http://127.0.0.1:${server.port}/api/disconnect`, {
        method: 'POST', headers: { authorization: `Bearer ${API_KEY}` }, body: JSON.stringify({ sub: 'u1', code: 1005 }),
    });
    h.checkEq(bad.status, 400, 'disconnect with a code a server may not send');
    other.close();
    anon.close();
    await server.stop();
    return { server, tokens: [u1, u2] };
}

h.run('tokens', async () => {
    const o = h.parseOptions();
    const jose = await import('jose');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uringws-tokens-'));
    fs.writeFileSync(path.join(dir, 'api.keys'), `# test key\n${API_KEY}\n`);
    const keys = makeKeys(dir);
    const runs = [];
    for (const alg of ['HS256', 'RS256', 'ES256', 'EdDSA']) runs.push(await checkAlg(jose, o, alg, keys, dir));
    runs.push(await disconnect(jose, o, keys, dir));
    // No token, no signature and no API key in any log line.
    for (const { server, tokens } of runs) {
        for (const t of tokens) {
            const sig = t.split('.')[2];
            h.check(!server.log.includes(t) && !(sig && sig.length > 16 && server.log.includes(sig)),
                'a token appears in the server log');
        }
        h.check(!server.log.includes(API_KEY), 'the API key appears in the server log');
    }
    fs.rmSync(dir, { recursive: true, force: true });
    return '4 algorithms, every refusal, rooms by pattern, publish claim, exp, disconnect';
});
