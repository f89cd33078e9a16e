#!/usr/bin/python3
# RFC 6455 cases sent by a second client implementation: Autobahn|Python (Debian
# python3-autobahn, asyncio flavour), whose sendFrame() writes arbitrary frames (reserved
# bits, bad opcodes, invalid close codes, unmasked, in chops) and whose protocol engine
# checks every frame the server sends back (masking, RSV, UTF-8, close codes). Each case
# runs on its own connection to /echo and compares what arrived with the expected sequence,
# then requires a clean close with the expected code. Run it with /usr/bin/python3: the
# Debian modules are not visible to other interpreters.
#
#   autobahn_frames.py --server PATH/uringws
# Exit status 0 when every case passed and the server exited 0 after SIGTERM.
import argparse
import asyncio
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

try:
    import txaio
    txaio.use_asyncio()
    from autobahn.asyncio.websocket import WebSocketClientFactory, WebSocketClientProtocol
except ImportError as e:  # the test fails rather than skips, like the Node ones
    sys.exit(f'FAIL autobahn_frames: Debian python3-autobahn is missing for {sys.executable} ({e}); '
             'run scripts/deps.sh --test and use /usr/bin/python3')

MAX_MESSAGE = 65536
CASE_TIMEOUT = 10.0

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


def close_payload(code, reason=b''):
    return struct.pack('!H', code) + reason


class CaseProtocol(WebSocketClientProtocol):
    """Records what the server sends: ('text', bytes), ('binary', bytes), ('pong', bytes)."""

    def onOpen(self):
        self.events = []
        self.factory.opened.set_result(self)

    def onMessage(self, payload, isBinary):
        self.events.append(('binary' if isBinary else 'text', bytes(payload)))

    def onPong(self, payload):
        self.events.append(('pong', bytes(payload)))

    def onClose(self, wasClean, code, reason):
        if not self.factory.done.done():
            self.factory.done.set_result(self)


def frames(*specs):
    """A list of sendFrame keyword dicts from (opcode, payload[, options]) tuples."""
    out = []
    for s in specs:
        d = {'opcode': s[0], 'payload': s[1]}
        if len(s) > 2:
            d.update(s[2])
        out.append(d)
    return out


