/**
 * Server-rendered HTML for Signet's pages (the status page, the audit report): a tagged template
 * that escapes every value it is given, tables, and one stylesheet. Pages are self-contained: no
 * script, no font or stylesheet from elsewhere (clusters are often offline), a Content Security
 * Policy that forbids loading anything.
 */

/** Markup built by these helpers; anything else put into `html` is escaped as text. */
export class Html {
  constructor(readonly value: string) {}

  toString(): string {
    return this.value;
  }
}

/** What `html` accepts: markup, text (escaped), numbers, lists of those; nothing for absent values. */
export type HtmlValue = Html | string | number | undefined | null | false | readonly HtmlValue[];

const ENTITIES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Text as HTML text or attribute value. */
export const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => ENTITIES[c] ?? c);

function render(value: HtmlValue): string {
  if (value instanceof Html) return value.value;
  if (Array.isArray(value)) return (value as readonly HtmlValue[]).map(render).join('');
  if (value === undefined || value === null || value === false) return '';
  return escapeHtml(String(value));
}

/** `html\`<td>${text}</td>\``: the values are escaped unless they are `Html` already. */
export function html(strings: TemplateStringsArray, ...values: readonly HtmlValue[]): Html {
  let out = strings[0] ?? '';
  values.forEach((value, i) => {
    out += render(value) + (strings[i + 1] ?? '');
  });
  return new Html(out);
}

/** Nothing may be loaded from anywhere: styles and images are inline, there is no script. */
export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'";

/** The colours of verdicts, shared by tables, legends and charts. */
export const COLORS = {
  allow: '#2e7d32',
  warn: '#e08600',
  deny: '#c62828',
  excluded: '#78909c',
  unsupported: '#b0bec5',
  accent: '#1565c0',
} as const;

const STYLE = `
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Liberation Sans", "DejaVu Sans", sans-serif; color: #1d232a; background: #f4f6f8; }
header.page { background: #1d2b3a; color: #fff; padding: 16px 28px; }
header.page h1 { margin: 0; font-size: 20px; font-weight: 600; }
header.page p { margin: 4px 0 0; color: #c5d0db; font-size: 13px; }
main { padding: 20px 28px 40px; max-width: 1400px; }
section { background: #fff; border: 1px solid #dde3e9; border-radius: 6px; padding: 14px 18px; margin: 0 0 18px; }
section h2 { margin: 0 0 10px; font-size: 16px; font-weight: 600; }
section p.note { margin: 0 0 10px; color: #56616c; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 0 0 18px; }
.card { background: #fff; border: 1px solid #dde3e9; border-left: 5px solid #90a4ae; border-radius: 6px; padding: 10px 16px; min-width: 150px; }
.card .n { font-size: 26px; font-weight: 650; font-variant-numeric: tabular-nums; }
.card .l { color: #56616c; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card.allow { border-left-color: ${COLORS.allow}; } .card.warn { border-left-color: ${COLORS.warn}; }
.card.deny { border-left-color: ${COLORS.deny}; } .card.info { border-left-color: ${COLORS.accent}; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid #e6eaee; vertical-align: top; }
th { background: #f0f3f6; font-weight: 600; color: #38434e; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.mono, span.mono { font-family: ui-monospace, "DejaVu Sans Mono", "Liberation Mono", monospace; font-size: 12px; word-break: break-all; }
td.msg { color: #38434e; max-width: 560px; overflow-wrap: anywhere; }
tr.empty td { color: #78909c; font-style: italic; }
.badge { display: inline-block; padding: 0 7px; border-radius: 9px; font-size: 12px; font-weight: 600; color: #fff; white-space: nowrap; }
.badge.allow, .badge.signed, .badge.pass { background: ${COLORS.allow}; }
.badge.warn, .badge.already-signed { background: ${COLORS.warn}; }
.badge.deny, .badge.failed { background: ${COLORS.deny}; }
.badge.excluded, .badge.unsupported, .badge.other { background: ${COLORS.excluded}; }
.charts { display: flex; flex-wrap: wrap; gap: 18px; }
.charts figure { margin: 0; }
.charts figcaption { font-size: 13px; font-weight: 600; margin: 0 0 4px; }
svg text { font-family: system-ui, "Liberation Sans", "DejaVu Sans", sans-serif; }
footer { color: #78909c; font-size: 12px; padding: 0 28px 20px; }
`;

/** A whole page: the stylesheet, the CSP, the header, then `body`. */
export function page(options: {
  readonly title: string;
  readonly subtitle: HtmlValue;
  readonly body: HtmlValue;
  readonly footer?: HtmlValue;
  /** Reload the page every so many seconds (no script needed). */
  readonly refreshSeconds?: number;
}): string {
  const refresh =
    options.refreshSeconds !== undefined
      ? html`<meta http-equiv="refresh" content="${options.refreshSeconds}" />`
      : undefined;
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta http-equiv="Content-Security-Policy" content="${CONTENT_SECURITY_POLICY}" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="referrer" content="no-referrer" />
        ${refresh}
        <title>${options.title}</title>
        <style>
          ${new Html(STYLE)}
        </style>
      </head>
      <body>
        <header class="page">
          <h1>${options.title}</h1>
          <p>${options.subtitle}</p>
        </header>
        <main>${options.body}</main>
        <footer>${options.footer}</footer>
      </body>
    </html> `.value;
}

/** One cell: text (escaped), or markup with a class. */
export type Cell = HtmlValue | { readonly value: HtmlValue; readonly className: string };

/** A table with a header row; `empty` is shown in a single row when there are no rows. */
export function table(
  headers: readonly (string | { readonly label: string; readonly className: string })[],
  rows: readonly (readonly Cell[])[],
  options: { readonly empty: string; readonly id?: string },
): Html {
  const head = headers.map((h) =>
    typeof h === 'string' ? html`<th>${h}</th>` : html`<th class="${h.className}">${h.label}</th>`,
  );
  const body =
    rows.length === 0
      ? html`<tr class="empty">
          <td colspan="${headers.length}">${options.empty}</td>
        </tr>`
      : rows.map(
          (row) =>
            html`<tr>
              ${row.map((cell) =>
                isClassed(cell)
                  ? html`<td class="${cell.className}">${cell.value}</td>`
                  : html`<td>${cell}</td>`,
              )}
            </tr>`,
        );
  return html`<table${options.id !== undefined ? html` id="${options.id}"` : ''}><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

const isClassed = (cell: Cell): cell is Extract<Cell, { readonly className: string }> =>
  typeof cell === 'object' && cell !== null && !(cell instanceof Html) && !Array.isArray(cell);

/** A coloured label: `badge('deny', 'denied')`. */
export const badge = (kind: string, label: string): Html => html`<span class="badge ${kind}">${label}</span>`;

/** A number card. */
export const card = (kind: string, value: number, label: string, id?: string): Html =>
  html`<div class="card ${kind}" ${id !== undefined ? html` id="${id}"` : ''}>
    <div class="n">${value}</div>
    <div class="l">${label}</div>
  </div>`;

/** Epoch milliseconds as `2025-01-31 12:34:56Z`. */
export function timestamp(at: number): string {
  return `${new Date(at).toISOString().slice(0, 19).replace('T', ' ')}Z`;
}
