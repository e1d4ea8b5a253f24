// `wgpt tokenize` and `wgpt tokenizer train`. Results go to stdout, progress to stderr.
import { createReadStream, readFileSync, statSync, type Stats } from 'node:fs';
import { basename } from 'node:path';
import { intArg } from '@wgpt/base';
import { systemErrorReason, UsageError, WgptError } from '@wgpt/base/errors';
import { Option, type Command } from 'commander';
import type { Encoding } from './encoding.ts';
import { loadTokenizer, saveTokenizer } from './io.ts';
import { PATTERN_NAMES, type PatternName } from './patterns.ts';
import { getEncoding, isOpenAiEncodingName, OPENAI_ENCODING_NAMES } from './registry.ts';
import { encodeStream } from './stream.ts';
import { ChunkCounter, checkVocabSize, MAX_VOCAB_SIZE, trainFromCounts } from './train.ts';

export interface CliIo {
  out(s: string): void;
  err(s: string): void;
}

const processIo: CliIo = {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
};

/** An input of `wgpt tokenize` / `wgpt tokenizer train` that cannot be used: names the file, line or flag. */
export class CliError extends WgptError {
  override name = 'CliError';
}

function pickEncoding(name: string | undefined, dir: string | undefined): Encoding {
  if (dir !== undefined) return loadTokenizer(dir);
  const n = name ?? 'cl100k_base';
  if (!isOpenAiEncodingName(n)) {
    const names = OPENAI_ENCODING_NAMES.join(', ');
    throw new UsageError(
      `--encoding: unknown encoding ${JSON.stringify(n)}: expected one of ${names} or --tokenizer DIR`,
    );
  }
  return getEncoding(n);
}

function cannotRead(file: string, e: unknown): CliError {
  return new CliError(`${file}: cannot read: ${systemErrorReason(e) ?? (e as Error).message}`);
}

function readInputBytes(file: string): Uint8Array {
  try {
    return file === '-' ? readFileSync(0) : readFileSync(file);
  } catch (e) {
    throw cannotRead(file, e);
  }
}

/** Parse token ids written as numbers separated by spaces, commas or newlines (a JSON array works too). */
export function parseIds(text: string, source: string, enc: Encoding): number[] {
  const ids: number[] = [];
  const re = /[^\s,[\]]+/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    const v = m[0];
    const line = text.slice(0, m.index).split('\n').length;
    if (!/^\d+$/.test(v)) throw new CliError(`${source}:${line}: ${JSON.stringify(v)} is not a token id`);
    const id = Number(v);
    if (id >= enc.nVocab)
      throw new CliError(`${source}:${line}: token id ${id} is out of range for ${enc.name} (n_vocab ${enc.nVocab})`);
    try {
      enc.tokenBytes(id);
    } catch {
      throw new CliError(`${source}:${line}: token id ${id} is not a token of ${enc.name}`);
    }
    ids.push(id);
  }
  return ids;
}

interface TokenizeOpts {
  encoding?: string;
  tokenizer?: string;
  text?: string;
  file?: string;
  json?: boolean;
  decode?: boolean;
  stats?: boolean;
  allowSpecial?: boolean;
}

function countCodePoints(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdbff || i + 1 >= s.length) n++;
    else {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
      n++;
    }
  }
  return n;
}

