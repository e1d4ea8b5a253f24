// Bad input gets an error a user can act on: unknown adapter, no adapter, WGSL that does not compile, a dispatch
// WebGPU rejects, a lost device; and how the CLI reports each kind of error (one line, or a stack for bugs).
import { CommanderError, InvalidArgumentError } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemErrorMessage, UsageError, WgptError, withPath } from '@wgpt/base';
import { reportError } from '@wgpt/cli';
import * as runtime from '@wgpt/runtime';
import {
  DeviceLostError,
  fillSpec,
  Gpu,
  GpuValidationError,
  KernelCompileError,
  NoAdapterError,
  pickAdapter,
  tensor,
  type KernelSpec,
} from '@wgpt/runtime';
import { testGpu } from '@wgpt/runtime/testing';
import * as tokenizer from '@wgpt/tokenizer';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});
afterAll(() => gpu.destroy());

const broken: KernelSpec = {
  name: 'broken_for_test',
  version: 'v1',
  source:
    'struct Params { n: u32 }\n' +
    '@group(0) @binding(0) var<storage, read_write> out: array<f32>;\n' +
    '@group(0) @binding(1) var<uniform> params: Params;\n' +
    '@compute @workgroup_size(64)\n' +
    'fn main(@builtin(global_invocation_id) g: vec3<u32>) {\n' +
    '  out[g.x] = undefined_thing;\n' +
    '}\n',
  file: 'tests/broken.wgsl',
  bindings: [
    { name: 'out', kind: 'storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: [{ name: 'n', type: 'u32' }],
};

describe('adapter selection', () => {
  const list = [
    { index: 0, backend: 'vulkan', name: 'NVIDIA H100', software: false },
    { index: 1, backend: 'vulkan', name: 'SwiftShader Device (Subzero)', software: true },
  ];
  it('prefers hardware, takes names, substrings and indices', () => {
    expect(pickAdapter(list, undefined).name).toBe('NVIDIA H100');
    expect(pickAdapter(list, 'swiftshader').index).toBe(1);
    expect(pickAdapter(list, 1).index).toBe(1);
    expect(pickAdapter(list, '0').index).toBe(0);
  });
  it('an unknown name lists the adapters', () => {
    expect(() => pickAdapter(list, 'radeon')).toThrow(NoAdapterError);
    expect(() => pickAdapter(list, 'radeon')).toThrow(
      new RegExp(
        'No adapter named "radeon"\\. Adapters:\\n {2}\\[0\\] NVIDIA H100 \\(vulkan\\)\\n ' +
          '{2}\\[1\\] SwiftShader Device \\(Subzero\\) \\(vulkan, software\\)',
      ),
    );
    expect(() => pickAdapter(list, 7)).toThrow(/No adapter with index 7/);
  });
  it('no adapter at all says what to install', () => {
    expect(() => pickAdapter([], undefined)).toThrow(/apt-get install .*libvulkan1/);
  });
  it('Gpu.open with an unknown adapter fails with the list', async () => {
    await expect(Gpu.open({ adapter: 'no-such-gpu' })).rejects.toThrow(
      /No adapter named "no-such-gpu"\. Adapters:\n.*SwiftShader/,
    );
  });
});

describe('kernel errors', () => {
  it('a WGSL compile error names kernel, file, line and message', async () => {
    const err = await gpu.compile(broken).catch((e: Error) => e);
    expect(err).toBeInstanceOf(KernelCompileError);
    expect((err as Error).message).toMatch(/broken_for_test@v1/);
    expect((err as Error).message).toMatch(/tests\/broken\.wgsl:6:\d+: .*undefined_thing/);
  });

  it('a dispatch WebGPU rejects names the kernel and the shapes at the next sync', async () => {
    // A buffer without STORAGE usage bound as storage: a validation error inside the dispatch's error scope.
    const bad = gpu.device.createBuffer({ size: 256, usage: GPUBufferUsage.COPY_DST });
    gpu.dispatch(fillSpec, {
      buffers: { out: bad },
      uniforms: { n: 64, bits: 0 },
      workgroups: [1],
      context: 'n=64 (test)',
    });
    const err = await gpu.sync().catch((e: Error) => e);
    expect(err).toBeInstanceOf(GpuValidationError);
    expect((err as Error).message).toMatch(
      /dispatching fill@v1 \(packages\/runtime\/src\/builtin\/fill\.wgsl\) workgroups \(1, 1, 1\) \[n=64 \(test\)\]/,
    );
    bad.destroy();
    // The device stays usable afterwards.
    const t = tensor(gpu, [1, 2, 3], [3]);
    expect(Array.from(await t.read())).toEqual([1, 2, 3]);
    t.dispose();
  });

  it('missing uniforms and unknown overrides are refused before anything is recorded', () => {
    const t = tensor(gpu, [0], [1]);
    expect(() => gpu.dispatch(fillSpec, { buffers: { out: t.buffer }, uniforms: { n: 1 }, workgroups: [1] })).toThrow(
      /uniform "bits" not given/,
    );
    expect(() =>
      gpu.dispatch(fillSpec, {
        buffers: { out: t.buffer },
        uniforms: { n: 1, bits: 0 },
        overrides: { TILE: 8 },
        workgroups: [1],
      }),
    ).toThrow(/no override "TILE"/);
    expect(() => gpu.dispatch(fillSpec, { buffers: {}, uniforms: { n: 1, bits: 0 }, workgroups: [1] })).toThrow(
      /no buffer given for binding "out"/,
    );
    t.dispose();
  });
});

describe('device loss', () => {
  it('is reported, and every later call throws instead of hanging', async () => {
    const other = await Gpu.open();
    const t = tensor(other, [1, 2], [2]);
    const errors: unknown[] = [];
    const origError = console.error;
    console.error = (...a: unknown[]) => void errors.push(a);
    try {
      other.device.destroy(); // as a driver reset would
      await other.device.lost;
      await new Promise((r) => setTimeout(r, 0));
      expect(other.lost).toBe(true);
      expect(() => tensor(other, [1], [1]).read()).toThrow(DeviceLostError);
      await expect(t.read()).rejects.toThrow(DeviceLostError);
      expect(String(errors[0])).toMatch(/lost/);
    } finally {
      console.error = origError;
    }
  });
});

describe('error classes', () => {
  it('every error class the runtime and the tokenizer export is a WgptError', () => {
    const exported = Object.entries({ ...runtime, ...tokenizer });
    const classes = exported.filter(([k, v]) => k.endsWith('Error') && typeof v === 'function') as [string, Function][];
    expect(classes.map(([k]) => k).sort()).toEqual([
      ...['CliError', 'DeviceLostError', 'DisallowedSpecialError', 'GpuValidationError', 'KernelCompileError'],
      ...['NoAdapterError', 'RankFileError', 'TokenizerConfigError', 'UsageError', 'VocabSizeError', 'WgptError'],
    ]);
    for (const [name, cls] of classes) expect(cls === WgptError || cls.prototype instanceof WgptError, name).toBe(true);
    const special = new tokenizer.DisallowedSpecialError('<|endoftext|>', 3);
    expect(special).toMatchObject({ name: 'DisallowedSpecialError', exitCode: 1 });
    expect(new tokenizer.RankFileError('f:1: bad', 'f', 1)).toMatchObject({
      name: 'RankFileError',
      exitCode: 1,
      line: 1,
    });
    expect(new UsageError('x').exitCode).toBe(2);
  });
});

describe('how the CLI reports an error', () => {
  // Node's system errors as fs calls throw them: code, errno, syscall, and a path when the call had one.
  const system = (code: string, syscall: string, path?: string, dest?: string) =>
    Object.assign(new Error(`${code}: message, ${syscall} '${path}'`), { code, errno: -1, syscall, path, dest });
  const text = (e: unknown) => reportError(e, false).text;
  const noSpace = 'no space left on the device: free some space or write somewhere else';

  it('a system error about a file is one line naming the file, exit status 1', () => {
    expect(reportError(system('EACCES', 'open', '/data/x.bin'), false)).toEqual({
      text: 'wgpt: /data/x.bin: permission denied: check its permissions or choose another path',
      exitCode: 1,
    });
    expect(text(system('EROFS', 'mkdir', '/ro'))).toBe('wgpt: /ro: the file system is read-only: write somewhere else');
    expect(text(system('ENOENT', 'rename', 'a.tmp', 'a'))).toBe('wgpt: a.tmp -> a: no such file or folder');
    expect(text(system('ENOSPC', 'write'))).toBe(`wgpt: write: ${noSpace}`);
    expect(text(system('ESOMETHING', 'open', 'f'))).toBe('wgpt: f: ESOMETHING (open)');
    const debug = reportError(system('EACCES', 'open', '/data/x.bin'), true).text;
    expect(debug).toMatch(/^wgpt: \/data\/x\.bin: permission denied.*\nError: EACCES.*\n\s+at /);
    expect(systemErrorMessage(new Error('plain'))).toBeNull();
  });

  it('withPath names the file a bare write error was about', () => {
    const bare = system('ENOSPC', 'write');
    expect(() => withPath('out/model.bin', () => { throw bare; })).toThrow(bare);
    expect(systemErrorMessage(bare)).toBe(`out/model.bin: ${noSpace}`);
    // A path the error already has is kept; other errors pass through untouched.
    const named = system('EISDIR', 'open', 'x');
    expect(() => withPath('y', () => { throw named; })).toThrow(named);
    expect(named.path).toBe('x');
    expect(withPath('z', () => 7)).toBe(7);
  });

  it('WgptErrors are their message and exit code; a stack only with --debug', () => {
    expect(reportError(new WgptError('data/x: not a shard'), false)).toEqual({
      text: 'wgpt: data/x: not a shard',
      exitCode: 1,
    });
    expect(reportError(new UsageError('--steps: bad'), false)).toEqual({ text: 'wgpt: --steps: bad', exitCode: 2 });
    expect(reportError(new NoAdapterError('no adapter'), true).text).toMatch(
      /^wgpt: NoAdapterError: no adapter\n\s+at /,
    );
  });

  it("commander's errors were printed by commander: exit status 2, or 0 for --help and --version", () => {
    const unknown = new CommanderError(1, 'commander.unknownOption', "error: unknown option '--x'");
    expect(reportError(unknown, false)).toEqual({ text: '', exitCode: 2 });
    expect(reportError(new CommanderError(0, 'commander.version', '0.1.0'), false)).toEqual({ text: '', exitCode: 0 });
    // One thrown by a command's own code was not printed.
    expect(reportError(new InvalidArgumentError('bad value'), false)).toEqual({ text: 'wgpt: bad value', exitCode: 2 });
  });

  it('anything else is a bug: the stack, and a request to report it', () => {
    const r = reportError(new TypeError('x is undefined'), false);
    expect(r.exitCode).toBe(1);
    expect(r.text).toMatch(/^wgpt: unexpected error \(a bug in wgpt; please report it with this output\):\n/);
    expect(r.text).toMatch(/\nTypeError: x is undefined\n\s+at /);
    expect(reportError('a string', false).text).toMatch(/\na string$/);
  });
});
