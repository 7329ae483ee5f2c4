import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { SimulationResult } from '../shared/sim/results.ts';
import { type ReportData, reportData } from './data.ts';

/**
 * The HTML report: one self-contained file (Apache ECharts inlined, data inlined, no network) with the
 * price path and liquidation markers, liquidations per minute by layer, the insurance fund, the slippage
 * distribution, and bad debt and fund drawdown for every strategy that ran.
 */

const require = createRequire(import.meta.url);

let echartsSource: string | undefined;
/** The ECharts browser bundle from node_modules (read once). */
function echarts(): string {
  echartsSource ??= readFileSync(require.resolve('echarts/dist/echarts.min'), 'utf8');
  return echartsSource;
}

const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** JSON safe inside a <script> element: no "</script>", no HTML comment openers, no line separators. */
const scriptJson = (value: unknown): string =>
  JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');

/** Inline script text must not close its own element. */
const inlineScript = (source: string): string => source.replace(/<\/(script)/gi, '<\\/$1');

/** The summary's rows, amounts labelled in the quote currency. */
const summaryRows = (quote: string): readonly [string, (s: Record<string, unknown>) => unknown][] => [
  ['Liquidations', (s) => s.liquidations],
  ['Settled by market', (s) => (s.settledBy as Record<string, number>).market],
  ['Settled by auction', (s) => (s.settledBy as Record<string, number>).auction],
  ['Settled by insurance', (s) => (s.settledBy as Record<string, number>).insurance],
  [
    'Settled by ADL',
    (s) => ((s.settledBy as Record<string, number>).adl ?? 0) - (s.adlBadDebtOnly as number),
  ],
  ['Left as bad debt', (s) => s.adlBadDebtOnly],
  ['Cancelled', (s) => s.cancelled],
  ['Not terminal', (s) => s.nonTerminal],
  [
    'Slippage p50 / p99 / max (bps)',
    (s) => {
      const b = s.slippageBps as Record<string, number>;
      return `${b.p50} / ${b.p99} / ${b.max}`;
    },
  ],
  ['Zero-price fills', (s) => s.zeroPriceFills],
  ['Lowest mark', (s) => s.markLow ?? '-'],
  [
    `Insurance fund start / end / min (${quote})`,
    (s) => {
      const f = s.insuranceFund as Record<string, string>;
      return `${f.start} / ${f.end} / ${f.min}`;
    },
  ],
  [`Shortfall paid by the fund (${quote})`, (s) => s.insurancePaid],
  [`Bad debt the fund did not pay (${quote})`, (s) => s.badDebt],
  [`Conservation error (${quote})`, (s) => s.conservationError],
];

function summaryTable(data: ReportData): string {
  const head = data.strategies.map((s) => `<th>${escapeHtml(s.strategy)}</th>`).join('');
  const rows = summaryRows(data.quote)
    .map(
      ([label, get]) =>
        `<tr><th scope="row">${escapeHtml(label)}</th>${data.strategies
          .map((s) => `<td>${escapeHtml(String(get(s.summary)))}</td>`)
          .join('')}</tr>`,
    )
    .join('\n');
  return `<table class="summary"><thead><tr><th></th>${head}</tr></thead><tbody>\n${rows}\n</tbody></table>`;
}

