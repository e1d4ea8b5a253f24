// Prints how many threads this process has before and after loading the BLAS adder (sum.test.ts reads it).
import fs from 'node:fs';
import { blasAdder } from '../src/dist/sum.ts';

const count = () => fs.readdirSync('/proc/self/task').length;
const before = count();
const { adder } = await blasAdder();
console.log(
  JSON.stringify({ before, after: count(), adder: adder?.name ?? null, env: process.env.OPENBLAS_NUM_THREADS }),
);
