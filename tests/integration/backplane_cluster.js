// Rooms across nodes through a Redis Cluster made here: six redis-servers on free ports (three
// masters, one replica each, no persistence, --cluster-node-timeout 1000,
// --cluster-require-full-coverage no), joined with
// `redis-cli --cluster create`, stopped at the end. Three uringws nodes (-c 2 each; one with
// TLS and the API) seeded with different masters (one with two seeds).
// - Traffic: 300 clients in 51 rooms spread over the three shards; every member gets every
//   message of its room in one order, per-sender order holding, API publishes included.
// - Accounting: a room with members on one node has one subscriber on its shard
//   (PUBSUB SHARDNUMSUB), on three nodes three, and no shard channel on the other masters.
// - A slot moved (CLUSTER SETSLOT MIGRATING/IMPORTING, MIGRATE, SETSLOT NODE) while a room on
//   another shard carries traffic: that room misses nothing; the moved room's members are
//   closed with 1012 (their subscription was taken); new members there talk across nodes,
//   and an API publish from a node that has no member there reaches them (MOVED followed).
// - A master killed with SIGKILL while a room on another shard carries traffic: that room
//   misses nothing and keeps its members; the dead shard's rooms are closed with 1012, a
//   write into one of them is closed with 1013 and an API publish gets 503 until the replica
//   takes over; then /healthz is 200 again and the room works across nodes.
'use strict';

const crypto = require('node:crypto');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./lib/harness');
const T = require('./lib/tlsutil');
const { Rng, Catalogue, Tracker, trackWebSocket, compareOrders } = require('./lib/messages');
const { Redis, traffic } = require('./lib/backplane');

const KEY = 'cluster-test-key-' + crypto.randomBytes(8).toString('hex');

class Cluster {
    async start(dir, masters = 3, replicas = 1) {
        this.nodes = [];
        for (let i = 0; i < masters * (1 + replicas); i++) {
            const cwd = path.join(dir, `redis${i}`);
            fs.mkdirSync(cwd);
            const bus = await h.freePort();
            this.nodes.push(await new Redis().start(0, { cwd, extra: ['--cluster-enabled', 'yes',
                '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '1000', '--cluster-port', String(bus),
                // the other shards keep serving while one fails over (docs/cluster.md)
                '--cluster-require-full-coverage', 'no'] }));
        }
        execFileSync('redis-cli', ['--cluster', 'create', ...this.nodes.map((n) => `127.0.0.1:${n.port}`),
            '--cluster-replicas', String(replicas), '--cluster-yes'], { stdio: 'ignore' });
        await this.healthy(this.nodes);
        return this;
    }

    live() {
        return this.nodes.filter((n) => !n.dead);
    }

    // Every live node says the cluster is ok and agrees on who serves every slot.
    async healthy(nodes = this.live(), ms = 20000) {
        await h.pollUntil(() => {
            try {
                if (!nodes.every((n) => /cluster_state:ok/.test(n.cli('CLUSTER', 'INFO')))) return false;
                const maps = nodes.map((n) => JSON.stringify(this.slots(n)));
                return maps.every((m) => m === maps[0]);
            } catch (e) {
                return false;
            }
        }, ms, () => 'the Redis Cluster did not settle', 100);
    }

    // [[first, last, port of the master]] from node n.
    slots(n = this.live()[0]) {
        const out = execFileSync('redis-cli', ['-p', String(n.port), '--json', 'CLUSTER', 'SLOTS']).toString();
        return JSON.parse(out).map((r) => [r[0], r[1], r[2][1]]).sort((a, b) => a[0] - b[0]);
    }

    keyslot(key) {
        return Number(this.live()[0].cli('CLUSTER', 'KEYSLOT', key));
    }

    // The redis-server serving room's channel.
    master(room) {
        const s = this.keyslot(`uringws:{${room}}`);
        const port = this.slots().find(([a, b]) => a <= s && s <= b)[2];
        return this.nodes.find((n) => n.port === port);
    }

    masters() {
        return [...new Set(this.slots().map((r) => r[2]))].map((p) => this.nodes.find((n) => n.port === p));
    }

    shardSubs(room) {
        return Number(this.master(room).cli('PUBSUB', 'SHARDNUMSUB', `uringws:{${room}}`).split('\n')[1]);
    }

    kill() {
        for (const n of this.nodes) if (!n.dead) n.proc.kill('SIGKILL');
    }
}

const nodeArgs = (seeds) => ['-c', '2', '-v', '--backplane', `redis-cluster://${seeds.map((s) => `127.0.0.1:${s.port}`).join(',')}`];

// A room none of whose names share a master with `avoid` (rooms), by trying names.
function roomElsewhere(cluster, prefix, avoid) {
    const busy = new Set(avoid.map((r) => cluster.master(r).port));
    for (let i = 0; ; i++) if (!busy.has(cluster.master(`${prefix}${i}`).port)) return `${prefix}${i}`;
}

