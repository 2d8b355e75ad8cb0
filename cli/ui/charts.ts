/**
 * Inline SVG charts for Signet's pages: stacked horizontal bars (workloads per namespace by
 * outcome) and per-minute columns (a counter over the last hour). Drawn on the server, so a page
 * needs no script; each chart carries a title and a label for screen readers.
 */
import { html, type Html } from './html';

/** One coloured part of a bar. */
export interface Segment {
  readonly name: string;
  readonly value: number;
  readonly color: string;
}

/** One labelled bar made of segments. */
export interface StackedBar {
  readonly label: string;
  readonly segments: readonly Segment[];
}

const LABEL_WIDTH = 190;
const BAR_HEIGHT = 18;
const GAP = 8;

/** Shortens a label to `max` characters, keeping its end (where names differ most). */
const clip = (label: string, max: number): string =>
  label.length <= max ? label : `…${label.slice(-(max - 1))}`;

/**
 * Horizontal bars, one per row, each split into segments in proportion to their values, with the
 * total at the right and a legend below.
 */
export function stackedBars(
  bars: readonly StackedBar[],
  options: { readonly title: string; readonly width?: number; readonly id?: string },
): Html {
  const width = options.width ?? 760;
  const plot = width - LABEL_WIDTH - 60;
  const max = Math.max(1, ...bars.map((b) => total(b.segments)));
  const legendNames = new Map<string, string>();
  for (const bar of bars) for (const s of bar.segments) legendNames.set(s.name, s.color);
  // The legend flows into as many lines as it needs (text widths estimated: no script to measure).
  const legendTop = bars.length * (BAR_HEIGHT + GAP) + 10;
  let lx = LABEL_WIDTH;
  let ly = legendTop;
  const legend = [...legendNames.entries()].map(([name, color]) => {
    const itemWidth = 30 + name.length * 7.5;
    if (lx > LABEL_WIDTH && lx + itemWidth > width) {
      lx = LABEL_WIDTH;
      ly += 18;
    }
    const item = html`<rect x="${lx}" y="${ly}" width="12" height="12" fill="${color}" /><text
        x="${lx + 16}"
        y="${ly + 10}"
        font-size="12"
        fill="#38434e"
        >${name}</text
      >`;
    lx += itemWidth;
    return item;
  });
  const height = ly + 26;
  const rows = bars.map((bar, i) => {
    const y = i * (BAR_HEIGHT + GAP);
    let x = LABEL_WIDTH;
    const parts = bar.segments
      .filter((s) => s.value > 0)
      .map((s) => {
        const w = (s.value / max) * plot;
        const rect = html`<rect
          x="${x.toFixed(1)}"
          y="${y}"
          width="${Math.max(w, 1).toFixed(1)}"
          height="${BAR_HEIGHT}"
          fill="${s.color}"
          ><title>${bar.label}: ${s.value} ${s.name}</title></rect
        >`;
        x += w;
        return rect;
      });
    return html`<g class="bar"
      ><text x="${LABEL_WIDTH - 8}" y="${y + BAR_HEIGHT - 5}" text-anchor="end" font-size="12" fill="#38434e"
        >${clip(bar.label, 28)}</text
      >${parts}<text x="${(x + 6).toFixed(1)}" y="${y + BAR_HEIGHT - 5}" font-size="12" fill="#56616c"
        >${total(bar.segments)}</text
      ></g
    >`;
  });
  return html`<svg
    xmlns="http://www.w3.org/2000/svg"
    role="img"
    aria-label="${options.title}"
    width="${width}"
    height="${height}"
    viewBox="0 0 ${width} ${height}"
    ${options.id !== undefined ? html` id="${options.id}"` : ''}
  >
    <title>${options.title}</title>
    ${rows}${legend}
  </svg>`;
}

const total = (segments: readonly Segment[]): number => segments.reduce((sum, s) => sum + s.value, 0);

/**
 * One column per minute, oldest at the left, with the largest value marked on the axis. Empty
 * minutes are drawn as a baseline tick so that a quiet hour still reads as an hour.
 */
export function minuteColumns(
  values: readonly number[],
  options: { readonly title: string; readonly color: string; readonly id?: string },
): Html {
  const width = 330;
  const height = 110;
  const left = 30;
  const bottom = 18;
  const plotHeight = height - bottom - 10;
  const step = (width - left - 4) / Math.max(1, values.length);
  const max = Math.max(1, ...values);
  const columns = values.map((v, i) => {
    const h = v === 0 ? 1 : Math.max(2, (v / max) * plotHeight);
    const minutesAgo = values.length - i - 1;
    return html`<rect
      x="${(left + i * step).toFixed(1)}"
      y="${(height - bottom - h).toFixed(1)}"
      width="${Math.max(1, step - 1).toFixed(1)}"
      height="${h.toFixed(1)}"
      fill="${v === 0 ? '#cfd8dc' : options.color}"
      ><title>${minutesAgo === 0 ? 'this minute' : `${minutesAgo} min ago`}: ${v}</title></rect
    >`;
  });
  const sum = values.reduce((a, b) => a + b, 0);
  return html`<svg
    xmlns="http://www.w3.org/2000/svg"
    role="img"
    aria-label="${options.title}: ${sum} in the last hour"
    width="${width}"
    height="${height}"
    viewBox="0 0 ${width} ${height}"
    ${options.id !== undefined ? html` id="${options.id}"` : ''}
  >
    <title>${options.title}</title>
    <line x1="${left}" y1="${height - bottom}" x2="${width - 4}" y2="${height - bottom}" stroke="#b0bec5" />
    <text x="${left - 4}" y="14" text-anchor="end" font-size="10" fill="#56616c">${max}</text>
    <text x="${left - 4}" y="${height - bottom}" text-anchor="end" font-size="10" fill="#56616c">0</text>
    ${columns}
    <text x="${left}" y="${height - 4}" font-size="10" fill="#56616c">−60 min</text>
    <text x="${width - 4}" y="${height - 4}" text-anchor="end" font-size="10" fill="#56616c">now</text>
  </svg>`;
}
