// `wgpt experiment refusal` end to end at tiny sizes (the numbers mean nothing at these sizes; the wiring does): it
// writes its data, checkpoints and results, its table is the same for the same seed, the rates it reports are the
// ones eval-factuality computes from its checkpoints and question files, and bad flags are usage errors.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const ROOT = new URL('..', import.meta.url).pathname;
const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'wgpt-refusal-'));

async function wgpt(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run('node', ['scripts/wgpt.mjs', ...args], {
      cwd: ROOT,
      timeout: 600_000,
      maxBuffer: 64 << 20,
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

// 2 known people (1 with questions in SFT), 1 never-existed to probe, 1 to evaluate; a 1-layer model, a few steps.
const TINY = (
  '--known 2 --qa-share 0.5 --never-train 1 --never-eval 1 --docs 2 --vocab-size 320 ' +
  '--layers 1 --channels 32 --heads 2 -T 96 ' +
  '-B 2 --pretrain-steps 4 --sft-steps 3 --refusal-steps 3 --samples 2 --seed 5'
).split(' ');

describe('wgpt experiment refusal', () => {
  it(
    'runs end to end; the same seed gives the same results; eval-factuality agrees',
    { timeout: 600_000 },
    async () => {
      const a = await wgpt('experiment', 'refusal', ...TINY, '--out', join(dir, 'a'), '--json');
      expect(a.stderr).toBe('');
      expect(a.code).toBe(0);
      const b = await wgpt('experiment', 'refusal', ...TINY, '--out', join(dir, 'b'), '--json');
      expect(b.code).toBe(0);
      const ra = JSON.parse(a.stdout.trim().split('\n').at(-1)!);
      const rb = JSON.parse(b.stdout.trim().split('\n').at(-1)!);
      for (const k of ['sft', 'refusal', 'probe', 'docOnly', 'table']) expect(rb[k], k).toEqual(ra[k]);
      expect(a.stdout).toContain(ra.table);
      // 6 facts x 2 phrasings about each of: 1 person with questions in SFT, 1 only in the documents, 1 never existed.
      expect(ra.probe.questions).toBe(12 + 12 + 12);
      // The third phrasing of each fact about the SFT person (known), the other never-existed one, and the rest.
      expect([ra.sft.known.n, ra.sft.neverSeen.n, ra.docOnly.sft.length]).toEqual([6, 6, 6]);
      // The table has the rows of people only in the documents.
      expect(ra.table).toMatch(/people only in documents: refusal/);
      const data = join(dir, 'a', 'data');
      for (const f of [
        'documents.txt',
        'sft.jsonl',
        'eval-known.jsonl',
        'eval-documents-only.jsonl',
        'eval-never-seen.jsonl',
        'probe.jsonl',
      ]) {
        expect(existsSync(join(data, f)), f).toBe(true);
      }
      expect(readFileSync(join(data, 'sft.jsonl'), 'utf8').trimEnd().split('\n')).toHaveLength(12);
      // The probe's lines are wgpt probe's: wgpt chat refusals turns them into fine-tuning data.
      const mix = await wgpt('chat', 'refusals', '--probe', join(data, 'probe.jsonl'), '-o', join(dir, 'mix.jsonl'));
      expect(mix.stderr).toBe('');
      expect(mix.stdout).toMatch(/probe\.jsonl: \d+ known and \d+ unknown questions/);

      // The table's numbers are eval-factuality's on the same checkpoint and questions.
      const e = await wgpt(
        'eval-factuality',
        '--checkpoint',
        ra.checkpoints.refusal,
        '--tokenizer',
        ra.tokenizer,
        '--known',
        join(data, 'eval-known.jsonl'),
        '--never-seen',
        join(data, 'eval-never-seen.jsonl'),
        '--max-tokens',
        '24',
        '--json',
      );
      expect(e.stderr).toBe('');
      expect(JSON.parse(e.stdout).metrics).toEqual(ra.refusal);

      // An output folder in use is kept unless --overwrite.
      const again = await wgpt('experiment', 'refusal', ...TINY, '--out', join(dir, 'a'));
      expect(again).toMatchObject({ code: 2, stdout: '' });
      expect(again.stderr).toBe(
        `wgpt: --out ${join(dir, 'a')} already holds files; choose another folder, or pass --overwrite\n`,
      );
    },
  );

  it('flags that do not fit are usage errors', async () => {
    const r = await wgpt('experiment', 'refusal', '--channels', '30', '--heads', '4', '--out', join(dir, 'c'));
    expect(r).toEqual({ code: 2, stdout: '', stderr: 'wgpt: --channels 30 is not a multiple of --heads 4\n' });
    // A context too short for the questions is found before any training.
    const t = await wgpt('experiment', 'refusal', ...TINY.map((a) => (a === '96' ? '24' : a)), '--out', join(dir, 'd'));
    expect(t.code).toBe(1);
    expect(t.stderr).toMatch(
      /^wgpt: a question with its reply takes up to \d+ tokens, more than the context 24: raise/,
    );
    expect(existsSync(join(dir, 'd', 'base'))).toBe(false);
  });
});