// Members of `room` on every node, one of them sending `n` messages 10 ms apart; resolves
// when every member has them all, checked for order. The returned object's `done` is that.
async function steady(nodes, room, n, rng) {
    const cat = new Catalogue(room);
    const members = [];
    for (let i = 0; i < 6; i++) members.push({ label: `${room}#${i}@${i % 3}`, ws: await h.connectWs(nodes[i % 3].url(`/${room}`)) });
    await h.sleep(300);
    const sender = members[0];
    const sends = [];
    for (let k = 0; k < n; k++) {
        let bytes;
        do bytes = Buffer.from(rng.text(rng.int(1, 300)), 'utf8');
        while (!cat.add(sender.label, false, bytes));
        sends.push(bytes);
    }
    const trackers = members.map((m) => {
        const t = new Tracker(m.label, cat);
        trackWebSocket(m.ws, t);
        return t;
    });
    const done = (async () => {
        for (const b of sends) {
            sender.ws.send(b.toString('utf8'));
            await h.sleep(10);
        }
        await h.withTimeout(Promise.all(trackers.map((t) => t.completion())), 20000,
            () => `${room}: ${trackers.filter((t) => !t.complete).map((t) => `${t.label} ${t.count}/${t.expected}`).join(', ')}`);
        const res = trackers.map((t) => t.result());
        for (const r of res) h.check(r.errors.length === 0, r.errors.join('; '));
        h.check(!compareOrders(cat, res), `${room}: ${compareOrders(cat, res)}`);
        h.check(members.every((m) => m.ws.readyState === 1), `${room}: every member is still connected`);
        for (const m of members) m.ws.close();
    })();
    return { done };
}

// Two new members of room on nodes a and b: a message from a's reaches b's.
async function talks(a, b, room, what) {
    const x = await h.connectWs(a.url(`/${room}`));
    const y = await h.connectWs(b.url(`/${room}`));
    await h.sleep(300);
    const got = new Promise((res) => y.addEventListener('message', (ev) => res(ev.data), { once: true }));
    x.send(`hello ${room}`);
    h.checkEq(await h.withTimeout(got, 5000, what), `hello ${room}`, what);
    return [x, y];
}

async function accounting(nodes, cluster) {
    const solo = await h.connectWs(nodes[0].url('/solo'));
    await h.sleep(300);
    h.checkEq(cluster.shardSubs('solo'), 1, 'shard subscribers of a room with members on one node');
    h.checkEq(cluster.shardSubs('big'), 3, 'shard subscribers of a room on three nodes');
    const home = cluster.master('solo');
    for (const m of cluster.masters().filter((n) => n !== home)) {
        h.check(!m.cli('PUBSUB', 'SHARDCHANNELS').split('\n').includes('uringws:{solo}'), 'another shard has the channel');
    }
    solo.close();
    await h.pollUntil(() => cluster.shardSubs('solo') === 0, 6000, () => 'the last member left: the node unsubscribes after its linger');
}

// Moves room's slot from its master to another one, the way redis-cli --cluster reshard does.
function moveSlot(cluster, room) {
    const slot = cluster.keyslot(`uringws:{${room}}`);
    const from = cluster.master(room);
    const to = cluster.masters().find((n) => n !== from);
    const id = (n) => n.cli('CLUSTER', 'MYID');
    to.cli('CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', id(from));
    from.cli('CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', id(to));
    for (;;) {
        const keys = from.cli('CLUSTER', 'GETKEYSINSLOT', String(slot), '100').split('\n').filter(Boolean);
        if (!keys.length) break;
        from.cli('MIGRATE', '127.0.0.1', String(to.port), '', '0', '5000', 'KEYS', ...keys);
    }
    for (const m of cluster.masters()) m.cli('CLUSTER', 'SETSLOT', String(slot), 'NODE', id(to));
    return to;
}

async function slotMove(nodes, cluster, rng) {
    const moved = 'moving';
    const calm = roomElsewhere(cluster, 'calm', [moved]);
    const victims = [await h.connectWs(nodes[1].url(`/${moved}`)), await h.connectWs(nodes[2].url(`/${moved}`))];
    await h.sleep(300);
    const closes = victims.map((ws) => h.closed(ws));
    const flow = await steady(nodes, calm, 150, rng);
    await h.sleep(300);
    const to = moveSlot(cluster, moved);
    for (const ev of await h.withTimeout(Promise.all(closes), 10000, 'members of the moved room')) {
        h.checkEq(ev.code, 1012, 'close code of a member whose slot moved');
    }
    await flow.done;
    await cluster.healthy();
    h.checkEq(cluster.master(moved), to, 'the room\'s new master');
    const pair = await talks(nodes[1], nodes[2], moved, 'a message across nodes in the moved room');
    h.checkEq(cluster.shardSubs(moved), 2, 'shard subscribers on the new master');
    // Node 0 has no member there and may still map the slot to the old master.
    const got = new Promise((res) => pair[1].addEventListener('message', (ev) => res(ev.data), { once: true }));
    const r = await fetch(`http://127.0.0.1:${nodes[0].port}/api/publish/${moved}`, { method: 'POST', body: 'via the API',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'text/plain' } });
    h.checkEq(r.status, 200, 'API publish into the moved room');
    h.checkEq(await h.withTimeout(got, 5000, 'the API publish after the move'), 'via the API', 'API publish after the move');
    for (const ws of pair) ws.close();
}

