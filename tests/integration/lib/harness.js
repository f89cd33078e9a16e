// Shared plumbing for the integration tests: command-line options, starting the server under
// test on a free loopback port, HTTP requests, /metrics parsing, fd counting, polling, and the
// single place where a test fails (message + server log, non-zero exit). It holds no test
// scenario: its checks are helpers the tests call, plus "the server started, stayed up and
// exited with status 0 after SIGTERM", which every test needs.
'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const util = require('node:util');

const LOG_KEEP = 64 * 1024; // bytes of server output kept for failure reports
const servers = new Set();
let extraServerArgs = [];   // --server-arg values, appended to every server command line
let currentTest = 'test';

class TestFailure extends Error {}

function fail(msg) {
    throw new TestFailure(msg);
}

function check(cond, msg) {
    if (!cond) fail(typeof msg === 'function' ? msg() : msg);
}

function checkEq(actual, expected, what) {
    if (actual !== expected) {
        fail(`${what}: expected ${util.inspect(expected)}, got ${util.inspect(actual)}`);
    }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Resolves with p's value, or rejects with a TestFailure naming `what` after ms.
function withTimeout(p, ms, what) {
    let t;
    const timeout = new Promise((_, reject) => {
        t = setTimeout(() => reject(new TestFailure(`timed out after ${ms} ms: ${what}`)), ms);
    });
    return Promise.race([p, timeout]).finally(() => clearTimeout(t));
}

// Calls fn until it returns a truthy value or ms pass; returns that value or fails with
// describe(lastValue).
async function pollUntil(fn, ms, describe, intervalMs = 50) {
    const deadline = Date.now() + ms;
    let last;
    for (;;) {
        last = await fn();
        if (last) return last;
        if (Date.now() >= deadline) fail(describe(last));
        await sleep(intervalMs);
    }
}

// Parses the common options; `extra` adds test-specific ones (util.parseArgs format).
function parseOptions(extra = {}) {
    const [major, minor] = process.versions.node.split('.').map(Number);
    if (major < 18 || (major === 18 && minor < 17)) fail(`Node.js ${process.version} is too old: 18.17 or newer is needed (undici 6)`);
    const { values } = util.parseArgs({
        options: {
            server: { type: 'string' },
            'server-arg': { type: 'string', multiple: true },
            seed: { type: 'string' },
            ...extra,
        },
        strict: true,
    });
    if (!values.server) fail('missing --server PATH (the uringws executable)');
    if (!fs.existsSync(values.server)) fail(`--server ${values.server}: no such file`);
    extraServerArgs = values['server-arg'] || [];
    values.seed = values.seed !== undefined ? Number(values.seed) >>> 0 : (Date.now() & 0x7fffffff);
    info(`seed ${values.seed} (rerun with --seed ${values.seed})`);
    return values;
}

function freePort() {
    return new Promise((resolve, reject) => {
        const s = net.createServer();
        s.unref();
        s.on('error', reject);
        s.listen(0, '127.0.0.1', () => {
            const { port } = s.address();
            s.close(() => resolve(port));
        });
    });
}

// One HTTP request over a fresh connection. Resolves {status, headers, body}.
function httpRequest(port, path, { method = 'GET', headers = {}, timeoutMs = 5000 } = {}) {
    return new Promise((resolve, reject) => {
        const req = http.request(
            { host: '127.0.0.1', port, path, method, headers, agent: false, timeout: timeoutMs },
            (res) => {
                const chunks = [];
                res.on('data', (c) => chunks.push(c));
                res.on('end', () =>
                    resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
                res.on('error', reject);
            });
        req.on('timeout', () => req.destroy(new Error(`HTTP ${method} ${path}: no answer in ${timeoutMs} ms`)));
        req.on('error', reject);
        req.end();
    });
}

// The server under test. Output goes to a bounded in-memory log shown when a test fails.
class Server {
    constructor(bin, args) {
        this.bin = bin;
        this.args = args;
        this.log = '';
        this.proc = null;
        this.port = 0;
        this.exit = null;        // {code, signal} once the process is gone
        this.stopping = false;
    }

    append(chunk) {
        this.log += chunk.toString('utf8');
        if (this.log.length > LOG_KEEP) this.log = this.log.slice(-LOG_KEEP);
    }

    get pid() {
        return this.proc.pid;
    }

    url(path = '/') {
        return `ws://127.0.0.1:${this.port}${path}`;
    }

    // Starts on the given port, or on a free one (retried: another process may take a port
    // between our probe and the server's bind).
    async start({ port = 0, readyMs = 15000 } = {}) {
        for (let attempt = 1; ; attempt++) {
            this.port = port || (await freePort());
            this.exit = null;
            this.stopping = false;
            const argv = ['-p', String(this.port), '-b', '127.0.0.1', ...this.args, ...extraServerArgs];
            this.append(`$ ${this.bin} ${argv.join(' ')}\n`);
            this.proc = spawn(this.bin, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
            servers.add(this);
            this.proc.stdout.on('data', (c) => this.append(c));
            this.proc.stderr.on('data', (c) => this.append(c));
            this.exited = new Promise((resolve) => {
                this.proc.on('exit', (code, signal) => {
                    this.exit = { code, signal };
                    this.append(`[server exited: code ${code} signal ${signal}]\n`);
                    servers.delete(this);
                    resolve(this.exit);
                    if (!this.stopping && !this.startingUp) {
                        abort(`server (pid ${this.proc.pid}) exited unexpectedly: code ${code}, signal ${signal}`);
                    }
                });
            });
            this.proc.on('error', (e) => this.append(`[spawn error: ${e.message}]\n`));
            this.startingUp = true;
            const ok = await this.waitHealthy(readyMs);
            this.startingUp = false;
            if (ok) return this;
            if (this.exit && !port && attempt < 3) continue; // probably lost the port race
            if (this.exit) fail(`server did not start: code ${this.exit.code}, signal ${this.exit.signal}`);
            fail(`server did not answer GET /healthz with 200 within ${readyMs} ms`);
        }
    }

    async waitHealthy(ms) {
        const deadline = Date.now() + ms;
        while (Date.now() < deadline && !this.exit) {
            try {
                const r = await httpRequest(this.port, '/healthz', { timeoutMs: 1000 });
                if (r.status === 200) return true;
            } catch (e) {
                // not listening yet
            }
            await sleep(50);
        }
        return false;
    }

    // SIGTERM, then the process must exit with status 0 within ms.
    async stop(ms = 10000) {
        if (this.exit) fail(`server already exited: code ${this.exit.code}, signal ${this.exit.signal}`);
        this.stopping = true;
        this.proc.kill('SIGTERM');
        const res = await Promise.race([this.exited, sleep(ms).then(() => null)]);
        if (!res) {
            this.proc.kill('SIGKILL');
            fail(`server did not exit within ${ms} ms of SIGTERM`);
        }
        if (res.code !== 0) fail(`server exited with code ${res.code}, signal ${res.signal} after SIGTERM (expected 0)`);
    }

    fdCount() {
        return fs.readdirSync(`/proc/${this.pid}/fd`).length;
    }

    async metrics() {
        const r = await httpRequest(this.port, '/metrics');
        checkEq(r.status, 200, 'GET /metrics status');
        return parseMetrics(r.body.toString('utf8'));
    }

    async metric(name) {
        const v = (await this.metrics()).values.get(name);
        if (v === undefined) fail(`/metrics lost the series ${name}`);
        return v;
    }

    // Polls the metric until it equals want; fails after ms saying what it was.
    async expectMetric(name, want, ms, what) {
        let last;
        await pollUntil(async () => (last = await this.metric(name)) === want, ms,
            () => `${what}: ${name} is ${last}, expected ${want}`, 100);
    }

    // The fd count once stable; see settled().
    settledFds() {
        return settled(() => this.fdCount(), `fd count of the server (pid ${this.pid})`);
    }

    async expectFds(want, ms, what) {
        let last;
        await pollUntil(() => (last = this.fdCount()) === want, ms,
            () => `${what}: the server has ${last} fds open, expected ${want}`, 50);
    }
}

// Prometheus text format -> {types: Map(name -> type), help: Map, values: Map(name -> sum over
// label sets), labeled: Set(names with labels), text}. Summing over labels makes per-core
// series comparable to one total.
function parseMetrics(text) {
    const types = new Map();
    const help = new Map();
    const values = new Map();
    const labeled = new Set();
    for (const line of text.split('\n')) {
        if (!line.trim()) continue;
        let m = /^# TYPE (\S+) (\S+)/.exec(line);
        if (m) { types.set(m[1], m[2]); continue; }
        m = /^# HELP (\S+) ?(.*)$/.exec(line);
        if (m) { help.set(m[1], m[2]); continue; }
        if (line.startsWith('#')) continue;
        m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)(\s+\S+)?$/.exec(line);
        if (!m) fail(`malformed /metrics line: ${JSON.stringify(line)}`);
        const v = Number(m[3]);
        if (Number.isNaN(v) && m[3] !== 'NaN') fail(`malformed /metrics value: ${JSON.stringify(line)}`);
        values.set(m[1], (values.get(m[1]) || 0) + v);
        if (m[2] && m[2] !== '{}') labeled.add(m[1]);
    }
    return { types, help, values, labeled, text };
}

// Metric families whose name matches `re` and whose type is `type`, narrowed step by step
// while more than one is left: families without labels (totals rather than per-core series),
// then names matching `prefer`. The names are not part of the server contract, so they are
// found by shape; `override` (a --metric option) names one directly.
function findMetric(metrics, type, re, prefer, what, override) {
    if (override) {
        check(metrics.values.has(override), () => `/metrics has no series ${override}:\n${metrics.text}`);
        return override;
    }
    let names = [...metrics.types].filter(([n, t]) => t === type && re.test(n)).map(([n]) => n);
    const narrow = (f) => {
        const kept = names.filter(f);
        if (names.length > 1 && kept.length) names = kept;
    };
    narrow((n) => !metrics.labeled.has(n));
    narrow((n) => prefer.test(n));
    check(names.length === 1, () => `expected one ${what} in /metrics, found ${JSON.stringify(names)}:\n${metrics.text}`);
    return names[0];
}

// The gauge of open connections.
function connectionGauge(metrics, override) {
    return findMetric(metrics, 'gauge', /conn/i, /(current|open|active)/i, 'gauge of open connections', override);
}

// The counter of accepted connections.
function connectionCounter(metrics) {
    return findMetric(metrics, 'counter', /conn.*(total|accepted|opened)|(accepted|opened).*conn/i, /accept/i,
        'counter of accepted connections');
}

// Reads fn() until two reads 100 ms apart agree: connections of earlier requests may still
// be closing inside the server. Fails if the value keeps changing for ms.
async function settled(fn, what, ms = 5000) {
    const deadline = Date.now() + ms;
    let prev = await fn();
    for (;;) {
        await sleep(100);
        const now = await fn();
        if (now === prev) return now;
        if (Date.now() >= deadline) fail(`${what} did not settle within ${ms} ms (last ${prev}, ${now})`);
        prev = now;
    }
}

// undici's WebSocket: the same class (and events) as the browser's.
function WebSocketClass() {
    try {
        return require('undici').WebSocket;
    } catch (e) {
        fail(`npm module undici is missing (${e.code}): run scripts/deps.sh --test (npm ci in tests/integration)`);
    }
}

// Opens a WebSocket and resolves once it is open; rejects on error or close before that.
function connectWs(url, { binaryType = 'arraybuffer', timeoutMs = 15000 } = {}) {
    const WS = WebSocketClass();
    return new Promise((resolve, reject) => {
        const ws = new WS(url);
        ws.binaryType = binaryType;
        const timer = setTimeout(() => {
            ws.close();
            reject(new TestFailure(`WebSocket ${url}: not open after ${timeoutMs} ms`));
        }, timeoutMs);
        const onError = () => {
            clearTimeout(timer);
            reject(new TestFailure(`WebSocket ${url}: error event before open`));
        };
        const onClose = (ev) => {
            clearTimeout(timer);
            reject(new TestFailure(`WebSocket ${url}: closed before open (code ${ev.code})`));
        };
        ws.addEventListener('error', onError);
        ws.addEventListener('close', onClose);
        ws.addEventListener('open', () => {
            clearTimeout(timer);
            ws.removeEventListener('error', onError);
            ws.removeEventListener('close', onClose);
            resolve(ws);
        });
    });
}

// Resolves with the close event of ws (for a socket that is open or closing).
function closed(ws) {
    if (ws.readyState === 3) return Promise.reject(new TestFailure('WebSocket already closed; close event missed'));
    return new Promise((resolve) => ws.addEventListener('close', resolve, { once: true }));
}

// Runs fn over items with at most `limit` in flight.
async function mapLimit(items, limit, fn) {
    const out = new Array(items.length);
    let next = 0;
    const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
        while (next < items.length) {
            const i = next++;
            out[i] = await fn(items[i], i);
        }
    });
    await Promise.all(workers);
    return out;
}

