// loss.svg: the curves drawn are the data given (each point where an affine map of step and loss puts it), the
// validation points are marked, and the file depends on the data alone.
import { describe, expect, it } from 'vitest';
import { lossPlotSvg } from './plot.ts';

/** The points of the SVG's data series, in order: each clipped path's M/L coordinates. */
function seriesPoints(svg: string): [number, number][][] {
  return [...svg.matchAll(/<g clip-path="[^"]*">\s*<path d="([^"]*)"/g)].map((m) =>
    [...m[1]!.matchAll(/[ML](-?[\d.]+) (-?[\d.]+)/g)].map((p) => [Number(p[1]), Number(p[2])]),
  );
}

/** The markers of series `i` (ECharts' SSR tags each data point's symbol with its series and index). */
const markers = (svg: string, i: number): number =>
  svg.match(new RegExp(`ecmeta_series_index="${i}" ecmeta_data_index="\\d+" ecmeta_ssr_type="chart"`, 'g'))?.length ??
  0;

describe('lossPlotSvg', () => {
  const train = [6.2, 6.0, 5.1, 5.5, 4.4, 4.3, 4.9, 3.8].map((loss, i) => ({ step: i + 1, loss }));
  const val = [
    { step: 4, loss: 5.6 },
    { step: 8, loss: 4.6 },
  ];

  it('puts every train point where an affine map of (step, loss) does, and marks each validation point', async () => {
    const svg = await lossPlotSvg(train, val, 'GPT-2 <L=2> & loss');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('GPT-2 &lt;L=2&gt; &amp; loss');
    const [t, v] = seriesPoints(svg);
    expect(t).toHaveLength(train.length);
    expect(v).toHaveLength(val.length);
    // The map from two anchors per axis at the ends of the data's range: steps 1 and 8, losses 6.2 (index 0) and
    // 3.8 (index 7). ECharts writes coordinates rounded to 0.1 px, so each is within 0.05 px of the exact one; a
    // point between the anchors is predicted within 0.05 px, and so differs from its own by at most 0.1 px.
    const [a, b] = [0, train.length - 1];
    const x = (step: number) => t[a]![0] + ((t[b]![0] - t[a]![0]) * (step - train[a]!.step)) / (train[b]!.step - 1);
    const y = (loss: number) =>
      t[a]![1] + ((t[b]![1] - t[a]![1]) * (loss - train[a]!.loss)) / (train[b]!.loss - train[a]!.loss);
    expect(t[b]![0]).toBeGreaterThan(t[a]![0]);
    expect(t[b]![1]).toBeGreaterThan(t[a]![1]); // the lower loss is lower down
    const bound = 0.1 + 1e-9;
    for (const [pts, data] of [
      [t, train],
      [v, val],
    ] as const) {
      data.forEach((d, i) => {
        expect(Math.abs(pts[i]![0] - x(d.step))).toBeLessThanOrEqual(bound);
        expect(Math.abs(pts[i]![1] - y(d.loss))).toBeLessThanOrEqual(bound);
      });
    }
    expect(markers(svg, 0)).toBe(0);
    expect(markers(svg, 1)).toBe(val.length);
  });

  it('leaves out non-finite losses, and gives the same file for the same data', async () => {
    const a = await lossPlotSvg([...train, { step: 9, loss: NaN }], [], 't');
    expect(seriesPoints(a)[0]).toHaveLength(train.length);
    expect(seriesPoints(a)).toHaveLength(1);
    await lossPlotSvg(train, val, 'another chart in between');
    expect(await lossPlotSvg([...train, { step: 9, loss: NaN }], [], 't')).toBe(a);
  });
});
