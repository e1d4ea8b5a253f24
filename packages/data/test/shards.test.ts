import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { HEADER_BYTES, readShard, readShardHeader, ShardWriter, TokenDataLoader } from '../src/shards.ts';
import { isValidation, ShardSink, tokenizeDocument } from '../src/tokenize.ts';
import { tmpDir } from './helpers.ts';
import { bigEncoder, byteEncoder } from './toy-encoder.ts';

describe('llm.c shards', () => {
  it('writes uint16 shards (version 1) with magic, version and count, split at shardTokens', () => {
    const d = tmpDir();
    const w = new ShardWriter({ dir: d, prefix: 'x', split: 'train', part: 0, nVocab: 257, shardTokens: 10 });
    w.addDocument([256, 1, 2, 3, 4, 5, 6]);
    w.addDocument([256, 7, 8, 9, 10, 11]);
    const shards = w.close();
    expect(shards.map((s) => [s.file, s.tokens])).toEqual([
      ['x_train_00000_0000.bin', 10],
      ['x_train_00000_0001.bin', 3],
    ]);
    const b = fs.readFileSync(path.join(d, shards[0].file));
    expect([b.readInt32LE(0), b.readInt32LE(4), b.readInt32LE(8)]).toEqual([20240520, 1, 10]);
    expect(b.length).toBe(HEADER_BYTES + 20);
    expect([...readShard(path.join(d, shards[0].file))]).toEqual([256, 1, 2, 3, 4, 5, 6, 256, 7, 8]);
    expect(fs.readdirSync(d).filter((f) => f.includes('.tmp'))).toEqual([]);
  });
  it('refuses a shard size that is not a whole number of tokens from 1 to 2^31 - 1, and writes nothing', () => {
    for (const shardTokens of [0, -5, 2.5, 2 ** 31, NaN]) {
      const d = path.join(tmpDir(), 'shards');
      const make = () => new ShardWriter({ dir: d, prefix: 'x', split: 'train', part: 0, nVocab: 257, shardTokens });
      expect(make, String(shardTokens)).toThrow(`shard size ${shardTokens} tokens: it must be an integer from 1 to`);
      expect(fs.existsSync(d)).toBe(false);
    }
  });
  it('uses uint32 tokens with version 2 when the vocabulary exceeds 65,536', () => {
    const d = tmpDir();
    const w = new ShardWriter({ dir: d, prefix: 'x', split: 'val', part: 3, nVocab: 100_000 });
    w.addDocument(tokenizeDocument(bigEncoder, 'hi'));
    const [s] = w.close();
    const h = readShardHeader(path.join(d, s.file));
    expect(h).toEqual({ magic: 20240520, version: 2, tokens: 3, bytesPerToken: 4 });
    expect([...readShard(path.join(d, s.file))]).toEqual([99_999, 104 * 300, 105 * 300]);
  });
  it('rejects tokens outside the vocabulary', () => {
    const w = new ShardWriter({ dir: tmpDir(), prefix: 'x', split: 'train', part: 0, nVocab: 10 });
    expect(() => w.addDocument([3, 10])).toThrow(/out of range/);
    w.abort();
  });
  it('names the file and the problem for corrupt headers', () => {
    const d = tmpDir();
    const w = new ShardWriter({ dir: d, prefix: 'x', split: 'train', part: 0, nVocab: 257 });
    w.addDocument([256, 1, 2, 3]);
    const f = path.join(d, w.close()[0].file);
    const good = fs.readFileSync(f);
    const bad = (mut: (b: Buffer) => Buffer) => {
      const g = path.join(d, 'bad.bin');
      fs.writeFileSync(g, mut(Buffer.from(good)));
      return g;
    };
    expect(() =>
      readShardHeader(
        bad((b) => {
          b.writeInt32LE(123, 0);
          return b;
        }),
      ),
    ).toThrow(/bad\.bin: bad magic number 123 in header\[0\]/);
    expect(() =>
      readShardHeader(
        bad((b) => {
          b.writeInt32LE(9, 4);
          return b;
        }),
      ),
    ).toThrow(/bad\.bin: unsupported version 9/);
    expect(() =>
      readShardHeader(
        bad((b) => {
          b.writeInt32LE(99, 8);
          return b;
        }),
      ),
    ).toThrow(/bad\.bin: header\[2\] says 99 tokens .*truncated/);
    expect(() => readShardHeader(bad((b) => b.subarray(0, 100)))).toThrow(
      /bad\.bin: file is 100 bytes, shorter than the 1024-byte header/,
    );
    expect(() => readShardHeader(path.join(d, 'missing.bin'))).toThrow(/missing\.bin: cannot open \(ENOENT\)/);
  });
  it('TokenDataLoader yields shifted input/target batches', () => {
    const d = tmpDir();
    const w = new ShardWriter({ dir: d, prefix: 'x', split: 'train', part: 0, nVocab: 257 });
    w.addDocument(Array.from({ length: 50 }, (_, i) => i));
    const f = path.join(d, w.close()[0].file);
    const dl = new TokenDataLoader([f], 2, 4);
    const b = dl.nextBatch();
    expect([...b.inputs]).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect([...b.targets]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect([...dl.nextBatch().inputs].slice(0, 2)).toEqual([8, 9]);
  });
});

describe('tokenize stage', () => {
  it('puts <|endoftext|> before every document and splits train/val deterministically', () => {
    const d = tmpDir();
    const sink = new ShardSink(byteEncoder, { dir: d, prefix: 'toy', part: 0, valFraction: 0.3 });
    const ids = Array.from({ length: 40 }, (_, i) => `doc${i}`);
    for (const id of ids) sink.add({ id, text: `text of ${id}`, meta: {} });
    const shards = sink.close();
    const nVal = ids.filter((id) => isValidation(id, 0.3)).length;
    expect(nVal).toBeGreaterThan(3);
    expect(nVal).toBeLessThan(25);
    expect(sink.counts.val.docs).toBe(nVal);
    const train = readShard(path.join(d, shards.find((s) => s.split === 'train')!.file));
    expect(train[0]).toBe(256);
    expect([...train].filter((t) => t === 256).length).toBe(40 - nVal);
    expect(sink.counts.train.tokens).toBe(train.length);
  });
  it('gives validation at least one document per unit', () => {
    const d = tmpDir();
    const sink = new ShardSink(byteEncoder, { dir: d, prefix: 'toy', part: 0, valFraction: 1e-9 });
    for (let i = 0; i < 5; i++) sink.add({ id: `d${i}`, text: `doc ${i}`, meta: {} });
    const shards = sink.close();
    expect(sink.counts.val.docs).toBe(1);
    expect(sink.counts.train.docs).toBe(4);
    expect(shards.map((s) => s.split).sort()).toEqual(['train', 'val']);
    const none = new ShardSink(byteEncoder, { dir: tmpDir(), prefix: 'toy', part: 0, valFraction: 0 });
    none.add({ id: 'a', text: 'x', meta: {} });
    none.close();
    expect(none.counts.val.docs).toBe(0);
  });
});
