import suite from './tokenizer.bench.ts';
const quick = process.argv.includes('--quick');
const t0 = performance.now();
const rows = await suite.run({ quick, log: (m) => console.error(m) });
console.log('| name | shape | median ms | rate | vs baseline | check | note |');
console.log('|---|---|---|---|---|---|---|');
for (const r of rows) console.log(`| ${r.name} | ${r.shape} | ${r.medianMs.toFixed(1)} | ${r.rate ? r.rate.value.toFixed(2) + ' ' + r.rate.unit : ''} | ${r.ofBaseline ? r.ofBaseline.fraction.toFixed(2) + 'x ' + r.ofBaseline.baseline : ''} | ${r.check} | ${r.note ?? ''} |`);
console.error('total s', ((performance.now() - t0) / 1000).toFixed(1));
