// Two "nodes" on loopback: torchrun started twice with --nnodes 2 --nproc_per_node 1 (node ranks 0 and 1), so each
// rank sees LOCAL_WORLD_SIZE=1 and joinJob picks the torch backend on its own; the sidecars meet in the store that
// torchrun's agent hosts (TORCHELASTIC_USE_AGENT_STORE). Every result against its reference, bit for bit.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { expectedOps, hasTorch } from '../../test/torch-jobs.ts';

const ROOT = new URL('../../../../', import.meta.url).pathname;
const hasTorchrun = spawnSync('torchrun', ['--help']).status === 0;
if (!hasTorchrun && process.env.CI) throw new Error('torchrun is missing: CI must install python3-torch');
const out = mkdtempSync(join(tmpdir(), 'wgpt-torchrun-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });

/** One torchrun "node": resolves with its exit status and output. */
function node(nodeRank: number, port: number) {
  // Debian's torchrun needs --redirects (and --tee to see the output) with --no_python.
  const args = [
    '--nnodes',
    '2',
    '--nproc_per_node',
    '1',
    '--node_rank',
    String(nodeRank),
    '--master_addr',
    '127.0.0.1',
    '--master_port',
    String(port),
    '--redirects',
    '2',
    '--tee',
    '2',
    '--no_python',
    process.execPath,
    'scripts/run-ts.mjs',
    'packages/runtime/test/dist-rank.ts',
    'ops',
    out,
  ];
  const child = spawn('torchrun', args, {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TEST_CHUNK: '4099', WGPT_DIST_BACKEND: '', WGPT_DIST_JOIN_TIMEOUT: '120' },
  });
  let text = '';
  child.stdout.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr.on('data', (d: Buffer) => (text += d.toString()));
  return new Promise<{ code: number | null; text: string }>((resolve) =>
    child.on('exit', (code) => resolve({ code, text })),
  );
}

it.skipIf(!hasTorch || !hasTorchrun)(
  'torchrun on two nodes: the torch backend by itself, the same bits',
  async () => {
    const port = await freePort();
    const [a, b] = await Promise.all([node(0, port), node(1, port)]);
    expect(a.code, a.text).toBe(0);
    expect(b.code, b.text).toBe(0);
    for (const r of [0, 1]) {
      expect(readFileSync(join(out, `backend-rank${r}.txt`), 'utf8')).toBe('TorchCollective');
      for (const [file, want] of expectedOps(2, r)) {
        const got = readFileSync(join(out, file));
        expect(got.equals(Buffer.from(want.buffer, want.byteOffset, want.byteLength)), file).toBe(true);
      }
    }
  },
  120_000,
);
