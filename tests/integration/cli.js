// The executable's contract outside the protocol: every bad option value gets one error line
// and exit status 2; --help and --version exit 0; --pin pins worker i to CPU i; SIGINT, like
// SIGTERM, sends close 1001 and exits 0; --shutdown-timeout bounds the wait for a client that
// never answers the close; a kernel older than 5.19 gets a clear message and exit 1 (faked
// with setarch --uname-2.6); -b ::1 serves on IPv6 loopback only.
'use strict';

const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const h = require('./lib/harness');
const { RawClient } = require('./lib/rawws');

// Runs the server with argv to completion (it must exit by itself within ms).
function runToExit(bin, argv, ms = 10000, wrapper = null) {
    const cmd = wrapper ? wrapper[0] : bin;
    const args = wrapper ? [...wrapper.slice(1), bin, ...argv] : argv;
    const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: ms });
    if (r.error) h.fail(`${[cmd, ...args].join(' ')}: ${r.error.message}`);
    return r;
}

function badValues(o) {
    const cases = [
        ['-c', '0'], ['--cores', 'two'], ['-c', '1025'], ['-p', '65536'], ['--port', '80x'],
        ['-b', '1.2.3'], ['--bind', 'localhost:80'], ['--max-message', '0'], ['--max-message', '12q'],
        ['--max-conns', '-1'], ['--max-conns', '0'], ['--max-queue', 'lots'], ['--max-queue', '100'],
        ['--ping-interval', '5parsecs'], ['--idle-timeout', '-3s'], ['--handshake-timeout', '0'],
        ['--close-timeout', 'soon'], ['--shutdown-timeout', '1h'], ['--tls-min', '1.1'], ['--ktls', 'maybe'],
        ['--max-conns-per-ip', 'x'], ['--max-pending', '-5'], ['--max-rooms', '1e3'], ['--origin', ''],
        ['--first-frame-timeout', 'later'], ['--write-stall-timeout', '9y'], ['--slow-policy', 'ignore'],
        ['--max-header-bytes', '12z'], ['--max-headers', 'many'], ['--max-queue-frames', 'x'], ['--slow-grace', 'a while'],
        ['--no-such-option'], ['stray-argument'], ['--port'],
    ];
    for (const argv of cases) {
        const r = runToExit(o.server, argv);
        const what = `uringws ${argv.join(' ')}`;
        h.checkEq(r.status, 2, `${what}: exit status`);
        const lines = r.stderr.split('\n').filter((l) => l.length > 0);
        h.check(lines.length === 1, () => `${what}: expected one error line, got:\n${r.stderr}`);
        h.check(/^uringws: /.test(lines[0]), () => `${what}: error line does not start with "uringws: ": ${lines[0]}`);
        const name = argv[0].startsWith('-') ? argv[0].replace(/^-+/, '') : argv[0];
        const mentions = lines[0].includes(name) ||
            (argv[0] === '-c' && lines[0].includes('--cores')) ||
            (argv[0] === '-p' && lines[0].includes('--port')) ||
            (argv[0] === '-b' && /bind|address/.test(lines[0]));
        h.check(mentions, () => `${what}: the error line does not name the option: ${lines[0]}`);
        h.checkEq(r.stdout, '', `${what}: stdout`);
    }
    h.info(`${cases.length} bad command lines: exit 2 with one line naming the option`);

    const help = runToExit(o.server, ['--help']);
    h.checkEq(help.status, 0, '--help exit status');
    for (const flag of ['--cores', '--port', '--bind', '--max-message', '--max-conns', '--max-queue',
        '--ping-interval', '--idle-timeout', '--handshake-timeout', '--close-timeout', '--shutdown-timeout',
        '--pin', '--no-direct', '--max-conns-per-ip', '--max-pending', '--max-rooms', '--origin',
        '--first-frame-timeout', '--write-stall-timeout', '--slow-policy', '--max-header-bytes', '--max-headers',
        '--max-queue-frames', '--slow-grace', '--tls-port', '--tls-cert', '--tls-key', '--tls-min', '--ktls', '--no-plain',
        '--verbose', '--quiet', '--help', '--version']) {
        h.check(help.stdout.includes(flag), () => `--help does not list ${flag}`);
    }
    const ver = runToExit(o.server, ['--version']);
    h.checkEq(ver.status, 0, '--version exit status');
    h.check(/^uringws \d+\.\d+\.\d+\n$/.test(ver.stdout), () => `--version printed ${JSON.stringify(ver.stdout)}`);
}

// The CPUs each worker thread (named uringws-c<i>) of pid may run on, by worker name.
function workerCpus(pid) {
    const out = {};
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
        const comm = fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
        if (!/^uringws-c\d+$/.test(comm)) continue;
        const status = fs.readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
        out[comm] = /Cpus_allowed_list:\s*(\S+)/.exec(status)[1];
    }
    return out;
}