async function tokenize(o: TokenizeOpts, io: CliIo): Promise<void> {
  if ((o.text === undefined) === (o.file === undefined)) {
    throw new UsageError('give exactly one of --text T or --file F');
  }
  if (o.decode && o.stats) throw new UsageError('--decode and --stats cannot be combined');
  const source = o.file ?? '--text';

  if (o.stats) {
    const bytes = o.text !== undefined ? new TextEncoder().encode(o.text) : readInputBytes(o.file!);
    const text = new TextDecoder().decode(bytes);
    const chars = countCodePoints(text);
    const encs: Encoding[] =
      o.tokenizer !== undefined
        ? [loadTokenizer(o.tokenizer)]
        : o.encoding
          ? [pickEncoding(o.encoding, undefined)]
          : OPENAI_ENCODING_NAMES.map((n) => getEncoding(n));
    const rows = encs.map((e) => ({ encoding: e.name, tokens: e.encodeBytes(bytes).length }));
    if (o.json) {
      io.out(
        `${JSON.stringify({
          characters: chars,
          utf8Bytes: bytes.length,
          bits: bytes.length * 8,
          tokens: Object.fromEntries(rows.map((r) => [r.encoding, r.tokens])),
        })}\n`,
      );
      return;
    }
    const fmt = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '-');
    let s = '';
    s += `characters   ${chars}\n`;
    s += `UTF-8 bytes  ${bytes.length}\n`;
    s += `bits         ${bytes.length * 8}\n`;
    s += `${'encoding'.padEnd(14)}${'tokens'.padStart(10)}${'chars/token'.padStart(13)}${'bytes/token'.padStart(13)}\n`;
    for (const r of rows) {
      s +=
        `${r.encoding.padEnd(14)}${String(r.tokens).padStart(10)}` +
        `${fmt(chars / r.tokens).padStart(13)}${fmt(bytes.length / r.tokens).padStart(13)}\n`;
    }
    io.out(s);
    return;
  }

  const enc = pickEncoding(o.encoding, o.tokenizer);
  if (o.decode) {
    const input = o.text ?? new TextDecoder().decode(readInputBytes(o.file!));
    const ids = parseIds(input, source, enc);
    const text = enc.decode(ids);
    io.out(o.json ? `${JSON.stringify(text)}\n` : text.endsWith('\n') ? text : `${text}\n`);
    return;
  }

  // Output is written batch by batch, so a large file never becomes one huge string.
  let first = true;
  const write = (batch: number[]) => {
    if (batch.length === 0) return;
    io.out((first ? (o.json ? '[' : '') : o.json ? ',' : ' ') + batch.join(o.json ? ',' : ' '));
    first = false;
  };
  const finish = () => io.out(o.json ? (first ? '[]\n' : ']\n') : '\n');
  if (o.allowSpecial) {
    const text = o.text ?? new TextDecoder().decode(readInputBytes(o.file!));
    write(enc.encode(text, { allowedSpecial: 'all' }));
  } else if (o.text !== undefined) {
    write(enc.encodeOrdinary(o.text));
  } else if (o.file === '-') {
    write(enc.encodeBytes(readInputBytes('-')));
  } else {
    const file = o.file!;
    let st: Stats;
    try {
      st = statSync(file);
    } catch (e) {
      throw cannotRead(file, e);
    }
    if (!st.isFile()) throw new CliError(`${file}: not a file (--file takes a file, or - for stdin)`);
    const total = st.size;
    let read = 0;
    let lastPct = -1;
    const t0 = performance.now();
    async function* bytes(): AsyncGenerator<Uint8Array> {
      for await (const b of createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
        read += b.length;
        const pct = Math.floor((100 * read) / Math.max(1, total));
        if (total > 8 << 20 && pct !== lastPct) {
          lastPct = pct;
          const mbs = read / 1e6 / ((performance.now() - t0) / 1000);
          io.err(`\rencoding ${basename(file)}: ${pct}% (${mbs.toFixed(1)} MB/s)${read >= total ? '\n' : ''}`);
        }
        yield b;
      }
    }
    for await (const batch of encodeStream(enc, bytes())) write(batch);
  }
  finish();
}

interface TrainCliOpts {
  input: string[];
  vocabSize: number;
  pattern: PatternName;
  out: string;
  special?: string[];
  name?: string;
}