async function failover(nodes, cluster, rng) {
    const doomed = 'doomed';
    const calm = roomElsewhere(cluster, 'still', [doomed]);
    const victim = cluster.master(doomed);
    const members = [await h.connectWs(nodes[0].url(`/${doomed}`)), await h.connectWs(nodes[1].url(`/${doomed}`)),
        await h.connectWs(nodes[2].url(`/${doomed}`))];
    await h.sleep(300);
    const closes = members.map((ws) => h.closed(ws));
    const flow = await steady(nodes, calm, 300, rng);
    await h.sleep(300);
    victim.dead = true;
    await victim.kill();
    for (const ev of await h.withTimeout(Promise.all(closes), 10000, 'members of the dead shard\'s room')) {
        h.checkEq(ev.code, 1012, 'close code of a member whose master died');
    }
    const hz = await h.httpRequest(nodes[0].port, '/healthz');
    h.checkEq(hz.status, 503, '/healthz while a master is down');
    const late = await h.connectWs(nodes[0].url(`/${doomed}`));
    const lc = h.closed(late);
    late.send('while the master is down');
    h.checkEq((await h.withTimeout(lc, 5000, 'a write while the master is down')).code, 1013, 'a write into the dead shard');
    const r = await fetch(`http://127.0.0.1:${nodes[0].port}/api/publish/${doomed}`, { method: 'POST', body: 'x',
        headers: { authorization: `Bearer ${KEY}` } });
    h.checkEq(r.status, 503, 'API publish into the dead shard');
    await flow.done; // the other shards' rooms went on meanwhile
    await cluster.healthy(cluster.live(), 30000);
    h.check(cluster.master(doomed) !== victim, 'a replica took over');
    for (const n of nodes) {
        await h.pollUntil(async () => (await h.httpRequest(n.port, '/healthz')).status === 200, 20000,
            () => 'a node came back after the failover');
    }
    for (const ws of await talks(nodes[2], nodes[0], doomed, 'a message across nodes after the failover')) ws.close();
    const m = (await nodes[1].metrics()).values;
    h.check(m.get('uringws_backplane_gaps_total') > 0, 'gaps counted');
    h.check(m.get('uringws_backplane_reconnects_total') > 0, 'lost links counted');
}

h.run('backplane_cluster', async () => {
    const o = h.parseOptions();
    const rng = new Rng(o.seed);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uringws-cluster-'));
    const cluster = new Cluster();
    try {
        await cluster.start(dir);
        const m = cluster.masters();
        h.checkEq(m.length, 3, 'masters in the cluster');
        fs.writeFileSync(path.join(dir, 'keys'), `${KEY}\n`);
        const api = ['--api-key-file', path.join(dir, 'keys')];
        const tlsNode = await T.TlsServer.create(o.server, [...nodeArgs([m[0]]), ...api], { certs: T.makeCerts() });
        const nodes = [await tlsNode.start(), await new h.Server(o.server, [...nodeArgs([m[1]]), ...api]).start(),
            await new h.Server(o.server, nodeArgs([m[2], m[0]])).start()];
        const rooms = ['big', ...Array.from({ length: 50 }, (_, i) => `r/${i}`)];
        h.checkEq(new Set(rooms.map((r) => cluster.master(r).port)).size, 3, 'shards the 51 rooms spread over');
        const clients = await traffic(nodes, tlsNode, rng, KEY);
        await accounting(nodes, cluster);
        await slotMove(nodes, cluster, rng);
        await failover(nodes, cluster, rng);
        for (const c of clients) c.ws.close();
        for (const n of nodes) await n.stop();
        for (const n of nodes) h.check(!/[A-Za-z0-9]+-key-[0-9a-f]{16}/.test(n.log), 'the API key in a log');
    } finally {
        cluster.kill();
        fs.rmSync(dir, { recursive: true, force: true });
    }
    return '3 nodes on a 3-master cluster: 300 clients in 51 rooms over 3 shards, SHARDNUMSUB accounting, a slot moved and a master failed over under traffic';
}, { timeoutMs: 150000 });