async function pinning(o) {
    // The CPUs this process may use (ctest or taskset may have narrowed them): --pin picks
    // from these, in order.
    const allowed = [];
    for (const part of /Cpus_allowed_list:\s*(\S+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1].split(',')) {
        const [a, b] = part.split('-').map(Number);
        for (let c = a; c <= (b === undefined ? a : b); c++) allowed.push(String(c));
    }
    const cores = Math.min(2, allowed.length);
    const server = await new h.Server(o.server, ['-c', String(cores), '--pin']).start();
    const cpus = workerCpus(server.pid);
    const expect = {};
    for (let i = 0; i < cores; i++) expect[`uringws-c${i}`] = allowed[i];
    h.checkEq(JSON.stringify(cpus), JSON.stringify(expect), 'worker CPUs with --pin');
    for (let i = 0; i < cores; i++) {
        h.check(server.log.includes(`core ${i} pinned to CPU ${allowed[i]}`), () => `no "core ${i} pinned" log line`);
    }
    await server.stop();
    const unpinned = await new h.Server(o.server, ['-c', String(cores)]).start();
    const free = workerCpus(unpinned.pid);
    h.checkEq(Object.keys(free).length, cores, 'named worker threads without --pin');
    if (allowed.length > 1) {
        for (const [w, c] of Object.entries(free)) h.check(/[-,]/.test(c), () => `${w} pinned to ${c} without --pin`);
    }
    await unpinned.stop();
    h.info(`--pin: workers on CPUs ${Object.values(cpus).join(', ')} (allowed ${allowed.join(',')}); unpinned otherwise`);
}

// A raw client in `path` that never answers the server's close frame.
async function deafClient(port) {
    const c = await RawClient.connect(port, '/lobby');
    c.closeSent = true; // the client believes it already said goodbye: no close echo
    return c;
}

async function signals(o) {
    // SIGINT: close 1001 to the client, which answers, and exit 0.
    const server = await new h.Server(o.server, ['-c', '2']).start();
    const c = await RawClient.connect(server.port, '/lobby');
    server.stopping = true;
    server.proc.kill('SIGINT');
    const exit = await h.withTimeout(server.exited, 10000, 'exit after SIGINT');
    h.checkEq(exit.code, 0, 'exit status after SIGINT');
    await h.withTimeout(c.endPromise, 5000, 'client connection closed after SIGINT');
    h.check(c.closeFrame && c.closeFrame.code === 1001, () => `close frame after SIGINT: ${JSON.stringify(c.closeFrame)}`);

    // --shutdown-timeout: a client that never answers holds the shutdown for that long, not
    // longer (and not for the 5 s default).
    const s2 = await new h.Server(o.server, ['-c', '1', '--shutdown-timeout', '1s']).start();
    const deaf = await deafClient(s2.port);
    const t0 = Date.now();
    s2.stopping = true;
    s2.proc.kill('SIGTERM');
    const exit2 = await h.withTimeout(s2.exited, 10000, 'exit with a deaf client');
    const ms = Date.now() - t0;
    h.checkEq(exit2.code, 0, 'exit status with a client that never answered the close');
    h.check(deaf.closeFrame && deaf.closeFrame.code === 1001, () => `deaf client's close frame: ${JSON.stringify(deaf.closeFrame)}`);
    h.check(ms >= 900 && ms < 3500, () => `shutdown with --shutdown-timeout 1s took ${ms} ms (expected about 1 s)`);
    h.check(/dropping 1 connection/.test(s2.log), () => 'no log line about the connection dropped at the timeout');
    deaf.socket.destroy();
    h.info(`SIGINT: 1001 and exit 0; --shutdown-timeout 1s with a deaf client: exit 0 after ${ms} ms`);
}

function oldKernel(o) {
    const r = runToExit(o.server, ['-p', '0', '-b', '127.0.0.1'], 10000, ['setarch', 'x86_64', '--uname-2.6']);
    h.checkEq(r.status, 1, 'exit status on a kernel reporting 2.6');
    h.check(/too old: uringws needs Linux 5\.19/.test(r.stderr + r.stdout),
        () => `no "too old" message:\n${r.stderr}${r.stdout}`);
    h.info('kernel reporting 2.6.x: "too old ... needs Linux 5.19", exit 1');
}

function ipv6Available() {
    return os.networkInterfaces().lo?.some((a) => a.family === 'IPv6' && a.address === '::1');
}

async function ipv6(o) {
    if (!ipv6Available()) {
        h.info('-b ::1: no IPv6 loopback on this machine; skipped');
        return;
    }
    const port = await h.freePort();
    const proc = spawn(o.server, ['-p', String(port), '-b', '::1', '-c', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    proc.stdout.on('data', (d) => { log += d; });
    proc.stderr.on('data', (d) => { log += d; });
    const exited = new Promise((r) => proc.on('exit', (code) => r(code)));
    try {
        const get = (host) => new Promise((resolve) => {
            const s = net.connect({ host, port });
            let data = '';
            s.on('connect', () => s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'));
            s.on('data', (d) => { data += d; });
            s.on('close', () => resolve(data));
            s.on('error', (e) => resolve(`error ${e.code}`));
            setTimeout(() => s.destroy(), 3000);
        });
        const six = await h.pollUntil(async () => { const r = await get('::1'); return /200/.test(r) && r; }, 10000,
            () => `GET /healthz over [::1] never answered 200:\n${log}`);
        h.check(/\r\n\r\nok/.test(six), () => `/healthz over IPv6: ${six}`);
        const four = await get('127.0.0.1');
        h.check(/ECONNREFUSED/.test(four), () => `-b ::1 must not listen on 127.0.0.1 (got ${four})`);
    } finally {
        proc.kill('SIGTERM');
    }
    h.checkEq(await h.withTimeout(exited, 10000, 'exit of the IPv6 server'), 0, 'exit status of the -b ::1 server');
    h.info('-b ::1: /healthz over IPv6, nothing on 127.0.0.1');
}

async function main() {
    const o = h.parseOptions();
    badValues(o);
    await pinning(o);
    await signals(o);
    oldKernel(o);
    await ipv6(o);
    return 'bad values, --help/--version, --pin, SIGINT, --shutdown-timeout, old kernel, -b ::1';
}

h.run('cli', main, { timeoutMs: 110000 });
