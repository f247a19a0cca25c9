// The server's counters, gauges and histograms, rendered in Prometheus' text format (version
// 0.0.4). No dependency: the format is a few lines of text.

export class Histogram {
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    /** Upper bounds, ascending (+Inf is added). */
    readonly bounds: readonly number[],
  ) {
    this.counts = bounds.map(() => 0);
  }

  observe(v: number): void {
    this.sum += v;
    this.count++;
    for (let i = 0; i < this.bounds.length; i++) if (v <= this.bounds[i]) this.counts[i]++;
  }

  /** Adds another histogram's observations (same bounds): a worker's, for /metrics. */
  add(o: HistogramCounts): void {
    this.sum += o.sum;
    this.count += o.count;
    for (let i = 0; i < this.counts.length; i++) this.counts[i] += o.counts[i] ?? 0;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    this.bounds.forEach((b, i) => lines.push(`${this.name}_bucket{le="${b}"} ${this.counts[i]}`));
    lines.push(`${this.name}_bucket{le="+Inf"} ${this.count}`);
    lines.push(`${this.name}_sum ${this.sum}`, `${this.name}_count ${this.count}`);
    return lines.join('\n');
  }
}

export interface HistogramCounts {
  counts: number[];
  sum: number;
  count: number;
}

/** What a worker thread's scheduler reports for /metrics (plain data, posted between threads). */
export interface SchedulerFigures {
  promptTokens: number;
  generatedTokens: number;
  queueDepth: number;
  busySlots: number;
  perToken: HistogramCounts;
  batch: HistogramCounts;
}

const LATENCY_BOUNDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class Metrics {
  /** Requests answered, by route and status code. */
  readonly requests = new Map<string, number>();
  promptTokens = 0;
  generatedTokens = 0;
  queueDepth = 0;
  busySlots = 0;
  slots = 0;
  readonly ttft = new Histogram(
    'itera_time_to_first_token_seconds',
    'Time from a completion request being accepted to its first generated token.',
    LATENCY_BOUNDS,
  );
  readonly perToken = new Histogram(
    'itera_token_latency_seconds',
    'Time between successive generated tokens of one request.',
    LATENCY_BOUNDS,
  );
  readonly batch = new Histogram(
    'itera_decode_batch_size',
    'Requests advanced by one token in one scheduler step.',
    [1, 2, 4, 8, 12, 16, 24, 32, 64],
  );

  figures(): SchedulerFigures {
    const h = (x: Histogram): HistogramCounts => ({ counts: [...x.counts], sum: x.sum, count: x.count });
    return {
      promptTokens: this.promptTokens,
      generatedTokens: this.generatedTokens,
      queueDepth: this.queueDepth,
      busySlots: this.busySlots,
      perToken: h(this.perToken),
      batch: h(this.batch),
    };
  }

  /** These figures (the HTTP layer's requests and times to first token) with the schedulers'
   *  figures of every worker thread added: one set of metrics for the whole server. */
  withWorkers(workers: readonly SchedulerFigures[], waiting: number): Metrics {
    const m = new Metrics();
    for (const [k, v] of this.requests) m.requests.set(k, v);
    m.slots = this.slots;
    m.ttft.add(this.ttft);
    m.queueDepth = waiting;
    for (const w of workers) {
      m.promptTokens += w.promptTokens;
      m.generatedTokens += w.generatedTokens;
      m.queueDepth += w.queueDepth;
      m.busySlots += w.busySlots;
      m.perToken.add(w.perToken);
      m.batch.add(w.batch);
    }
    return m;
  }

  countRequest(route: string, status: number): void {
    const key = `route="${route}",status="${status}"`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
  }

  render(): string {
    const out: string[] = [
      '# HELP itera_requests_total HTTP requests answered, by route and status code.',
      '# TYPE itera_requests_total counter',
    ];
    for (const [k, v] of [...this.requests].sort()) out.push(`itera_requests_total{${k}} ${v}`);
    const scalar = (name: string, type: string, help: string, v: number): void => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name} ${v}`);
    };
    scalar('itera_prompt_tokens_total', 'counter', 'Prompt tokens prefilled.', this.promptTokens);
    scalar('itera_generated_tokens_total', 'counter', 'Tokens generated.', this.generatedTokens);
    scalar('itera_queue_depth', 'gauge', 'Completion requests waiting for a slot.', this.queueDepth);
    scalar('itera_busy_slots', 'gauge', 'Slots generating right now.', this.busySlots);
    scalar('itera_slots', 'gauge', 'Slots (--parallel).', this.slots);
    out.push(this.ttft.render(), this.perToken.render(), this.batch.render());
    return out.join('\n') + '\n';
  }
}
