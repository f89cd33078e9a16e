// The built-in chat page in a real browser: headless Chromium (Debian's, driven by
// playwright-core) loads GET / in two pages, which join one room (one from location.hash, one
// with the room form), exchange messages both ways (rendered as text, never as HTML; own
// messages marked), show non-JSON and binary frames from a plain WebSocket client, keep a
// usable layout on a phone-sized viewport, and reconnect by themselves after the server
// restarts. Screenshots go to --screenshot (desktop) and <name>-narrow.png beside it (360 px).
// A missing Chromium is a failure, not a skip.
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./lib/harness');

const ROOM = 'browser test \u00fc';
const ARGS = ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'];

// Resolves when the page shows a chat message (li.msg) whose text is exactly `text`; returns
// {own, nick, raw} of that line.
async function waitForMessage(page, text, what) {
    try {
        await page.waitForFunction((t) => [...document.querySelectorAll('#messages li.msg .text')]
            .some((e) => e.textContent === t), text, { timeout: 10000 });
    } catch (e) {
        const shown = await page.$eval('#messages', (el) => el.innerText);
        h.fail(`${what}: ${JSON.stringify(text)} not shown within 10 s; #messages shows:\n${shown}`);
    }
    return page.evaluate((t) => {
        const li = [...document.querySelectorAll('#messages li.msg')].find((l) => l.querySelector('.text').textContent === t);
        return { own: li.classList.contains('own'), raw: li.classList.contains('raw'), nick: li.querySelector('.nick').textContent };
    }, text);
}

async function waitForState(page, state, ms, what) {
    try {
        await page.waitForSelector(`#status[data-state="${state}"]`, { timeout: ms });
    } catch (e) {
        const now = await page.$eval('#status', (el) => `${el.dataset.state} (${el.title})`);
        h.fail(`${what}: #status not "${state}" within ${ms} ms; it is ${now}`);
    }
}

