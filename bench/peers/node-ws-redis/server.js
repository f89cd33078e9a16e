'use strict';
// The common hand-made backplane, as a peer for bench/cluster/run.sh: npm `ws` chat rooms
// (rooms by URL path, as bench/peers/node-ws) where a member's message is PUBLISHed on the
// Redis channel "chat:<room>" (ioredis) and every node delivers what comes back on its
// subscription to its local members, the sender's node included. A node subscribes to a
// room's channel while it has local members. No sequence numbers, no gap detection.
const http = require('http');
const Redis = require('ioredis');
const { WebSocketServer, WebSocket } = require('ws');

const port = Number(process.argv[2] || 8080);
const pub = new Redis(process.argv[3]);
const sub = new Redis(process.argv[3]);
const rooms = new Map();

const server = http.createServer((req, res) => {
  res.writeHead(req.url === '/healthz' ? 200 : 404, { 'content-type': 'text/plain' });
  res.end(req.url === '/healthz' ? 'ok\n' : 'not found\n');
});
const wss = new WebSocketServer({ server, perMessageDeflate: false, maxPayload: 16 << 20 });

function roomOf(url) {
  let path = (url || '/').split('?')[0];
  try { path = decodeURIComponent(path); } catch (_) { /* keep it raw */ }
  return path.length > 1 ? path.slice(1) : 'lobby';
}

// First byte of a channel message: t(ext) or b(inary), then the payload.
sub.on('messageBuffer', (channel, message) => {
  const room = rooms.get(channel.toString().slice(5));
  if (!room) return;
  const binary = message[0] === 0x62;
  const data = message.subarray(1);
  for (const member of room) {
    if (member.readyState === WebSocket.OPEN) member.send(data, { binary });
  }
});

wss.on('connection', (ws, req) => {
  const name = roomOf(req.url);
  let room = rooms.get(name);
  if (!room) {
    room = new Set();
    rooms.set(name, room);
    sub.subscribe(`chat:${name}`);
  }
  room.add(ws);
  ws.on('message', (data, isBinary) => {
    pub.publish(`chat:${name}`, Buffer.concat([Buffer.from(isBinary ? 'b' : 't'), data]));
  });
  ws.on('close', () => {
    room.delete(ws);
    if (room.size === 0 && rooms.get(name) === room) {
      rooms.delete(name);
      sub.unsubscribe(`chat:${name}`);
    }
  });
  ws.on('error', () => {});
});

sub.on('ready', () => server.listen(port, '0.0.0.0', () => console.log(`node-ws-redis listening on :${port}`)));
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
