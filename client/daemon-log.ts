// The daemon's logger: pino JSON lines (DESIGN.md: structured logs), or one human line per event
// when the output is a terminal ("12:00:01 INFO  DHCPDISCOVER on ib0 to 255.255.255.255 port 67").
import { pino, type Logger } from 'pino';

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const QUIET_KEYS = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg']);

/** Formats one pino JSON line for a human; other text passes through. */
export function prettyLine(json: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const time = typeof rec['time'] === 'number' ? new Date(rec['time']).toISOString().slice(11, 19) : '';
  const level = (LEVEL_NAMES[rec['level'] as number] ?? String(rec['level'])).padEnd(5);
  const extra = Object.entries(rec).filter(([k]) => !QUIET_KEYS.has(k) && k !== 'iface' && k !== 'event')
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  return `${time} ${level} ${String(rec['msg'] ?? '')}${extra.length > 0 ? `  (${extra.join(' ')})` : ''}\n`;
}

export interface LoggerOptions {
  name: string;
  level: 'debug' | 'info' | 'warn' | 'error';
  /** Default process.stderr. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Default: whether the stream is a terminal. */
  pretty?: boolean;
}

export function createDaemonLogger(o: LoggerOptions): Logger {
  const stream = o.stream ?? process.stderr;
  const pretty = o.pretty ?? stream.isTTY === true;
  const dest = pretty ? { write: (line: string): void => { stream.write(prettyLine(line)); } } : stream;
  return pino({ name: o.name, level: o.level, base: { pid: process.pid } }, dest);
}
