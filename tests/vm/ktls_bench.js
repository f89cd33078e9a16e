// kTLS against userspace TLS against plain ws, measured in one run (scripts/vm.sh with
// VM_BENCH=1 runs it inside the VM, after the tests). Scenario 2's shape (one room of
// subscribers fed by a few publishers) at a fixed offered rate low enough that the client is
// not what limits it under emulation (--subs, --pubs, --rate change it), 128 B and 4 KiB
// messages, one server core, 15 s each: deliveries/s and the server's CPU per delivery,
// each against plain ws of the same run. Under emulation only the ratios mean anything.
//   node tests/vm/ktls_bench.js --server build/uringws --fanout build/bench/fanout/fanout
'use strict';

const { spawn, spawnSync } = require('node:child_process');
const path = require('node:path');
const h = require('../integration/lib/harness');
const T = require('../integration/lib/tlsutil');

const SECONDS = 15;

async function measure(o, certs, transport, size) {
    const ktls = transport === 'ktls' ? 'auto' : 'off';
    const server = await (await T.TlsServer.create(o.server, ['-c', '1', '-q', '--ktls', ktls, '--max-conns', '1000'],
        { certs })).start();
    const url = transport === 'ws' ? `ws://127.0.0.1:${server.port}/bench` : `wss://127.0.0.1:${server.tlsPort}/bench`;
    const r = spawnSync(o.fanout, ['--url', url, '--subs', String(o.subs), '--pubs', String(o.pubs), '--rate', String(o.rate),
        '--size', String(size), '--duration', String(SECONDS), '--warmup', '1', '--drain', '2',
        '--server-pid', String(server.pid), '--json'], { encoding: 'utf8', timeout: 120000 });
    h.check(r.status === 0, () => `fanout ${transport} ${size}: exit ${r.status}\n${r.stdout}${r.stderr}`);
    const j = JSON.parse(r.stdout);
    h.checkEq(j.lost, 0, `${transport} ${size} B: messages lost`);
    if (transport === 'ktls')
        h.check((await server.value('uringws_ktls_offloads_total', {})) >= o.subs + o.pubs,
            `${transport}: the connections were not handed to kernel TLS`);
    await server.stop();
    // server_cpu is the server's CPU (user + system, where the kernel encrypts) as a fraction
    // of one core over the measured window.
    return { transport, size, rate: j.deliveries_per_s, cpu: j.server_cpu, perDelivery: (j.server_cpu * 1e6) / j.deliveries_per_s };
}

h.run('ktls_bench', async () => {
    const o = h.parseOptions({ fanout: { type: 'string' }, subs: { type: 'string' }, pubs: { type: 'string' },
        rate: { type: 'string' } });
    o.subs = Number(o.subs || 100);
    o.pubs = Number(o.pubs || 5);
    o.rate = Number(o.rate || 4);
    h.check(o.fanout, '--fanout PATH is required');
    const certs = T.makeCerts();
    const lines = [];
    for (const size of [128, 4096]) {
        const rows = [];
        for (const t of ['ws', 'tls', 'ktls']) rows.push(await measure(o, certs, t, size));
        const base = rows[0];
        for (const r of rows) {
            const line = `${r.size} B ${r.transport.padEnd(4)}: ${Math.round(r.rate)} deliveries/s, server CPU ` +
                `${(r.cpu * 100).toFixed(1)}% of a core, ${r.perDelivery.toFixed(1)} us/delivery (${(r.perDelivery / base.perDelivery).toFixed(2)}x ws)`;
            h.info(line);
            lines.push(line);
        }
    }
    return `${path.basename(o.server)}: ${lines.join('; ')}`;
}, { timeoutMs: 900000 });
