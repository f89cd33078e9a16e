// wss plumbing for the integration tests: a throwaway PKI made with the openssl command at
// test time (root CA -> intermediate CA -> leaf, in a temporary directory that is removed at
// exit; nothing is ever committed), HTTPS requests and WebSocket clients that trust that
// root, a ClientHello captured from Node's TLS stack for raw-socket tests, labeled /metrics
// values, and a server wrapper that can check health over TLS (for --no-plain).
'use strict';

const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const https = require('node:https');
const os = require('node:os');
const path = require('node:path');
const { Duplex } = require('node:stream');
const tls = require('node:tls');
const h = require('./harness');

// The suites the server offers, as Node (OpenSSL) names them, and the label the server's
// uringws_tls_handshakes_total{version,cipher} uses for each.
const SUITES = [
    { version: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256', label: 'aes128gcm', iana: 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256' },
    { version: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384', label: 'aes256gcm', iana: 'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384' },
    { version: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-CHACHA20-POLY1305', label: 'chacha20', iana: 'TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256' },
    { version: 'TLSv1.3', ciphers: 'TLS_AES_128_GCM_SHA256', label: 'aes128gcm', iana: 'TLS_AES_128_GCM_SHA256' },
    { version: 'TLSv1.3', ciphers: 'TLS_AES_256_GCM_SHA384', label: 'aes256gcm', iana: 'TLS_AES_256_GCM_SHA384' },
    { version: 'TLSv1.3', ciphers: 'TLS_CHACHA20_POLY1305_SHA256', label: 'chacha20', iana: 'TLS_CHACHA20_POLY1305_SHA256' },
];

function openssl(args, cwd) {
    try {
        execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
        h.fail(`openssl ${args.join(' ')}: ${e.stderr ? e.stderr.toString() : e.message}`);
    }
}

// Issues a certificate for `name` signed by `issuer` (null: self-signed), with the given
// extensions. Key type: 'ec' (P-256) or 'rsa' (2048 bits).
function issue(dir, name, subject, issuer, ext, keyType = 'ec') {
    const key = `${name}.key`, csr = `${name}.csr`, pem = `${name}.pem`, extFile = `${name}.ext`;
    const keyArgs = keyType === 'rsa' ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
    fs.writeFileSync(path.join(dir, extFile), ext.join('\n') + '\n');
    openssl(['req', '-new', ...keyArgs, '-nodes', '-keyout', key, '-out', csr, '-subj', subject], dir);
    const sign = issuer ? ['-CA', `${issuer}.pem`, '-CAkey', `${issuer}.key`, '-CAcreateserial'] : ['-signkey', key];
    openssl(['x509', '-req', '-in', csr, ...sign, '-out', pem, '-days', '2', '-sha256', '-extfile', extFile], dir);
    return { key: path.join(dir, key), cert: path.join(dir, pem) };
}

// root -> intermediate -> leaf (ECDSA, and an RSA leaf for the RSA suites). The server gets
// the chain file (leaf, then intermediate); clients trust only the root.
function makeCerts() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uringws-pki-'));
    process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
    const caExt = ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign'];
    const leafExt = ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature,keyEncipherment',
        'extendedKeyUsage=serverAuth', 'subjectAltName=IP:127.0.0.1,DNS:localhost'];
    const root = issue(dir, 'root', '/CN=uringws test root', null, caExt);
    issue(dir, 'int', '/CN=uringws test intermediate', 'root', [...caExt.slice(0, 1).map((e) => e + ',pathlen:0'), caExt[1]]);
    const leaf = issue(dir, 'leaf', '/CN=localhost', 'int', leafExt);
    const rsa = issue(dir, 'rsaleaf', '/CN=localhost', 'int', leafExt, 'rsa');
    const chain = path.join(dir, 'chain.pem');
    const rsaChain = path.join(dir, 'rsachain.pem');
    const intPem = fs.readFileSync(path.join(dir, 'int.pem'));
    fs.writeFileSync(chain, Buffer.concat([fs.readFileSync(leaf.cert), intPem]));
    fs.writeFileSync(rsaChain, Buffer.concat([fs.readFileSync(rsa.cert), intPem]));
    // A second, unrelated self-signed pair: its key does not match the leaf.
    const other = issue(dir, 'other', '/CN=other', null, leafExt);
    return {
        dir, ca: fs.readFileSync(root.cert, 'utf8'), caFile: root.cert,
        chain, key: leaf.key, rsaChain, rsaKey: rsa.key, otherKey: other.key, otherCert: other.cert,
    };
}