# (id, RFC section, Autobahn group, title, frames to send, expected events, expected close code,
#  client_closes): when client_closes, the client sends close 1000 after the expected events.
CASES = [
    ('AB.5.6', '5.4', '5 Fragmentation', 'fragmented text with a ping between the fragments',
     frames((OP_TEXT, b'fragment1', {'fin': False}), (OP_PING, b'pongme!'), (OP_CONT, b'fragment2')),
     [('pong', b'pongme!'), ('text', b'fragment1fragment2')], 1000, True),
    ('AB.5.8', '5.4', '5 Fragmentation', 'the same in chops of 1 byte',
     frames((OP_TEXT, b'fragment1', {'fin': False, 'chopsize': 1}), (OP_PING, b'pongme!', {'chopsize': 1}),
            (OP_CONT, b'fragment2', {'chopsize': 1})),
     [('pong', b'pongme!'), ('text', b'fragment1fragment2')], 1000, True),
    ('AB.2.6', '5.5.2', '2 Pings/Pongs', '125-byte ping in chops of 1 byte',
     frames((OP_PING, b'\xfe' * 125, {'chopsize': 1})), [('pong', b'\xfe' * 125)], 1000, True),
    ('AB.2.5', '5.5', '2 Pings/Pongs', '126-byte ping -> 1002',
     frames((OP_PING, b'\xfe' * 126)), [], 1002, False),
    ('AB.3.2', '5.2', '3 Reserved Bits', 'text, text with RSV=2, ping -> echo then 1002',
     frames((OP_TEXT, b'Hello, world!'), (OP_TEXT, b'Hello, world!', {'rsv': 2}), (OP_PING, b'')),
     [('text', b'Hello, world!')], 1002, False),
    ('AB.3.4', '5.2', '3 Reserved Bits', 'text with RSV=4 (RSV1, deflate not negotiated) -> 1002',
     frames((OP_TEXT, b'Hello, world!', {'rsv': 4})), [], 1002, False),
    ('AB.3.6', '5.2', '3 Reserved Bits', 'ping with RSV=6 -> 1002',
     frames((OP_PING, b'Hello, world!', {'rsv': 6})), [], 1002, False),
    ('AB.4.1.3', '5.2', '4 Opcodes', 'text, reserved opcode 5, ping -> echo then 1002',
     frames((OP_TEXT, b'Hello, world!'), (5, b''), (OP_PING, b'')), [('text', b'Hello, world!')], 1002, False),
    ('AB.4.2.2', '5.2', '4 Opcodes', 'reserved control opcode 12 -> 1002',
     frames((12, b'reserved opcode payload')), [], 1002, False),
    ('AB.5.1', '5.4, 5.5', '5 Fragmentation', 'ping in two fragments -> 1002',
     frames((OP_PING, b'fragment1', {'fin': False}), (OP_CONT, b'fragment2')), [], 1002, False),
    ('AB.5.9', '5.4', '5 Fragmentation', 'continuation with nothing to continue -> 1002',
     frames((OP_CONT, b'non-continuation payload'), (OP_TEXT, b'Hello, world!')), [], 1002, False),
    ('AB.6.3.1', '8.1', '6 UTF-8 Handling', 'invalid UTF-8 text -> 1007',
     frames((OP_TEXT, bytes.fromhex('cebae1bdb9cf83cebcceb5eda080656469746564'))), [], 1007, False),
    ('AB.6.2.3', '5.6', '6 UTF-8 Handling', 'multi-byte text, one byte per fragment',
     [{'opcode': OP_CONT if i else OP_TEXT, 'payload': bytes([b]), 'fin': i == 10}
      for i, b in enumerate(bytes.fromhex('cebae1bdb9cf83cebcceb5'))],
     [('text', bytes.fromhex('cebae1bdb9cf83cebcceb5'))], 1000, True),
    ('AB.7.3.2', '5.5.1', '7 Close Handling', 'close with a 1-byte payload -> 1002',
     frames((OP_CLOSE, b'\x03')), [], 1002, False),
    ('AB.7.3.1', '5.5.1', '7 Close Handling', 'close without payload -> close 1000',
     frames((OP_CLOSE, b'')), [], 1000, False),
    ('AB.7.5.1', '8.1', '7 Close Handling', 'close with an invalid UTF-8 reason -> 1007',
     frames((OP_CLOSE, close_payload(1000, bytes.fromhex('cebae1bdb9cf83cebcceb5eda080656469746564')))),
     [], 1007, False),
    ('AB.7.7.10', '7.4.2', '7 Close Handling', 'close 3000 -> echoed', frames((OP_CLOSE, close_payload(3000))), [], 3000, False),
    ('AB.7.7.13', '7.4.2', '7 Close Handling', 'close 4999 -> echoed', frames((OP_CLOSE, close_payload(4999))), [], 4999, False),
] + [
    (f'AB.7.9.{i + 1}', '7.4.1', '7 Close Handling', f'invalid close code {code} -> 1002',
     frames((OP_CLOSE, close_payload(code))), [], 1002, False)
    for i, code in enumerate([0, 999, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016, 1100, 2000, 2999, 5000])
] + [
    ('AB.M.1', '5.1, 5.3', 'masking', 'unmasked text -> 1002',
     frames((OP_TEXT, b'hello', {'unmasked': True})), [], 1002, False),
    ('AB.9.x', '7.4.1', '9 Limits', f'binary of {MAX_MESSAGE + 1} bytes (--max-message {MAX_MESSAGE}) -> 1009',
     frames((OP_BINARY, b'\x07' * (MAX_MESSAGE + 1))), [], 1009, False),
    ('AB.9.y', '5.4', '9 Limits', f'binary of exactly {MAX_MESSAGE} bytes in 1000-byte chops',
     frames((OP_BINARY, b'\x07' * MAX_MESSAGE, {'chopsize': 1000})), [('binary', b'\x07' * MAX_MESSAGE)], 1000, True),
]


