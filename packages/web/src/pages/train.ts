// Train live: a small GPT-2 learns the built-in text on this browser's WebGPU, with the loss drawn as it falls
// (uPlot), a sample every few steps, and pause/resume. The model and optimizer are @wgpt/gpt2's and @wgpt/kernels'
// (see trainer.ts for why the loop is the page's own).
import uPlot from 'uplot';
import type { Gpu } from '@wgpt/runtime';
import { paramCount } from '@wgpt/gpt2';
import { $, catchAll, el, openGpu, setStatus, showError } from './common.ts';
import { TRAIN_TEXT } from './corpus.ts';
import { numberField } from './model.ts';
import { PAGE_TRAIN_DEFAULTS, PageTrainer, pageTokenizer } from './trainer.ts';

declare global {
  interface Window {
    /** For tests: the run so far. */
    wgptTrain?: {
      state: 'loading' | 'ready' | 'running' | 'paused' | 'done' | 'error';
      losses: number[];
      samples: { step: number; text: string }[];
      /** The text's token ids, the model's shape and the run's settings. */
      ids?: number[];
      config?: PageTrainer['config'];
      options?: PageTrainer['o'];
      /** Points drawn by the chart (steps, losses). */
      plotted?: () => [number[], number[]];
      error?: string;
    };
  }
}

const state: NonNullable<Window['wgptTrain']> = { state: 'loading', losses: [], samples: [] };
window.wgptTrain = state;
let trainer: PageTrainer;
let plot: uPlot;
let pauseRequested = false;
const stepsDone: number[] = [];

function fail(e: unknown): void {
  showError(e);
  state.state = 'error';
  state.error = e instanceof Error ? e.message : String(e);
  const b = document.getElementById('toggle') as HTMLButtonElement | null;
  if (b) b.disabled = true;
}

function readInt(id: string, lo: number, hi: number): number {
  const input = $(id) as HTMLInputElement;
  const v = Number(input.value);
  if (input.value.trim() === '' || !Number.isInteger(v) || v < lo || v > hi) {
    const name = input.labels?.[0]?.textContent?.trim() ?? id;
    throw new Error(`${name}: ${input.value} is not an integer in [${lo}, ${hi}]`);
  }
  return v;
}

function build(gpu: Gpu): void {
  const c = trainer.config;
  const o = trainer.o;
  const steps = numberField('steps', 'Steps', '300', { min: '1', step: '1' });
  const every = numberField('sample-every', 'Sample every', '20', { min: '0', step: '1', title: '0: no samples' });
  const toggle = el('button', { id: 'toggle', type: 'button', text: 'Start' });
  const chart = el('div', { id: 'chart', class: 'chart', 'aria-label': 'training loss per step' });
  $('app').append(
    el('p', {
      id: 'about',
      class: 'counts',
      text:
        `GPT-2 L=${c.L} C=${c.C} NH=${c.NH} V=${c.V}, ${paramCount(c).toLocaleString('en')} parameters; ` +
        `B=${o.B} T=${o.T}, AdamW lr ${o.lr}; a BPE of ${c.V} tokens trained on the text ` +
        `(${TRAIN_TEXT.length} characters, ${trainer.ids.length} tokens); ${gpu.describe()}`,
    }),
    el('div', { class: 'controls' }, steps.label, every.label, toggle),
    el('p', { id: 'progress', class: 'counts', text: 'step 0' }),
    chart,
    el('h2', { text: 'Samples' }),
    el('pre', { id: 'samples', class: 'output' }),
  );
  plot = new uPlot(
    {
      width: Math.min(900, $('app').clientWidth || 900),
      height: 280,
      scales: { x: { time: false } },
      series: [{ label: 'step' }, { label: 'train loss', stroke: '#1f77b4', width: 2, points: { show: false } }],
      axes: [{ label: 'step' }, { label: 'loss' }],
      // The legend names the curve; values under the cursor would read '--' in a screenshot.
      legend: { show: true, live: false },
    },
    [[], []],
    chart,
  );
  state.plotted = () => [Array.from(plot.data[0]), Array.from(plot.data[1] as number[])];
  toggle.addEventListener('click', () => {
    if (state.state === 'running') {
      pauseRequested = true;
      toggle.disabled = true;
    } else void run().catch(fail);
  });
}

async function run(): Promise<void> {
  const total = readInt('steps', 1, 1_000_000);
  const every = readInt('sample-every', 0, 1_000_000);
  const toggle = $('toggle') as HTMLButtonElement;
  pauseRequested = false;
  state.state = 'running';
  toggle.textContent = 'Pause';
  const progress = $('progress');
  setStatus(`Training on ${trainer.gpu.describe()}…`);
  const t0 = performance.now();
  const s0 = trainer.steps;
  while (trainer.steps < total && !pauseRequested) {
    const { loss, gradNorm } = await trainer.step();
    const step = trainer.steps;
    state.losses.push(loss);
    stepsDone.push(step);
    plot.setData([stepsDone, state.losses]);
    const rate = ((step - s0) / ((performance.now() - t0) / 1000)).toFixed(1);
    const norm = gradNorm.toFixed(3);
    progress.textContent = `step ${step}/${total} | loss ${loss.toFixed(4)} | norm ${norm} | ${rate} steps/s`;
    if (!Number.isFinite(loss)) throw new Error(`step ${step}: the loss is ${loss}; reload the page to start over`);
    if (every > 0 && (step % every === 0 || step === total)) {
      const text = await trainer.sample(48, trainer.o.seed + step);
      state.samples.push({ step, text });
      $('samples').prepend(el('div', { class: 'sample' }, el('b', { text: `step ${step}: ` }), text));
    }
  }
  toggle.disabled = false;
  if (trainer.steps >= total) {
    state.state = 'done';
    toggle.textContent = 'Start';
    setStatus(`Done: ${trainer.steps} steps, loss ${state.losses.at(-1)!.toFixed(4)}; raise Steps to go on`, 'ok');
  } else {
    state.state = 'paused';
    toggle.textContent = 'Resume';
    setStatus(`Paused after step ${trainer.steps}`, 'ok');
  }
}

async function main(): Promise<void> {
  catchAll();
  const gpu = await openGpu();
  const o = PAGE_TRAIN_DEFAULTS;
  setStatus('Training a tokenizer on the text…');
  const enc = pageTokenizer(TRAIN_TEXT, o.vocabSize);
  trainer = new PageTrainer(gpu, enc, TRAIN_TEXT, o);
  state.ids = trainer.ids;
  state.config = trainer.config;
  state.options = o;
  build(gpu);
  state.state = 'ready';
  setStatus(`Ready on ${gpu.describe()}: press Start`, 'ok');
}

main().catch(fail);