async function trainCommand(o: TrainCliOpts, io: CliIo): Promise<void> {
  const vocabSize = o.vocabSize;
  const specials = (o.special ?? ['<|endoftext|>']).flatMap((s) => s.split(',')).filter((s) => s.length > 0);
  try {
    checkVocabSize(vocabSize, specials.length);
  } catch (e) {
    throw new UsageError(`--vocab-size: ${(e as Error).message}`);
  }
  const dup = specials.find((s, i) => specials.indexOf(s) !== i);
  if (dup !== undefined) throw new UsageError(`--special: ${JSON.stringify(dup)} is given twice`);
  const t0 = performance.now();
  const counter = new ChunkCounter(o.pattern);
  let totalBytes = 0;
  for (const file of o.input) {
    let st: Stats;
    try {
      st = statSync(file);
    } catch (e) {
      throw cannotRead(file, e);
    }
    if (!st.isFile()) throw new CliError(`${file}: not a file (--input takes text files)`);
    const size = st.size;
    let read = 0;
    for await (const b of createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
      counter.pushBytes(b);
      read += b.length;
      io.err(`\rreading ${basename(file)}: ${((100 * read) / Math.max(1, size)).toFixed(0)}%`);
    }
    counter.end(); // files are separate documents
    totalBytes += size;
    io.err('\n');
  }
  const tRead = performance.now();
  io.err(
    `${counter.counts.size} unique chunks in ${(totalBytes / 1e6).toFixed(1)} MB ` +
      `(${((tRead - t0) / 1000).toFixed(1)} s)\n`,
  );
  const trained = trainFromCounts(counter.counts, {
    vocabSize,
    pattern: o.pattern,
    specialTokens: specials,
    onProgress: (m, n) => io.err(`\rmerges ${m}/${n}`),
  });
  io.err('\n');
  const cfg = saveTokenizer(o.out, trained, o.name ?? basename(o.out));
  const secs = (performance.now() - t0) / 1000;
  if (trained.vocabSize < vocabSize)
    io.err(`note: the corpus ran out of pairs; vocabulary is ${trained.vocabSize} < ${vocabSize}\n`);
  io.out(
    `trained ${cfg.name}: vocab ${trained.vocabSize} ` +
      `(${trained.tokens.length - 256} merges + 256 bytes + ${specials.length} special), ` +
      `pattern ${o.pattern}, ${(totalBytes / 1e6).toFixed(2)} MB in ${secs.toFixed(1)} s\n` +
      `wrote ${o.out}/tokenizer.tiktoken and ${o.out}/tokenizer.json\n`,
  );
}

/** Register `tokenize` and `tokenizer train` on the program (see packages/cli/src/command.ts). */
export function register(program: Command, io: CliIo = processIo): void {
  program
    .command('tokenize')
    .description('encode text to token ids (or --decode ids, or --stats for all encodings)')
    .addOption(
      new Option('-e, --encoding <name>', 'encoding (cl100k_base if none is given)').choices(OPENAI_ENCODING_NAMES),
    )
    .option('--tokenizer <dir>', 'a tokenizer trained with `wgpt tokenizer train` instead of --encoding')
    .option('-t, --text <text>', 'the input text (or ids with --decode)')
    .option(
      '-f, --file <path>',
      'read the input from a file (- for stdin); bytes are encoded exactly, invalid UTF-8 included',
    )
    .option('--json', 'print JSON')
    .option('--decode', 'the input is token ids; print the text')
    .option('--stats', 'print characters, UTF-8 bytes, bits and tokens per encoding')
    .option(
      '--allow-special',
      'encode special-token text such as <|endoftext|> as special tokens (default: as plain text)',
    )
    .action(async (opts: TokenizeOpts) => tokenize(opts, io));

  const tok = program.command('tokenizer').description('train byte-level BPE vocabularies');
  tok
    .command('train')
    .description('learn a BPE vocabulary from text files and save it (tiktoken rank file + tokenizer.json)')
    .requiredOption('-i, --input <files...>', 'training text files (each is a separate document)')
    .requiredOption(
      '-n, --vocab-size <n>',
      'total vocabulary size (256 bytes + merges + specials)',
      intArg({ min: 256, max: MAX_VOCAB_SIZE }),
    )
    .addOption(new Option('-p, --pattern <name>', 'pre-tokenization pattern').choices(PATTERN_NAMES).default('gpt4'))
    .requiredOption('-o, --out <dir>', 'output directory')
    .option('-s, --special <tokens...>', 'special tokens appended after the merges (default <|endoftext|>)')
    .option('--name <name>', 'name stored in tokenizer.json (default: the output directory name)')
    .action(async (opts: TrainCliOpts) => trainCommand(opts, io));
}
