// Rooms across nodes through one Redis (started here: redis-server on a free port, no
// persistence, stopped at the end). Three uringws nodes (-c 2 each; one with a TLS listener
// and the API): 300 clients, 150 in one room spread over the nodes and 150 in 50 other rooms
// (wss members included); members and the HTTP API publish at once. A number skipped in a
// room's sequence closes that room's members with 1012. Every member of a room
// gets every message of it, byte exact, in one order, per-sender order holding. Subscription
// accounting: a room with members on one node has one subscriber in Redis, one on all three
// nodes three (PUBSUB NUMSUB). A node killed with SIGKILL: the others miss nothing. Redis
// killed and restarted: members are closed with 1012 (the gap policy) and it is counted,
// /healthz says 503 while it is down, a write then is closed with 1013 and an API publish gets
// 503, and after the restart the nodes are back (healthz 200) and rooms work again.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./lib/harness');
const T = require('./lib/tlsutil');
const { Rng, Catalogue, Tracker, trackWebSocket, compareOrders } = require('./lib/messages');
const { Redis, traffic } = require('./lib/backplane');

const KEY = 'backplane-test-key-' + crypto.randomBytes(8).toString('hex');

const node = (o, redis, extra = []) => new h.Server(o.server, ['-c', '2', '-v', '--backplane', `redis://127.0.0.1:${redis.port}`, ...extra]);

async function accounting(nodes, redis) {
    const solo = await h.connectWs(nodes[0].url('/solo'));
    await h.sleep(300);
    h.checkEq(redis.cli('PUBSUB', 'NUMSUB', 'uringws:solo').split('\n')[1], '1', 'subscribers of a room with members on one node');
    h.checkEq(redis.cli('PUBSUB', 'NUMSUB', 'uringws:big').split('\n')[1], '3', 'subscribers of a room on three nodes');
    h.checkEq(redis.cli('PUBSUB', 'NUMSUB', 'uringws:nobody').split('\n')[1], '0', 'subscribers of a room nobody is in');
    solo.close();
    await h.pollUntil(() => redis.cli('PUBSUB', 'NUMSUB', 'uringws:solo').split('\n')[1] === '0', 6000,
        () => 'the last member left: the node unsubscribes after its linger');
}

// A number skipped in a room's sequence (published into its channel by hand): the room's
// members, on every node, are closed with 1012; other rooms are untouched.
async function seqGap(nodes, redis, clients) {
    const victims = clients.filter((c) => c.room === 'r/0');
    const closes = victims.map((c) => h.closed(c.ws));
    const before = (await nodes[0].metrics()).values.get('uringws_backplane_gaps_total');
    const seq = Number(redis.cli('GET', 'uringws:r/0:seq'));
    h.checkEq(seq, 5, 'the room\'s counter in Redis after its 5 messages');
    redis.cli('PUBLISH', 'uringws:r/0', `${seq + 3} tskipped two`);
    for (const ev of await h.withTimeout(Promise.all(closes), 5000, 'members of a room with a gap')) {
        h.checkEq(ev.code, 1012, 'close code after a sequence gap');
    }
    for (const c of victims) c.gone = true;
    h.check((await nodes[0].metrics()).values.get('uringws_backplane_gaps_total') > before, 'the gap is counted');
    h.check(clients.filter((c) => c.room === 'r/1').every((c) => c.ws.readyState === 1), 'another room is untouched');
}

// SIGKILL one node: the members of the other two keep getting everything, in one order.
async function killNode(nodes, clients, rng) {
    const victim = nodes[2];
    victim.stopping = true;
    victim.proc.kill('SIGKILL');
    await victim.exited;
    const live = clients.filter((c) => c.room === 'big' && !c.label.endsWith('@2'));
    const cat = new Catalogue('big after the kill');
    const senders = [live[0], live[1]];
    const sends = [];
    for (let k = 0; k < 30; k++) {
        const s = senders[k % 2];
        let bytes;
        do bytes = Buffer.from(rng.text(rng.int(1, 500)), 'utf8');
        while (!cat.add(s.label, false, bytes));
        sends.push([s, bytes]);
    }
    // The trackers expect what the catalogue holds when they are made: all of it.
    const trackers = live.map((c) => {
        const t = new Tracker(c.label, cat);
        c.ws.addEventListener('message', () => {}); // the old tracker ignores the rest
        trackWebSocket(c.ws, t);
        return t;
    });
    for (const [s, b] of sends) s.ws.send(b.toString('utf8'));
    await h.withTimeout(Promise.all(trackers.map((t) => t.completion())), 15000,
        () => `after the kill: ${trackers.filter((t) => !t.complete).slice(0, 3).map((t) => `${t.label} ${t.count}/${t.expected}`).join(', ')}`);
    const res = trackers.map((t) => t.result());
    for (const r of res) h.check(r.errors.length === 0, r.errors.join('; '));
    h.check(!compareOrders(cat, res), compareOrders(cat, res));
}