async def run_case(port, case):
    cid, rfc, group, title, to_send, expected, want_code, client_closes = case
    loop = asyncio.get_running_loop()
    factory = WebSocketClientFactory(f'ws://127.0.0.1:{port}/echo')
    factory.protocol = CaseProtocol
    factory.setProtocolOptions(closeHandshakeTimeout=5, serverConnectionDropTimeout=5, openHandshakeTimeout=5)
    factory.opened = loop.create_future()
    factory.done = loop.create_future()
    where = f'[{cid}] {title} (RFC 6455 {rfc}, Autobahn {group})'
    transport, _ = await loop.create_connection(factory, '127.0.0.1', port)
    try:
        proto = await asyncio.wait_for(factory.opened, CASE_TIMEOUT)
        for fr in to_send:
            fr = dict(fr)
            unmasked = fr.pop('unmasked', False)
            if unmasked:
                proto.maskClientFrames = False
            proto.sendFrame(**fr)
            proto.maskClientFrames = True
        if client_closes:
            deadline = time.monotonic() + CASE_TIMEOUT
            while len(proto.events) < len(expected) and time.monotonic() < deadline and not factory.done.done():
                await asyncio.sleep(0.01)
            proto.sendClose(1000)
        await asyncio.wait_for(factory.done, CASE_TIMEOUT)
    except asyncio.TimeoutError:
        transport.abort()
        return f'{where}: timed out'
    finally:
        transport.close()
    problems = []
    if proto.events != expected:
        def show(evs):
            return [(k, v if len(v) <= 24 else f'{len(v)} bytes') for k, v in evs]
        problems.append(f'expected {show(expected)}, got {show(proto.events)}')
    if proto.remoteCloseCode != want_code:
        problems.append(f'server close code {proto.remoteCloseCode}, expected {want_code}')
    if not proto.wasClean:
        problems.append(f'not a clean close: {proto.wasNotCleanReason}')
    return f'{where}: {"; ".join(problems)}' if problems else None


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def healthy(port):
    try:
        with urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


async def run_all(port):
    failures = []
    # A few at a time: each case is one connection.
    sem = asyncio.Semaphore(8)

    async def one(case):
        async with sem:
            r = await run_case(port, case)
            if r:
                failures.append(r)
    await asyncio.gather(*(one(c) for c in CASES))
    return failures


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--server', required=True)
    args = ap.parse_args()
    if not os.access(args.server, os.X_OK):
        sys.exit(f'FAIL autobahn_frames: --server {args.server} is not an executable')
    t0 = time.monotonic()
    for attempt in range(3):
        port = free_port()
        # The log goes to a temporary file (a pipe nobody reads could fill and stall it).
        log = tempfile.TemporaryFile()
        proc = subprocess.Popen([args.server, '-p', str(port), '-b', '127.0.0.1', '-c', '2',
                                 '--max-message', str(MAX_MESSAGE)], stdout=log, stderr=log)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and proc.poll() is None and not healthy(port):
            time.sleep(0.05)
        if proc.poll() is None and healthy(port):
            break
        proc.kill()
        proc.wait()
    else:
        sys.exit('FAIL autobahn_frames: the server did not start')
    try:
        failures = asyncio.run(run_all(port))
        alive = proc.poll() is None
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = 'timeout'
        log.seek(0)
        errlog = log.read().decode('utf-8', 'replace')
    if not alive:
        failures.append(f'the server died during the cases (exit {proc.returncode})')
    elif code != 0:
        failures.append(f'the server exited with {code} after SIGTERM')
    if failures:
        print('FAIL autobahn_frames:\n  ' + '\n  '.join(failures), file=sys.stderr)
        print('--- server log (tail) ---\n' + errlog[-8000:], file=sys.stderr)
        sys.exit(1)
    print(f'PASS autobahn_frames in {time.monotonic() - t0:.1f} s: {len(CASES)} cases sent by Autobahn|Python '
          f'(autobahn {__import__("autobahn").__version__})')


if __name__ == '__main__':
    main()