function killAll() {
    for (const s of servers) {
        try { s.proc.kill('SIGKILL'); } catch (e) { /* already gone */ }
    }
}

function report(msg) {
    process.stderr.write(`FAIL ${currentTest}: ${msg}\n`);
    for (const s of servers) {
        if (s.log) process.stderr.write(`--- server log (pid ${s.proc.pid}, last ${LOG_KEEP} bytes) ---\n${s.log}\n---\n`);
    }
}

let aborted = false;
// Fails the test from outside the main flow (server crash, watchdog).
function abort(msg) {
    if (aborted) return;
    aborted = true;
    report(msg);
    killAll();
    process.exit(1);
}

// Runs a test body with a watchdog. Exit status 0 only if the body resolves.
function run(name, body, { timeoutMs = 120000 } = {}) {
    currentTest = name;
    const started = Date.now();
    const dog = setTimeout(() => abort(`watchdog: test still running after ${timeoutMs / 1000} s`), timeoutMs);
    process.on('uncaughtException', (e) => abort(`uncaught exception: ${e && e.stack || e}`));
    process.on('unhandledRejection', (e) => abort(`unhandled rejection: ${e && e.stack || e}`));
    Promise.resolve()
        .then(body)
        .then((summary) => {
            clearTimeout(dog);
            for (const s of servers) {
                if (!s.stopping) {
                    abort('test body returned with a server still running (missing stop())');
                    return;
                }
            }
            process.stdout.write(`PASS ${name} in ${((Date.now() - started) / 1000).toFixed(1)} s` +
                `${summary ? ': ' + summary : ''}\n`);
            process.exit(0);
        })
        .catch((e) => {
            clearTimeout(dog);
            abort(e instanceof TestFailure ? e.message : (e && e.stack) || String(e));
        });
}

function info(msg) {
    process.stdout.write(`[${currentTest}] ${msg}\n`);
}

// The sanitizer runtime a server process runs under ('libasan', 'libtsan', 'libubsan'), or
// null. A sanitized server keeps freed memory in quarantine (ASan: up to 256 MiB) and shadow
// memory besides, so its RSS says nothing about leaks or bounds; LeakSanitizer checks at exit
// instead (a leak makes the server exit non-zero, which stop() fails on).
function sanitizer(pid) {
    const m = /lib[at]san|libubsan/.exec(fs.readFileSync(`/proc/${pid}/maps`, 'utf8'));
    return m ? m[0] : null;
}

module.exports = {
    TestFailure, sanitizer, fail, check, checkEq, sleep, withTimeout, pollUntil, parseOptions, freePort,
    httpRequest, Server, parseMetrics, connectionGauge, connectionCounter, settled, run, info,
    WebSocketClass, connectWs, closed, mapLimit, abort,
};