/** The browser side: builds one ECharts instance per .chart element from the inlined data. */
const CLIENT = `
(function () {
  var data = JSON.parse(document.getElementById('report-data').textContent);
  var STRATEGY_COLORS = { 'waterfall': '#1b7f79', 'no-auction': '#d68910', 'market-only': '#c0392b' };
  var LAYER_COLORS = { market: '#3b6fb6', auction: '#2e9d5b', insurance: '#e08e0b', adl: '#b03a48', badDebt: '#5b2333', cancelled: '#9aa0a6' };
  var LAYERS = ['market', 'auction', 'insurance', 'adl', 'badDebt', 'cancelled'];
  var LAYER_NAMES = { badDebt: 'left as bad debt' };
  var base = { animation: false, textStyle: { fontFamily: 'system-ui, sans-serif' } };
  var charts = [];
  function chart(id, option) {
    var el = document.getElementById(id);
    var c = echarts.init(el, null, { renderer: 'canvas' });
    c.setOption(Object.assign({}, base, option));
    charts.push(c);
  }
  function zip(xs, ys) { return xs.map(function (x, i) { return [x, ys[i]]; }); }
  var usd = function (v) { return Math.round(v).toLocaleString('en-US'); };

  var priceSeries = [{ name: 'price (' + data.scenario + ')', type: 'line', showSymbol: false, data: zip(data.reference.time, data.reference.price), lineStyle: { color: '#555', width: 1.5 }, itemStyle: { color: '#555' } }];
  data.strategies.forEach(function (s) {
    var color = STRATEGY_COLORS[s.strategy];
    priceSeries.push({ name: 'mark, ' + s.strategy, type: 'line', showSymbol: false, data: zip(s.time, s.mark), lineStyle: { color: color, width: 1 }, itemStyle: { color: color } });
    priceSeries.push({ name: 'liquidations, ' + s.strategy, type: 'scatter', data: s.markers, itemStyle: { color: color, opacity: 0.55 },
      symbolSize: function (v) { return Math.min(28, 3 + 2.5 * Math.sqrt(v[2])); } });
  });
  chart('chart-price', {
    title: { text: 'Price path and liquidations (marker size: liquidations started that minute)' },
    tooltip: { trigger: 'axis' }, legend: { top: 28 }, grid: { top: 70, left: 60, right: 30, bottom: 60 },
    dataZoom: [{ type: 'inside' }, { type: 'slider', height: 18, bottom: 10 }],
    xAxis: { type: 'time' }, yAxis: { type: 'value', scale: true, name: data.quote }, series: priceSeries,
  });

  data.strategies.forEach(function (s) {
    chart('chart-layers-' + s.strategy, {
      title: { text: 'Liquidations settled per minute by layer: ' + s.strategy },
      tooltip: { trigger: 'axis' }, legend: { top: 28 }, grid: { top: 70, left: 60, right: 30, bottom: 60 },
      dataZoom: [{ type: 'inside' }, { type: 'slider', height: 18, bottom: 10 }],
      xAxis: { type: 'time' }, yAxis: { type: 'value', name: 'liquidations' },
      series: LAYERS.map(function (layer) {
        return { name: LAYER_NAMES[layer] || layer, type: 'bar', stack: 'layers', barMaxWidth: 6, large: true, data: zip(s.time, s.settled[layer]), itemStyle: { color: LAYER_COLORS[layer] } };
      }),
    });
  });

  chart('chart-fund', {
    title: { text: 'Insurance fund balance' },
    tooltip: { trigger: 'axis', valueFormatter: usd }, legend: { top: 28 }, grid: { top: 70, left: 90, right: 30, bottom: 60 },
    dataZoom: [{ type: 'inside' }, { type: 'slider', height: 18, bottom: 10 }],
    xAxis: { type: 'time' }, yAxis: { type: 'value', name: data.quote },
    series: data.strategies.map(function (s) {
      return { name: s.strategy, type: 'line', showSymbol: false, data: zip(s.time, s.fund), itemStyle: { color: STRATEGY_COLORS[s.strategy] } };
    }),
  });

  var bin = data.strategies[0].slippageHistogram.binBps;
  var bins = Math.max.apply(null, data.strategies.map(function (s) { return s.slippageHistogram.counts.length; }));
  var labels = []; for (var i = 0; i < bins; i++) labels.push(String(i * bin) + '-' + String((i + 1) * bin));
  chart('chart-slippage', {
    title: { text: 'Slippage of market liquidation orders versus the mark (bps; orders per bin)' },
    tooltip: { trigger: 'axis' }, legend: { top: 28 }, grid: { top: 70, left: 60, right: 30, bottom: 70 },
    xAxis: { type: 'category', data: labels, axisLabel: { rotate: 45 } }, yAxis: { type: 'log', name: 'orders', min: 1 },
    series: data.strategies.map(function (s) {
      return { name: s.strategy, type: 'bar', data: s.slippageHistogram.counts.map(function (c) { return c === 0 ? null : c; }), itemStyle: { color: STRATEGY_COLORS[s.strategy] } };
    }),
  });

  chart('chart-loss', {
    title: { text: 'Bad debt and insurance fund drawdown' },
    tooltip: { trigger: 'axis', valueFormatter: usd }, legend: { top: 28 }, grid: { top: 70, left: 90, right: 30, bottom: 40 },
    xAxis: { type: 'category', data: ['bad debt (fund did not pay)', 'fund drawdown (deepest fall from a peak)', 'shortfall paid by the fund'] },
    yAxis: { type: 'value', name: data.quote },
    series: data.strategies.map(function (s) {
      return { name: s.strategy, type: 'bar', data: [s.totals.badDebt, s.totals.fundDrawdown, s.totals.insurancePaid], itemStyle: { color: STRATEGY_COLORS[s.strategy] }, label: { show: true, position: 'top', formatter: function (p) { return usd(p.value); } } };
    }),
  });

  chart('chart-baddebt', {
    title: { text: 'Cumulative bad debt' },
    tooltip: { trigger: 'axis', valueFormatter: usd }, legend: { top: 28 }, grid: { top: 70, left: 90, right: 30, bottom: 60 },
    dataZoom: [{ type: 'inside' }, { type: 'slider', height: 18, bottom: 10 }],
    xAxis: { type: 'time' }, yAxis: { type: 'value', name: data.quote },
    series: data.strategies.map(function (s) {
      return { name: s.strategy, type: 'line', step: 'end', showSymbol: false, data: zip(s.time, s.badDebt), itemStyle: { color: STRATEGY_COLORS[s.strategy] } };
    }),
  });

  window.addEventListener('resize', function () { charts.forEach(function (c) { c.resize(); }); });
  document.body.setAttribute('data-charts-ready', String(charts.length));
})();
`;

