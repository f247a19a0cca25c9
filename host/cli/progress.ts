// A progress bar on stderr for long work. Draws only on a terminal; elsewhere it prints nothing
// until done (so logs and pipes stay clean), then one summary line if asked.

export class Progress {
  private last = 0;
  private readonly tty: boolean;
  private readonly start = Date.now();

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly out: NodeJS.WriteStream = process.stderr,
  ) {
    this.tty = Boolean(out.isTTY) && !process.env.CI;
  }

  update(done: number, extra = ''): void {
    if (!this.tty) return;
    const now = Date.now();
    if (now - this.last < 80 && done < this.total) return;
    this.last = now;
    const width = 28;
    const frac = this.total > 0 ? Math.min(1, done / this.total) : 1;
    const fill = Math.round(frac * width);
    const secs = (now - this.start) / 1000;
    const eta = frac > 0 && frac < 1 ? ` eta ${(secs / frac - secs).toFixed(0)}s` : '';
    this.out.write(
      `\r${this.label} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${(frac * 100).toFixed(0).padStart(3)}% ${extra}${eta}\x1b[K`,
    );
  }

  done(summary?: string): void {
    if (this.tty) this.out.write('\r\x1b[K');
    if (summary) this.out.write(`${summary}\n`);
  }
}
