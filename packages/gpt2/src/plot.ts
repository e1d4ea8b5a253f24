// A loss curve as a self-contained SVG (train loss per step, validation loss where measured), drawn by ECharts'
// server-side SVG renderer. ECharts is loaded on the first plot only: it takes most of a second to import, which
// every other command (and every import of this package) would otherwise pay.
export interface LossPoint {
  step: number;
  loss: number;
}

const WIDTH = 720;
const HEIGHT = 360;

type ECharts = typeof import('echarts/core');
let charts: Promise<ECharts> | null = null;

function loadCharts(): Promise<ECharts> {
  charts ??= (async () => {
    const [core, { LineChart }, c, { SVGRenderer }] = await Promise.all([
      import('echarts/core'),
      import('echarts/charts'),
      import('echarts/components'),
      import('echarts/renderers'),
    ]);
    core.use([LineChart, c.GridComponent, c.TitleComponent, c.LegendComponent, SVGRenderer]);
    return core;
  })();
  return charts;
}

export async function lossPlotSvg(train: LossPoint[], val: LossPoint[], title: string): Promise<string> {
  const echarts = await loadCharts();
  const points = (pts: LossPoint[]) => pts.filter((p) => Number.isFinite(p.loss)).map((p) => [p.step, p.loss]);
  const chart = echarts.init(null, null, { renderer: 'svg', ssr: true, width: WIDTH, height: HEIGHT });
  try {
    chart.setOption({
      animation: false,
      backgroundColor: '#fff',
      textStyle: { fontFamily: 'sans-serif' },
      title: { text: title, left: 'center', top: 6, textStyle: { fontSize: 14 } },
      legend: { top: 34 },
      grid: { left: 56, right: 24, top: 72, bottom: 48 },
      xAxis: { type: 'value', name: 'step', nameLocation: 'middle', nameGap: 28, minInterval: 1, min: 0 },
      yAxis: { type: 'value', name: 'loss', scale: true },
      series: [
        // Long runs: largest-triangle downsampling keeps the curve's shape at the chart's resolution.
        {
          name: 'train loss',
          type: 'line',
          showSymbol: false,
          sampling: 'lttb',
          data: points(train),
          color: '#1f77b4',
        },
        ...(val.length
          ? [{ name: 'validation loss', type: 'line', showAllSymbol: true, data: points(val), color: '#d62728' }]
          : []),
      ],
    });
    // Element ids and CSS class names carry counts kept across the charts made in this process; numbered afresh
    // in order of appearance, they make the file a function of the data alone (a resumed run's plot equals an
    // uninterrupted run's).
    const renamed = new Map<string, string>();
    const rename = (c: string) => {
      if (!renamed.has(c)) renamed.set(c, `zr0-cls-${renamed.size}`);
      return renamed.get(c)!;
    };
    return chart
      .renderToSVGString()
      .replace(/\bzr\d+-cls-\d+\b/g, rename)
      .replace(/\bzr\d+-/g, 'zr0-');
  } finally {
    chart.dispose();
  }
}
