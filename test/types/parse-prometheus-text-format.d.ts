/**
 * Types for parse-prometheus-text-format (a CommonJS module exporting one function; the package
 * ships no types and there is no @types package): a Prometheus text exposition as metric families.
 * Numbers stay strings, as in the text (`+Inf`, `NaN`).
 */
declare module 'parse-prometheus-text-format' {
  function parsePrometheusTextFormat(text: string): parsePrometheusTextFormat.MetricFamily[];

  namespace parsePrometheusTextFormat {
    type Labels = Readonly<Record<string, string>>;

    /** A sample of a counter, gauge or untyped family. */
    interface Sample {
      readonly value: string;
      readonly labels?: Labels;
      readonly timestamp_ms?: string;
    }

    /** A histogram: buckets by upper bound (`le`). Labelled series are folded into one. */
    interface HistogramSample {
      readonly buckets: Readonly<Record<string, string>>;
      readonly count?: string;
      readonly sum?: string;
      readonly labels?: Labels;
    }

    /** A summary: quantiles by `quantile`. */
    interface SummarySample {
      readonly quantiles: Readonly<Record<string, string>>;
      readonly count?: string;
      readonly sum?: string;
      readonly labels?: Labels;
    }

    interface MetricFamily {
      readonly name: string;
      readonly help: string;
      readonly type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED';
      readonly metrics: readonly (Sample | HistogramSample | SummarySample)[];
    }
  }

  export = parsePrometheusTextFormat;
}
