// A loss curve as a self-contained SVG (train loss per step, validation loss where measured).
export function lossPlotSvg(
  train: { step: number; loss: number }[],
  val: { step: number; loss: number }[],
  title: string,
): string {
  const W = 720;
  const H = 360;
  const pad = { l: 56, r: 16, t: 32, b: 40 };
  const all = [...train, ...val].filter((p) => Number.isFinite(p.loss));
  if (!all.length)
    return (
      `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}">` + `<text x="20" y="40">no data</text></svg>`
    );
  const maxStep = Math.max(...all.map((p) => p.step), 1);
  const lo = Math.min(...all.map((p) => p.loss));
  const hi = Math.max(...all.map((p) => p.loss));
  const span = hi - lo || 1;
  const x = (s: number) => pad.l + ((W - pad.l - pad.r) * s) / maxStep;
  const y = (l: number) => pad.t + ((H - pad.t - pad.b) * (hi - l)) / span;
  const path = (pts: { step: number; loss: number }[]) =>
    pts
      .filter((p) => Number.isFinite(p.loss))
      .map((p, i) => `${i ? 'L' : 'M'}${x(p.step).toFixed(1)},${y(p.loss).toFixed(1)}`)
      .join(' ');
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => lo + f * span);
  const esc = (s: string) => s.replace(/[<&>]/g, (c) => ({ '<': '&lt;', '&': '&amp;', '>': '&gt;' })[c]!);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${esc(title)}</text>`,
    ...ticks.map(
      (t) =>
        `<line x1="${pad.l}" x2="${W - pad.r}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" stroke="#eee"/>` +
        `<text x="${pad.l - 6}" y="${(y(t) + 4).toFixed(1)}" text-anchor="end">${t.toFixed(2)}</text>`,
    ),
    `<text x="${W / 2}" y="${H - 8}" text-anchor="middle">step (max ${maxStep})</text>`,
    `<path d="${path(train)}" fill="none" stroke="#1f77b4" stroke-width="1.5"/>`,
    val.length ? `<path d="${path(val)}" fill="none" stroke="#d62728" stroke-width="2"/>` : '',
    ...val.map((p) => `<circle cx="${x(p.step).toFixed(1)}" cy="${y(p.loss).toFixed(1)}" r="3" fill="#d62728"/>`),
    `<text x="${W - pad.r - 150}" y="${pad.t + 14}" fill="#1f77b4">train loss</text>`,
    val.length ? `<text x="${W - pad.r - 150}" y="${pad.t + 30}" fill="#d62728">validation loss</text>` : '',
    `</svg>`,
  ].join('\n');
}