async function main() {
    const o = h.parseOptions({ screenshot: { type: 'string' }, chromium: { type: 'string' } });
    const exe = o.chromium || '/usr/bin/chromium';
    h.check(fs.existsSync(exe), `${exe} not found: install Chromium with scripts/deps.sh --test (Debian package chromium)`);
    h.check(o.screenshot, 'missing --screenshot PATH');
    let chromium;
    try {
        ({ chromium } = require('playwright-core'));
    } catch (e) {
        h.fail(`npm module playwright-core is missing (${e.code}): run scripts/deps.sh --test`);
    }

    let server = await new h.Server(o.server, ['-c', '2']).start();
    const port = server.port;
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'uringws-chromium-'));
    let ctx = null;
    try {
        ctx = await chromium.launchPersistentContext(profile, {
            executablePath: exe, headless: true, args: ARGS, viewport: { width: 1000, height: 700 },
        });
        const pageErrors = [];
        const open = async (url) => {
            const p = await ctx.newPage();
            p.on('pageerror', (e) => pageErrors.push(`${url}: ${e.message}`));
            const res = await p.goto(url);
            h.checkEq(res.status(), 200, `GET ${url} in Chromium`);
            return p;
        };
        const base = `http://127.0.0.1:${port}/`;

        const p1 = await open(`${base}#${encodeURIComponent(ROOM)}`);
        await waitForState(p1, 'open', 10000, 'page 1 joining from location.hash');
        h.checkEq(await p1.inputValue('#room'), ROOM, 'page 1 room field after joining from the hash');

        const p2 = await open(base);
        await waitForState(p2, 'open', 10000, 'page 2 joining the default room');
        h.checkEq(await p2.inputValue('#room'), 'lobby', 'default room');
        await p2.fill('#room', ROOM);
        await p2.click('#join');
        await p2.waitForFunction((r) => [...document.querySelectorAll('#messages li.sys')]
            .some((l) => l.textContent.includes(`Joined room \u201c${r}\u201d`)), ROOM, { timeout: 10000 })
            .catch(() => h.fail('page 2 did not report joining the room after #join'));
        await waitForState(p2, 'open', 10000, 'page 2 after #join');
        h.checkEq(decodeURIComponent(new URL(p2.url()).hash.slice(1)), ROOM, 'page 2 location.hash after #join');

        // Names the server would answer with 400 are refused in the page; it stays in its room.
        for (const bad of ['a/b', '\u00e9'.repeat(33)]) {
            const before = await p2.$$eval('#messages li.sys', (l) => l.length);
            await p2.fill('#room', bad);
            await p2.click('#join');
            await p2.waitForFunction((n) => {
                const l = document.querySelectorAll('#messages li.sys');
                return l.length > n && l[l.length - 1].textContent.includes('Invalid room name');
            }, before, { timeout: 5000 }).catch(() => h.fail(`room name ${JSON.stringify(bad)} not refused by the page`));
            h.checkEq(await p2.getAttribute('#room', 'aria-invalid'), 'true', `aria-invalid after room ${JSON.stringify(bad)}`);
            await waitForState(p2, 'open', 1000, `page 2 after refusing room ${JSON.stringify(bad)}`);
        }
        await p2.fill('#room', ROOM);
        await p2.click('#join');
        await p2.waitForFunction(() => !document.getElementById('room').hasAttribute('aria-invalid'), null, { timeout: 5000 });

        await p1.fill('#nick', 'alice');
        await p1.press('#nick', 'Tab');
        await p2.fill('#nick', 'bob');
        await p2.press('#nick', 'Tab');

        // A plain WebSocket client in the same room sees the pages' wire format and sends
        // frames the page has to show raw.
        const wire = [];
        const ws = await h.connectWs(`ws://127.0.0.1:${port}/${encodeURIComponent(ROOM)}`);
        ws.addEventListener('message', (ev) => wire.push(ev.data));

        const hostile = '<img src=x onerror="window.__xss=1"> h\u00e9llo \u{1F600} & "quotes"';
        await p1.fill('#input', hostile);
        await p1.press('#input', 'Enter');
        const m1 = await waitForMessage(p1, hostile, 'sender page (Enter)');
        const m2 = await waitForMessage(p2, hostile, 'other page');
        h.check(m1.own && !m2.own, () => `own-message marking: sender ${m1.own}, other ${m2.own}`);
        h.checkEq(m2.nick, 'alice', 'nick shown on the other page');
        h.checkEq(await p1.inputValue('#input'), '', 'input cleared after sending');

        await p2.fill('#input', 'reply from bob');
        await p2.click('#send');
        const r2 = await waitForMessage(p2, 'reply from bob', 'sender page (#send button)');
        const r1 = await waitForMessage(p1, 'reply from bob', 'other page');
        h.check(r2.own && !r1.own && r1.nick === 'bob', () => `reply: ${JSON.stringify({ r1, r2 })}`);

        await h.pollUntil(() => wire.length >= 2, 5000, () => `plain client got ${wire.length} of the pages' 2 messages`);
        const j = JSON.parse(wire[0]);
        h.check(j.nick === 'alice' && j.text === hostile && Number.isFinite(j.ts) && Math.abs(j.ts - Date.now()) < 60000,
            () => `wire format of the page's message: ${wire[0]}`);

        ws.send('plain text, not JSON');
        ws.send('{"foo": 1}');
        ws.send(new Uint8Array([1, 2, 3, 4, 5]));
        for (const p of [p1, p2]) {
            for (const t of ['plain text, not JSON', '{"foo": 1}', '[5 bytes of binary data]']) {
                const m = await waitForMessage(p, t, 'frame from a plain WebSocket client');
                h.check(m.raw && !m.own, () => `${JSON.stringify(t)} should be shown raw and not as own: ${JSON.stringify(m)}`);
            }
            const injected = await p.evaluate(() => ({ imgs: document.querySelectorAll('#messages img').length, xss: window.__xss }));
            h.check(injected.imgs === 0 && injected.xss === undefined, () => `message text was rendered as HTML: ${JSON.stringify(injected)}`);
        }
        ws.close(1000);

        // Phone-sized viewport: nothing overflows sideways and the controls stay on screen.
        await p2.setViewportSize({ width: 360, height: 640 });
        const layout = await p2.evaluate(() => {
            const box = (id) => { const r = document.getElementById(id).getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
            return { scrollWidth: document.documentElement.scrollWidth, boxes: ['nick', 'room', 'join', 'input', 'send', 'status'].map(box) };
        });
        h.check(layout.scrollWidth <= 360, () => `page is ${layout.scrollWidth} px wide on a 360 px viewport`);
        for (const [l, t, r, b] of layout.boxes) {
            h.check(l >= 0 && t >= 0 && r <= 360 && b <= 640 && r > l && b > t, () => `control outside the 360x640 viewport: ${JSON.stringify(layout.boxes)}`);
        }

        // Restart the server on the same port: both pages go to "reconnecting", then back
        // to "open" on their own and carry on.
        await server.stop();
        for (const p of [p1, p2]) await waitForState(p, 'reconnecting', 5000, 'page after the server stopped');
        server = await new h.Server(o.server, ['-c', '2']).start({ port });
        for (const p of [p1, p2]) await waitForState(p, 'open', 20000, 'page after the server came back');
        for (const p of [p1, p2]) {
            const lines = await p.$eval('#messages', (el) => el.innerText);
            h.check(/code 1001/.test(lines) && /Reconnected to room/.test(lines),
                () => `system lines for the restart missing:\n${lines}`);
        }
        await p1.fill('#input', 'after the restart');
        await p1.press('#input', 'Enter');
        await waitForMessage(p2, 'after the restart', 'other page after reconnecting');

        fs.mkdirSync(path.dirname(o.screenshot), { recursive: true });
        await p1.screenshot({ path: o.screenshot });
        await p2.screenshot({ path: o.screenshot.replace(/(\.png)?$/, '-narrow.png') });
        const png = fs.readFileSync(o.screenshot);
        h.check(png.length > 1000 && png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])),
            `${o.screenshot} is not a PNG screenshot`);
        h.check(pageErrors.length === 0, () => `JavaScript errors in the page:\n  ${pageErrors.join('\n  ')}`);
    } finally {
        if (ctx) await ctx.close();
        fs.rmSync(profile, { recursive: true, force: true });
    }
    await server.stop();
    return `screenshot ${o.screenshot}`;
}

h.run(path.basename(__filename, '.js'), main, { timeoutMs: 110000 });