// GET over TLS on a fresh connection. Resolves {status, headers, body, alpn, protocol, cipher}.
function httpsRequest(port, urlPath, { ca, timeoutMs = 5000, ...tlsOpts } = {}) {
    return new Promise((resolve, reject) => {
        const req = https.request({ host: '127.0.0.1', port, path: urlPath, method: 'GET', ca, agent: false,
            timeout: timeoutMs, servername: 'localhost', ...tlsOpts }, (res) => {
            const chunks = [];
            const s = res.socket;
            const info = { alpn: s.alpnProtocol, protocol: s.getProtocol(), cipher: s.getCipher().standardName };
            res.on('data', (c) => chunks.push(c));
            res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks), ...info }));
            res.on('error', reject);
        });
        req.on('timeout', () => req.destroy(new Error(`HTTPS GET ${urlPath}: no answer in ${timeoutMs} ms`)));
        req.on('error', reject);
        req.end();
    });
}

// An undici dispatcher whose connections use these TLS options (ca, minVersion, ciphers...).
function dispatcher(tlsOpts) {
    const { Agent } = require('undici');
    return new Agent({ connect: { servername: 'localhost', ...tlsOpts } });
}

// Opens a wss WebSocket (undici, the browser API) and resolves once it is open.
function connectWss(url, tlsOpts, { binaryType = 'arraybuffer', timeoutMs = 15000, agent } = {}) {
    const WS = h.WebSocketClass();
    return new Promise((resolve, reject) => {
        const ws = new WS(url, { dispatcher: agent || dispatcher(tlsOpts) });
        ws.binaryType = binaryType;
        const timer = setTimeout(() => {
            ws.close();
            reject(new h.TestFailure(`WebSocket ${url}: not open after ${timeoutMs} ms`));
        }, timeoutMs);
        const onError = (ev) => {
            clearTimeout(timer);
            reject(new h.TestFailure(`WebSocket ${url}: error event before open${ev && ev.error ? ': ' + ev.error.message : ''}`));
        };
        const onClose = (ev) => {
            clearTimeout(timer);
            reject(new h.TestFailure(`WebSocket ${url}: closed before open (code ${ev.code})`));
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

// The bytes Node's TLS client sends first (its ClientHello record), captured through a
// stream that never answers: for raw-socket tests that need a real hello.
function captureClientHello(tlsOpts = {}) {
    return new Promise((resolve, reject) => {
        const chunks = [];
        let timer = null;
        const duplex = new Duplex({
            read() {},
            write(chunk, enc, cb) {
                chunks.push(Buffer.from(chunk));
                clearTimeout(timer);
                timer = setTimeout(() => { sock.destroy(); resolve(Buffer.concat(chunks)); }, 50);
                cb();
            },
        });
        const sock = tls.connect({ socket: duplex, servername: 'localhost', ...tlsOpts });
        sock.on('error', () => {}); // destroyed on purpose
        setTimeout(() => reject(new Error('no ClientHello written in 5 s')), 5000).unref();
    });
}

// The value of metric `name` whose labels include all of `labels` (summed over the rest; a
// series without labels matches {}), from /metrics text; undefined when no series matches.
function labeledValue(text, name, labels = {}) {
    let sum;
    const re = new RegExp(`^${name}(?:\\{([^}]*)\\})?\\s+(\\S+)$`, 'gm');
    for (const m of text.matchAll(re)) {
        const have = Object.fromEntries([...(m[1] || '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
        if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum = (sum || 0) + Number(m[2]);
    }
    return sum;
}

// A uringws server with a TLS listener. `tlsPort` is picked before start; with noPlain the
// health check and /metrics go over TLS (there is no plain port).
class TlsServer extends h.Server {
    constructor(bin, args, { certs, tlsPort, noPlain = false, cert, key }) {
        super(bin, ['--tls-port', String(tlsPort), '--tls-cert', cert || certs.chain, '--tls-key', key || certs.key,
            ...(noPlain ? ['--no-plain'] : []), ...args]);
        this.certs = certs;
        this.tlsPort = tlsPort;
        this.noPlain = noPlain;
    }

    static async create(bin, args, opts) {
        return new TlsServer(bin, args, { ...opts, tlsPort: await h.freePort() });
    }

    wssUrl(p = '/') {
        return `wss://127.0.0.1:${this.tlsPort}${p}`;
    }

    async waitHealthy(ms) {
        if (!this.noPlain) return super.waitHealthy(ms);
        const deadline = Date.now() + ms;
        while (Date.now() < deadline && !this.exit) {
            try {
                const r = await httpsRequest(this.tlsPort, '/healthz', { ca: this.certs.ca, timeoutMs: 1000 });
                if (r.status === 200) return true;
            } catch (e) {
                // not listening yet
            }
            await h.sleep(50);
        }
        return false;
    }

    async metricsText() {
        const r = this.noPlain ? await httpsRequest(this.tlsPort, '/metrics', { ca: this.certs.ca })
            : await h.httpRequest(this.port, '/metrics');
        h.checkEq(r.status, 200, 'GET /metrics status');
        return r.body.toString('utf8');
    }

    async value(name, labels) {
        const v = labeledValue(await this.metricsText(), name, labels);
        h.check(v !== undefined, () => `/metrics has no series ${name}${JSON.stringify(labels)}`);
        return v;
    }
}

module.exports = { SUITES, makeCerts, httpsRequest, dispatcher, connectWss, captureClientHello, labeledValue, TlsServer };
