/**
 * A small SVG renderer for grouped horizontal bar charts: panels stacked vertically, each
 * with its own scale, one bar per series in every row (one series for a run, two for a
 * before/after pair). Pure: a chart in, a standalone SVG document out.
 */

export interface Row {
  label: string;
  /** One value per series; undefined where that series did not measure this row. */
  values: Array<number | undefined>;
  /** Single-series charts shade reference rows (the bare LVM command line) differently. */
  reference?: boolean;
}

export interface Panel {
  title: string;
  rows: Row[];
}

export interface Chart {
  title: string;
  series: string[];
  panels: Panel[];
  footnote?: string;
}

export const WIDTH = 760;
const LABEL_WIDTH = 200;
const BAR_AREA = 440;
const BAR_HEIGHT = 13;
const ROW_GAP = 7;
const PANEL_TITLE = 22;
const PANEL_GAP = 16;
const SERIES_COLORS = ["#4c78a8", "#f58518", "#54a24b", "#b279a2"];
const REFERENCE_COLOR = "#9d9d9d";

export function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** Three significant figures, without exponent notation for the magnitudes we plot. */
export function formatValue(value: number): string {
  if (!Number.isFinite(value)) return "n/a";
  const abs = Math.abs(value);
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  if (abs >= 1) return value.toFixed(2);
  return value.toPrecision(2);
}

const text = (x: number, y: number, content: string, attrs = ""): string =>
  `<text x="${x}" y="${y}"${attrs ? ` ${attrs}` : ""}>${escapeXml(content)}</text>`;

function rowHeight(series: number): number {
  return series * BAR_HEIGHT + ROW_GAP;
}

function renderPanel(panel: Panel, series: number, top: number): { svg: string[]; height: number } {
  const svg: string[] = [text(10, top + 15, panel.title, 'class="panel"')];
  const max = Math.max(
    0,
    ...panel.rows.flatMap((r) => r.values.filter((v): v is number => v !== undefined && Number.isFinite(v))),
  );
  let y = top + PANEL_TITLE;
  for (const row of panel.rows) {
    svg.push(text(LABEL_WIDTH - 8, y + (series * BAR_HEIGHT) / 2 + 4, row.label, 'text-anchor="end"'));
    row.values.forEach((value, s) => {
      const barY = y + s * BAR_HEIGHT;
      if (value === undefined || !Number.isFinite(value)) {
        svg.push(text(LABEL_WIDTH + 4, barY + BAR_HEIGHT - 3, "not measured", 'class="missing"'));
        return;
      }
      const width = max > 0 ? Math.max(1, (value / max) * BAR_AREA) : 1;
      const color = series === 1 && row.reference ? REFERENCE_COLOR : SERIES_COLORS[s % SERIES_COLORS.length];
      svg.push(
        `<rect x="${LABEL_WIDTH}" y="${barY}" width="${width.toFixed(1)}" height="${BAR_HEIGHT - 2}" fill="${color}"/>`,
      );
      svg.push(text(Math.round(LABEL_WIDTH + width + 4), barY + BAR_HEIGHT - 3, formatValue(value), 'class="value"'));
    });
    y += rowHeight(series);
  }
  return { svg, height: y - top };
}

export function renderSvg(chart: Chart): string {
  const series = Math.max(1, chart.series.length);
  const body: string[] = [text(10, 24, chart.title, 'class="title"')];
  let y = 36;
  if (chart.series.length > 1) {
    chart.series.forEach((name, s) => {
      const x = 10 + s * 180;
      body.push(`<rect x="${x}" y="${y}" width="12" height="12" fill="${SERIES_COLORS[s % SERIES_COLORS.length]}"/>`);
      body.push(text(x + 18, y + 10, name));
    });
    y += 22;
  }
  for (const panel of chart.panels) {
    const rendered = renderPanel(panel, series, y);
    body.push(...rendered.svg);
    y += rendered.height + PANEL_GAP;
  }
  if (chart.footnote) {
    body.push(text(10, y + 4, chart.footnote, 'class="note"'));
    y += 16;
  }
  const height = Math.ceil(y + 6);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}">`,
    "<style>text{font-family:sans-serif;font-size:11px;fill:#222}.title{font-size:15px;font-weight:bold}" +
      ".panel{font-size:12px;font-weight:bold}.value{font-size:10px;fill:#444}.missing{font-size:10px;fill:#999}.note{font-size:10px;fill:#666}</style>",
    `<rect width="${WIDTH}" height="${height}" fill="#fff"/>`,
    ...body,
    "</svg>",
    "",
  ].join("\n");
}
