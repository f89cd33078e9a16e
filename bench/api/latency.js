// Fan-out latency from a publish to N subscribers, publishing through the HTTP API and through
// a WebSocket member, in one run against one server (bench/api/run.sh); with --ports the
// subscribers are spread over several nodes (bench/cluster/run.sh) and without --key only
// the member publishes. Each message carries
// its send time (this process's monotonic clock); a subscriber records arrival - send. The
// publisher sends open loop at --rate messages/s for --seconds each way; the subscribers and
// both publishers live in this one process, so its own event loop is part of every number,
// for both ways alike: compare the two, not either with bench/fanout's numbers.
'use strict';

const { parseArgs } = require('node:util');
const path = require('node:path');
const { WebSocket } = require(path.join(__dirname, '../../tests/integration/node_modules/undici'));

const { values: o } = parseArgs({ options: {
    port: { type: 'string' }, key: { type: 'string' }, subs: { type: 'string', default: '1000' },
    ports: { type: 'string' }, label: { type: 'string', default: '' },
    rate: { type: 'string', default: '10' }, seconds: { type: 'string', default: '10' },
    size: { type: 'string', default: '128' },
} });
const port = Number(o.port);
// Subscribers round robin over these ports (nodes); the publisher is on the first.
const ports = o.ports ? o.ports.split(',').map(Number) : [port];
const subs = Number(o.subs);
const rate = Number(o.rate);
const seconds = Number(o.seconds);
const size = Number(o.size);
const now = () => Number(process.hrtime.bigint() / 1000n); // us

function open(url) {
    return new Promise((resolve, reject) => {
        const ws = new WebSocket(url);
        ws.addEventListener('open', () => resolve(ws), { once: true });
        ws.addEventListener('error', () => reject(new Error(`cannot open ${url}`)), { once: true });
    });
}

function quantile(v, q) {
    if (!v.length) return NaN;
    const s = Float64Array.from(v).sort();
    return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

async function phase(name, members, send) {
    const lat = [];
    let expected = 0;
    const onMsg = (ev) => {
        const t = Number(String(ev.data).slice(0, 16));
        lat.push(now() - t);
    };
    for (const ws of members) ws.addEventListener('message', onMsg);
    const start = now();
    const n = rate * seconds;
    for (let i = 0; i < n; i++) {
        const due = start + (i * 1e6) / rate;
        const wait = due - now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait / 1000));
        // The scheduled time, not the actual one: a late send shows up as latency.
        const body = String(Math.round(due)).padStart(16, '0') + 'x'.repeat(size - 16);
        send(body);
        expected += members.length;
    }
    const deadline = Date.now() + 10000;
    while (lat.length < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const ws of members) ws.removeEventListener('message', onMsg);
    const ms = (x) => (x / 1000).toFixed(2);
    console.log(`${name}: ${n} messages x ${members.length} subscribers, ${lat.length}/${expected} delivered, ` +
        `p50 ${ms(quantile(lat, 0.5))} ms, p99 ${ms(quantile(lat, 0.99))} ms, max ${ms(quantile(lat, 1))} ms`);
    return lat.length === expected;
}

(async () => {
    const members = [];
    for (let i = 0; i < subs; i++) members.push(await open(`ws://127.0.0.1:${ports[i % ports.length]}/lat`));
    const pub = await open(`ws://127.0.0.1:${ports[0]}/lat`); // a member too: it gets its own messages
    pub.addEventListener('message', () => {});
    await new Promise((r) => setTimeout(r, 500)); // backplane subscriptions confirmed
    let ok = await phase(`${o.label}client publish (WebSocket member)`, members, (b) => pub.send(b));
    if (!o.key) {
        for (const ws of [...members, pub]) ws.close();
        process.exit(ok ? 0 : 1);
    }
    const headers = { authorization: `Bearer ${o.key}`, 'content-type': 'text/plain' };
    ok = (await phase('API publish (POST /api/publish, keep-alive)', members, (b) => {
        fetch(`http://127.0.0.1:${port}/api/publish/lat`, { method: 'POST', headers, body: b })
            .then((r) => r.arrayBuffer()).catch((e) => { console.error(e.message); });
    })) && ok;
    for (const ws of [...members, pub]) ws.close();
    process.exit(ok ? 0 : 1);
})();
