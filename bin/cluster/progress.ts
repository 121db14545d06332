// The live progress line of a long run (DESIGN.md Conventions: "long work shows progress"). On a
// terminal one line is redrawn in place about ten times a second; anywhere else (a pipe, CI, a test)
// a plain line is written every few seconds, so logs stay readable. Driven by a real-time interval,
// because the cluster itself runs in virtual time.

export interface ProgressSink {
  write(text: string): void;
  readonly isTTY: boolean;
}

const TTY_INTERVAL_MS = 100;
const PLAIN_INTERVAL_MS = 2000;

export class Progress {
  private timer: NodeJS.Timeout | undefined;
  private source: (() => string) | undefined;
  private drawn = false;

  constructor(private readonly sink: ProgressSink, private readonly enabled = true) {}

  /** Starts showing `source()` until stop(); a previous phase's line is finished first. */
  start(source: () => string): void {
    this.stop();
    if (!this.enabled) return;
    this.source = source;
    const every = this.sink.isTTY ? TTY_INTERVAL_MS : PLAIN_INTERVAL_MS;
    this.timer = setInterval(() => this.draw(), every);
    this.timer.unref();
    if (this.sink.isTTY) this.draw();
  }

  private draw(): void {
    if (this.source === undefined) return;
    const text = this.source();
    if (this.sink.isTTY) {
      this.sink.write(`\r\x1b[K${text}`);
      this.drawn = true;
    } else {
      this.sink.write(`${text}\n`);
    }
  }

  /** Stops the line; `final` (if any) is written as the phase's closing line. */
  stop(final?: string): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.source = undefined;
    if (!this.enabled) return;
    if (this.drawn) this.sink.write('\r\x1b[K');
    this.drawn = false;
    if (final !== undefined) this.sink.write(`${final}\n`);
  }
}
