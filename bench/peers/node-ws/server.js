'use strict';
// The classic npm `ws` chat-room broadcast, as a peer for bench/compare.sh.
// ws://host:PORT/<room>: every message a member sends goes to every member of the room,
// the sender included; text stays text, binary stays binary. Rooms are the URL path
// (percent-decoded, "/" is "lobby"), one Set of sockets per room.
const http = require('http');
const { WebSocketServer, WebSocket } = require('ws');

const port = Number(process.argv[2] || 8080);
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

wss.on('connection', (ws, req) => {
  const name = roomOf(req.url);
  let room = rooms.get(name);
  if (!room) { room = new Set(); rooms.set(name, room); }
  room.add(ws);
  ws.on('message', (data, isBinary) => {
    for (const member of room) {
      if (member.readyState === WebSocket.OPEN) member.send(data, { binary: isBinary });
    }
  });
  ws.on('close', () => {
    room.delete(ws);
    if (room.size === 0 && rooms.get(name) === room) rooms.delete(name);
  });
  ws.on('error', () => {});
});

server.listen(port, '0.0.0.0', () => console.log(`node-ws listening on :${port}`));
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
