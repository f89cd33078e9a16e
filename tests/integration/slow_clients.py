#!/usr/bin/env python3
"""Slow consumers for slow_consumer.js: WebSocket clients that complete the upgrade and then
read nothing until told to. Node cannot shrink a socket's buffers, and a paused loopback
socket otherwise absorbs about 4 MB (the server's send buffer grows to tcp_wmem's maximum
for a 64 KiB MSS) before the server's own queue even starts to fill; with SO_RCVBUF 4096 and
TCP_MAXSEG 536 set before connect, the kernel holds under 100 KB per client, so --max-queue
is what decides. Standard library only.

Protocol on stdin/stdout (one JSON object per line out):
  out {"ready": N}                      all N upgrades done (each checked: 101 + accept key)
  in  "read SECONDS LAST_ID"            start reading every socket until it has the message
                                        LAST_ID, a close frame, or EOF, or SECONDS pass
  out {"clients": [{"ids": n, "first": id, "last": id, "gaps": g, "in_order": bool,
                    "close": code|null, "eof": bool, "error": str|null}, ...]}
Messages carry their id as a big-endian uint32 in the first 4 payload bytes."""
import argparse
import base64
import hashlib
import json
import os
import selectors
import socket
import struct
import sys
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def upgrade(port, path, rcvbuf, mss):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, mss)
    s.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16))
    s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key +
              b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
    head = b""
    s.settimeout(10)
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)  # byte by byte: nothing after the head may be consumed here
        if not chunk:
            raise RuntimeError("closed before the 101")
        head += chunk
    want = base64.b64encode(hashlib.sha1(key + GUID).digest())
    if not head.startswith(b"HTTP/1.1 101 ") or b"Sec-WebSocket-Accept: " + want not in head:
        raise RuntimeError("bad upgrade response: %r" % head[:200])
    s.setblocking(False)
    return s


class Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.ids = 0
        self.first = None
        self.last = None
        self.gaps = 0
        self.in_order = True
        self.close = None
        self.eof = False
        self.error = None

    def done(self, last_id):
        return self.eof or self.close is not None or self.error or self.last == last_id

    def feed(self, data):
        self.buf += data
        while True:
            if len(self.buf) < 2:
                return
            b0, b1 = self.buf[0], self.buf[1]
            if b1 & 0x80:
                raise RuntimeError("masked frame from the server")
            if b0 & 0x70:
                raise RuntimeError("RSV bits set")
            n, hl = b1 & 0x7F, 2
            if n == 126:
                if len(self.buf) < 4:
                    return
                n, hl = struct.unpack(">H", self.buf[2:4])[0], 4
            elif n == 127:
                if len(self.buf) < 10:
                    return
                n, hl = struct.unpack(">Q", self.buf[2:10])[0], 10
            if len(self.buf) < hl + n:
                return
            op = b0 & 0x0F
            payload = bytes(self.buf[hl:hl + n])
            del self.buf[:hl + n]
            if not b0 & 0x80:
                raise RuntimeError("fragmented frame (the server never fragments)")
            if op == 0x8:
                self.close = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else 1005
                return
            if op in (0x9, 0xA):
                continue
            if op not in (0x1, 0x2) or len(payload) < 4:
                raise RuntimeError("unexpected frame: opcode %d, %d bytes" % (op, len(payload)))
            mid = struct.unpack(">I", payload[:4])[0]
            if self.last is not None:
                if mid <= self.last:
                    self.in_order = False
                elif mid > self.last + 1:
                    self.gaps += 1
            else:
                self.first = mid
            self.last = mid
            self.ids += 1

    def report(self):
        return {"ids": self.ids, "first": self.first, "last": self.last, "gaps": self.gaps,
                "in_order": self.in_order, "close": self.close, "eof": self.eof,
                "error": self.error}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/lobby")
    ap.add_argument("--count", type=int, default=50)
    ap.add_argument("--rcvbuf", type=int, default=4096)
    ap.add_argument("--mss", type=int, default=536)
    a = ap.parse_args()
    socks = [upgrade(a.port, a.path, a.rcvbuf, a.mss) for _ in range(a.count)]
    print(json.dumps({"ready": len(socks)}), flush=True)
    line = sys.stdin.readline().split()
    if not line or line[0] != "read":
        return
    seconds, last_id = float(line[1]), int(line[2])
    readers = [Reader(s) for s in socks]
    sel = selectors.DefaultSelector()
    for r in readers:
        sel.register(r.sock, selectors.EVENT_READ, r)
    deadline = time.monotonic() + seconds
    open_ = len(readers)
    while open_ and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.1):
            r = key.data
            try:
                data = r.sock.recv(65536)
                if data:
                    r.feed(data)
                else:
                    r.eof = True
            except (ConnectionResetError, BrokenPipeError):
                r.eof = True
            except BlockingIOError:
                continue
            except RuntimeError as e:
                r.error = str(e)
            if r.done(last_id):
                sel.unregister(r.sock)
                open_ -= 1
    print(json.dumps({"clients": [r.report() for r in readers]}), flush=True)
    for r in readers:
        r.sock.close()


if __name__ == "__main__":
    main()