async function redisRestart(nodes, redis, clients) {
    const live = clients.filter((c) => !c.label.endsWith('@2') && !c.gone);
    const closes = live.map((c) => h.closed(c.ws));
    await redis.kill();
    for (const ev of await h.withTimeout(Promise.all(closes), 10000, 'members closed when Redis went away')) {
        h.checkEq(ev.code, 1012, 'close code of a member whose room may have missed messages');
    }
    const hz = await h.httpRequest(nodes[0].port, '/healthz');
    h.checkEq(hz.status, 503, '/healthz while Redis is down');
    h.checkEq(hz.body.toString(), 'backplane down\n', '/healthz body while Redis is down');
    const m = (await nodes[0].metrics()).values;
    h.check(m.get('uringws_backplane_gaps_total') > 0, 'gaps counted');
    h.checkEq(m.get('uringws_backplane_up'), 0, 'uringws_backplane_up while Redis is down');
    const late = await h.connectWs(nodes[0].url('/big'));
    const lc = h.closed(late);
    late.send('while Redis is down');
    h.checkEq((await h.withTimeout(lc, 5000, 'a write while down')).code, 1013, 'a write while Redis is down');
    const r = await fetch(`http://127.0.0.1:${nodes[0].port}/api/publish/big`, { method: 'POST', body: 'x',
        headers: { authorization: `Bearer ${KEY}` } });
    h.checkEq(r.status, 503, 'API publish while Redis is down');
    await redis.start(redis.port);
    for (const n of nodes.slice(0, 2)) {
        await h.pollUntil(async () => (await h.httpRequest(n.port, '/healthz')).status === 200, 15000,
            () => 'a node came back after Redis restarted');
    }
    const a = await h.connectWs(nodes[0].url('/again'));
    const b = await h.connectWs(nodes[1].url('/again'));
    await h.sleep(300);
    const got = new Promise((res) => b.addEventListener('message', (ev) => res(ev.data), { once: true }));
    a.send('back');
    h.checkEq(await h.withTimeout(got, 5000, 'a message across nodes after the restart'), 'back', 'after the restart');
    a.close();
    b.close();
}

h.run('backplane', async () => {
    const o = h.parseOptions();
    const rng = new Rng(o.seed);
    const redis = await new Redis().start();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uringws-bp-'));
    fs.writeFileSync(path.join(dir, 'keys'), `${KEY}\n`);
    const certs = T.makeCerts();
    const tlsNode = await T.TlsServer.create(o.server, ['-c', '2', '-v', '--backplane', `redis://127.0.0.1:${redis.port}`,
        '--api-key-file', path.join(dir, 'keys')], { certs });
    const nodes = [await tlsNode.start(), await node(o, redis, ['--api-key-file', path.join(dir, 'keys')]).start(), await node(o, redis).start()];
    try {
        const clients = await traffic(nodes, tlsNode, rng, KEY);
        await accounting(nodes, redis);
        await seqGap(nodes, redis, clients);
        await killNode(nodes, clients, rng);
        await redisRestart(nodes, redis, clients);
        for (const c of clients) c.ws.close();
        await nodes[0].stop();
        await nodes[1].stop();
    } finally {
        redis.proc.kill('SIGKILL');
        fs.rmSync(dir, { recursive: true, force: true });
    }
    for (const n of nodes.slice(0, 2)) h.check(!/[A-Za-z0-9]+-key-[0-9a-f]{16}/.test(n.log), 'the API key in a log');
    return '3 nodes, 300 clients in 51 rooms, API publishes, NUMSUB accounting, node SIGKILL, Redis restart';
});
