// The built-in chat page over https in a real browser: headless Chromium (Debian's, driven by
// playwright-core, --ignore-certificate-errors for the test chain made with openssl) loads
// https://127.0.0.1:TLSPORT/ in two pages, which must connect with wss: (the page derives
// the scheme from location.protocol) and chat both ways. The server must count the pages'
// WebSockets as TLS connections and see no TLS errors. Chromium also negotiates http/1.1 by
// ALPN (it offers h2 first). A missing Chromium is a failure, not a skip.
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./lib/harness');
const T = require('./lib/tlsutil');

const ROOM = 'wss browser \u00e9';
const ARGS = ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', '--ignore-certificate-errors'];

async function waitForText(page, text, what) {
    try {
        await page.waitForFunction((t) => [...document.querySelectorAll('#messages li.msg .text')]
            .some((e) => e.textContent === t), text, { timeout: 10000 });
    } catch (e) {
        const shown = await page.$eval('#messages', (el) => el.innerText);
        const short = (x) => (x.length > 300 ? `${x.slice(0, 150)}...(${x.length} chars)...${x.slice(-100)}` : x);
        h.fail(`${what}: ${JSON.stringify(short(text))} not shown within 10 s; #messages shows:\n${short(shown)}`);
    }
    return page.evaluate((t) => {
        const li = [...document.querySelectorAll('#messages li.msg')].find((l) => l.querySelector('.text').textContent === t);
        return { own: li.classList.contains('own'), nick: li.querySelector('.nick').textContent };
    }, text);
}

async function main() {
    const o = h.parseOptions({ screenshot: { type: 'string' }, chromium: { type: 'string' } });
    const exe = o.chromium || '/usr/bin/chromium';
    h.check(fs.existsSync(exe), `${exe} not found: install Chromium with scripts/deps.sh --test (Debian package chromium)`);
    let chromium;
    try {
        ({ chromium } = require('playwright-core'));
    } catch (e) {
        h.fail(`npm module playwright-core is missing (${e.code}): run scripts/deps.sh --test`);
    }
    const certs = T.makeCerts();
    const server = await (await T.TlsServer.create(o.server, ['-c', '2', '-v'], { certs })).start();
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'uringws-chromium-'));
    let ctx = null;
    try {
        ctx = await chromium.launchPersistentContext(profile, {
            executablePath: exe, headless: true, args: ARGS, ignoreHTTPSErrors: true, viewport: { width: 1000, height: 700 },
        });
        const pageErrors = [];
        const sockets = [];
        const open = async (url) => {
            const p = await ctx.newPage();
            p.on('pageerror', (e) => pageErrors.push(`${url}: ${e.message}`));
            p.on('websocket', (ws) => sockets.push(ws.url()));
            const res = await p.goto(url);
            h.checkEq(res.status(), 200, `GET ${url} in Chromium`);
            const sec = await res.securityDetails();
            h.check(sec && /^TLS 1\.[23]$/.test(sec.protocol), () => `page over TLS: ${JSON.stringify(sec)}`);
            return p;
        };
        const base = `https://127.0.0.1:${server.tlsPort}/`;
        const p1 = await open(`${base}#${encodeURIComponent(ROOM)}`);
        const p2 = await open(`${base}#${encodeURIComponent(ROOM)}`);
        for (const p of [p1, p2]) {
            await p.waitForSelector('#status[data-state="open"]', { timeout: 10000 })
                .catch(async () => h.fail(`page not connected: #status is ${await p.$eval('#status', (e) => `${e.dataset.state} (${e.title})`)}`));
        }
        const want = `wss://127.0.0.1:${server.tlsPort}/${encodeURIComponent(ROOM)}`;
        h.check(sockets.length === 2 && sockets.every((u) => u === want), () => `the pages' WebSocket URLs: ${JSON.stringify(sockets)}, want ${want}`);
        // Two WebSockets, plus whatever Chromium keeps for the page (favicon, preconnect).
        const tlsConns = await server.value('uringws_connections_by_transport', { transport: 'tls' });
        h.check(tlsConns >= 2, () => `TLS connections with both pages open: ${tlsConns}`);

        await p1.fill('#nick', 'alice');
        await p1.press('#nick', 'Tab');
        await p2.fill('#nick', 'bob');
        await p2.press('#nick', 'Tab');
        const hello = 'hello over wss \u{1F512} <b>not bold</b>';
        await p1.fill('#input', hello);
        await p1.press('#input', 'Enter');
        const a1 = await waitForText(p1, hello, 'sender page');
        const a2 = await waitForText(p2, hello, 'other page');
        h.check(a1.own && !a2.own && a2.nick === 'alice', () => `message marking: ${JSON.stringify({ a1, a2 })}`);
        const long = '\u20ac'.repeat(3990); // the input's 4000-character limit: 12 kB of UTF-8
        await p2.fill('#input', long);
        await p2.click('#send');
        await waitForText(p1, long, 'a 12 kB message from page 2');
        // A wss client from Node in the same room sees the pages' messages, and its 40 kB
        // non-JSON message (several TLS records) is shown raw by both pages.
        const ws = await T.connectWss(server.wssUrl(`/${encodeURIComponent(ROOM)}`), { ca: certs.ca });
        const got = new Promise((resolve) => ws.addEventListener('message', (e) => resolve(e.data), { once: true }));
        await p1.fill('#input', 'to everyone');
        await p1.press('#input', 'Enter');
        const wire = JSON.parse(await h.withTimeout(got, 5000, 'Node wss client receiving the page message'));
        h.check(wire.nick === 'alice' && wire.text === 'to everyone', () => `wire format: ${JSON.stringify(wire)}`);
        if (o.screenshot) {
            fs.mkdirSync(path.dirname(o.screenshot), { recursive: true });
            await p1.screenshot({ path: o.screenshot });
        }
        const big = 'y'.repeat(40000) + ' end';
        ws.send(big);
        for (const p of [p1, p2]) await waitForText(p, big, 'a 40 kB raw message from a Node wss client');
        ws.close(1000);

        h.check(pageErrors.length === 0, () => `JavaScript errors in the page:\n  ${pageErrors.join('\n  ')}`);
        const text = await server.metricsText();
        h.checkEq(T.labeledValue(text, 'uringws_tls_errors_total', {}), 0, 'TLS errors with Chromium');
    } finally {
        if (ctx) await ctx.close();
        fs.rmSync(profile, { recursive: true, force: true });
    }
    await server.stop();
    return 'two Chromium pages chatted over wss';
}

h.run(path.basename(__filename, '.js'), main, { timeoutMs: 110000 });
