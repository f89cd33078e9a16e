'use strict';
// Usage: node bench/peers/check.js PORT [HOST]
// Checks that the server on PORT has uringws's broadcast semantics before compare.sh
// benchmarks it: 3 clients in one room and 1 in another; each message (text and binary)
// any member sends reaches every member of its room, the sender included, as the same
// type and bytes, in the order sent; the other room gets none of them. Exit 0 = pass.
const path = require('path');
const { WebSocket } = require(path.join(__dirname, '../../tests/integration/node_modules/undici'));

const port = Number(process.argv[2]);
const host = process.argv[3] || '127.0.0.1';
if (!port) { console.error('usage: check.js PORT [HOST]'); process.exit(2); }
const tag = `chk${process.pid}x${Date.now() % 100000}`;
const roomA = `${tag}a`, roomB = `${tag}b`;

function fail(msg) { console.error(`check: FAIL: ${msg}`); process.exit(1); }
setTimeout(() => fail('timed out after 10 s'), 10000).unref();

function open(room, name) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://${host}:${port}/${room}`);
    ws.binaryType = 'arraybuffer';
    ws.got = [];
    ws.label = name;
    ws.onmessage = (ev) => {
      ws.got.push(typeof ev.data === 'string' ? `T:${ev.data}` : `B:${Buffer.from(ev.data).toString('hex')}`);
    };
    ws.onopen = () => resolve(ws);
    ws.onerror = () => reject(new Error(`${name}: connect to ws://${host}:${port}/${room} failed`));
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(pred, ms) {
  const end = Date.now() + ms;
  while (!pred() && Date.now() < end) await sleep(10);
}

(async () => {
  const a = [];
  for (let i = 0; i < 3; i++) a.push(await open(roomA, `a${i}`));
  const b = await open(roomB, 'b0');
  await sleep(100); // let every join land before the first message
  const want = [];
  for (let round = 0; round < 2; round++) {
    for (const [i, ws] of a.entries()) {
      const text = `hello ${round} from a${i} \u00e9\u20ac`;
      const bin = Buffer.from([0, 0xff, round, i, 0x80, 0x7f]);
      ws.send(text); want.push(`T:${text}`);
      ws.send(bin); want.push(`B:${bin.toString('hex')}`);
    }
  }
  await until(() => a.every((ws) => ws.got.length >= want.length), 5000);
  for (const ws of a) {
    if (ws.got.length !== want.length) fail(`${ws.label} got ${ws.got.length} of ${want.length} messages`);
    // Per sender, order must be kept and types must match.
    for (let i = 0; i < 3; i++) {
      const mine = (list) => list.filter((m) => m.includes(` from a${i} `) || (m.startsWith('B:') && m.slice(8, 10) === `0${i}`));
      const exp = mine(want), got = mine(ws.got);
      if (JSON.stringify(exp) !== JSON.stringify(got)) fail(`${ws.label}: messages from a${i} differ: ${JSON.stringify(got)} != ${JSON.stringify(exp)}`);
    }
  }
  // All members of the room see the same order.
  const order = JSON.stringify(a[0].got);
  for (const ws of a) if (JSON.stringify(ws.got) !== order) fail(`${ws.label} saw another order than a0`);
  await sleep(200);
  if (b.got.length !== 0) fail(`the other room got ${b.got.length} messages`);
  b.send('only b');
  await until(() => b.got.length >= 1, 3000);
  await sleep(200);
  if (b.got.length !== 1 || b.got[0] !== 'T:only b') fail(`b0 got ${JSON.stringify(b.got)} for its own message`);
  if (a.some((ws) => ws.got.length !== want.length)) fail('room a got room b\'s message');
  for (const ws of [...a, b]) ws.close();
  console.log(`check: ok (port ${port}: ${want.length} messages to 3 members incl. sender, text/binary kept, other room isolated)`);
  process.exit(0);
})().catch((e) => fail(e.message));
