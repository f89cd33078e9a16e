// What the backplane tests share (backplane.js: one Redis; backplane_cluster.js: a Redis
// Cluster): a redis-server of their own on a free port (no persistence, stopped by the
// test), and the traffic check: 300 clients over three nodes, 150 in one room and 150 in 50
// others (wss members on the TLS node), members and the HTTP API publishing at once; every
// member gets every message of its room, byte exact, in one order, per-sender order holding.
'use strict';

const { spawn, execFileSync } = require('node:child_process');
const h = require('./harness');
const T = require('./tlsutil');
const { Catalogue, Tracker, trackWebSocket, compareOrders } = require('./messages');

class Redis {
    // extra: more redis-server options (a cluster node's); cwd: where it may write files.
    async start(port, { extra = [], cwd } = {}) {
        this.port = port || (await h.freePort());
        this.args = { extra, cwd };
        this.proc = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '',
            '--appendonly', 'no', '--protected-mode', 'no', ...extra], { stdio: ['ignore', 'pipe', 'pipe'], cwd });
        this.proc.on('error', (e) => h.abort(`redis-server: ${e.message} (scripts/deps.sh --test installs it)`));
        this.exited = new Promise((r) => this.proc.on('exit', r));
        await h.pollUntil(() => {
            try {
                return execFileSync('redis-cli', ['-p', String(this.port), 'PING']).toString().trim() === 'PONG';
            } catch (e) {
                return false;
            }
        }, 10000, () => 'redis-server did not answer PING', 50);
        return this;
    }

    cli(...args) {
        return execFileSync('redis-cli', ['-p', String(this.port), ...args]).toString().trim();
    }

    async kill() {
        this.proc.kill('SIGKILL');
        await this.exited;
    }
}

// Sends the plan's messages (members, and `apiPublish` for the API's), then checks every
// member's deliveries. Returns the clients ({label, room, ws}).
async function traffic(nodes, tlsNode, rng, key) {
    const rooms = ['big'];
    for (let i = 0; i < 50; i++) rooms.push(`r/${i}`);
    const cats = Object.fromEntries(rooms.map((r) => [r, new Catalogue(r)]));
    const clients = [];
    for (let i = 0; i < 300; i++) {
        const room = i < 150 ? 'big' : rooms[1 + ((i - 150) % 50)];
        const n = nodes[i % 3];
        const tls = n === tlsNode && i % 6 === 0;
        const url = `/${room}`;
        const ws = tls ? await T.connectWss(n.wssUrl(url), { ca: n.certs.ca }) : await h.connectWs(n.url(url));
        clients.push({ label: `c${i}${tls ? 's' : ''}@${nodes.indexOf(n)}`, room, ws });
    }
    await h.sleep(300); // subscriptions confirmed
    const plan = [];
    const add = (room, sender, send) => {
        for (;;) {
            const binary = rng.chance(0.3);
            const bytes = binary ? rng.bytes(rng.int(1, 3000)) : Buffer.from(rng.text(rng.int(0, 2000)), 'utf8');
            if (cats[room].add(sender, binary, bytes)) return plan.push({ room, binary, bytes, send });
        }
    };
    for (let s = 0; s < 6; s++) for (let k = 0; k < 20; k++) add('big', `m${s}`, clients[s]);
    for (let k = 0; k < 20; k++) add('big', 'api', null);
    for (let i = 1; i <= 50; i++) for (let k = 0; k < 5; k++) add(rooms[i], 'm', clients.find((c) => c.room === rooms[i]));
    const trackers = clients.map((c) => {
        const t = new Tracker(c.label, cats[c.room], { others: Object.values(cats).filter((x) => x !== cats[c.room]) });
        trackWebSocket(c.ws, t);
        return { t, c };
    });
    const api = plan.filter((p) => !p.send);
    const members = plan.filter((p) => p.send);
    await Promise.all([
        (async () => {
            for (const m of members) {
                m.send.ws.send(m.binary ? m.bytes : m.bytes.toString('utf8'));
                if (rng.chance(0.1)) await h.sleep(1);
            }
        })(),
        (async () => {
            for (const m of api) {
                const r = await fetch(`http://127.0.0.1:${tlsNode.port}/api/publish/big`, { method: 'POST', body: m.bytes,
                    headers: { authorization: `Bearer ${key}`, 'content-type': m.binary ? 'application/octet-stream' : 'text/plain' } });
                h.checkEq(r.status, 200, 'API publish through the backplane');
                await r.arrayBuffer();
            }
        })(),
    ]);
    await h.withTimeout(Promise.all(trackers.map(({ t }) => t.completion())), 30000,
        () => `deliveries: ${trackers.filter(({ t }) => !t.complete).slice(0, 5).map(({ t }) => `${t.label} ${t.count}/${t.expected}`).join(', ')}`);
    for (const room of rooms) {
        const res = trackers.filter(({ c }) => c.room === room).map(({ t }) => t.result());
        for (const r of res) h.check(r.errors.length === 0, r.errors.join('; '));
        const diff = compareOrders(cats[room], res);
        h.check(!diff, `room ${room}: ${diff}`);
    }
    return clients;
}

module.exports = { Redis, traffic };