/** `riskConfig`: a line naming the risk configuration (a --config; none for the built-in one). */
export function renderReport(results: readonly SimulationResult[], riskConfig?: string): string {
  const data = reportData(results);
  const layerCharts = data.strategies
    .map((s) => `<div class="chart" id="chart-layers-${escapeHtml(s.strategy)}"></div>`)
    .join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(data.title)}</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 24px auto; max-width: 1200px; color: #222; padding: 0 16px; }
  h1 { font-size: 1.5rem; margin-bottom: 4px; }
  p.lead { color: #555; margin-top: 0; }
  table.summary { border-collapse: collapse; margin: 16px 0 24px; font-size: 0.9rem; }
  table.summary th, table.summary td { border-bottom: 1px solid #ddd; padding: 4px 12px; text-align: right; }
  table.summary th[scope=row] { text-align: left; font-weight: normal; color: #444; }
  .chart { width: 100%; height: 380px; margin: 12px 0 28px; }
  footer { color: #777; font-size: 0.8rem; margin-top: 24px; }
</style>
</head>
<body>
<h1>${escapeHtml(data.title)}</h1>
<p class="lead">${data.positions.toLocaleString('en-US')} synthetic positions (seed ${data.seed}) replayed minute by minute through the
backstop's own services on the embedded engine. <b>market-only</b> dumps every liquidation into the order book whatever
the price; <b>waterfall</b> sells on the market within the slippage bound, auctions the rest to backstop liquidity
providers, then draws on the insurance fund, then auto-deleverages; <b>no-auction</b> is the same waterfall without
providers: what the market leaves goes to the fund and to ADL, which closes profitable traders' positions. The mark is the venue's mid: the external price
moved by the persisting impact of our own forced sells.${riskConfig === undefined ? '' : ` Rules: ${escapeHtml(riskConfig)}.`}</p>
${summaryTable(data)}
<div class="chart" id="chart-price"></div>
${layerCharts}
<div class="chart" id="chart-fund"></div>
<div class="chart" id="chart-slippage"></div>
<div class="chart" id="chart-loss"></div>
<div class="chart" id="chart-baddebt"></div>
<footer>Bad debt: the shortfall the insurance fund did not pay, socialized through ADL or left uncovered. Amounts in ${escapeHtml(data.quote)}.
Charts: Apache ECharts (inlined).</footer>
<script type="application/json" id="report-data">${scriptJson(data)}</script>
<script>${inlineScript(echarts())}</script>
<script>${inlineScript(CLIENT)}</script>
</body>
</html>
`;
}
