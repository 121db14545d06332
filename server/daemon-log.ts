// The server's logger: pino JSON lines (DESIGN.md: structured logs), one human line per event on a
// terminal. Level and destination come from the config's Kea-style `loggers` (the entry named
// kea-dhcp4 or ipoib-dhcpd: severity, output_options[0].output = stdout | stderr | a file), and
// -d (debug) overrides the level. Every line about a client begins with the engine's client label.
import { pino, type Logger } from 'pino';
import type { LoggerConfig } from './config.js';

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const QUIET_KEYS = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg', 'event']);
/** Kea severities -> pino levels. */
const SEVERITY: Record<string, pino.Level> = { FATAL: 'fatal', ERROR: 'error', WARN: 'warn', WARNING: 'warn', INFO: 'info', DEBUG: 'debug' };

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'fatal';

/** One pino JSON line as a human reads it: "12:00:01 INFO  cid=... offer  (yiaddr=10.0.0.10)". */
export function prettyLine(json: string): string {
  let rec: Record<string, unknown>;
  try { rec = JSON.parse(json) as Record<string, unknown>; } catch { return json; }
  const time = typeof rec['time'] === 'number' ? new Date(rec['time']).toISOString().slice(11, 19) : '';
  const level = (LEVEL_NAMES[rec['level'] as number] ?? String(rec['level'])).padEnd(5);
  const extra = Object.entries(rec).filter(([k]) => !QUIET_KEYS.has(k)).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  return `${time} ${level} ${String(rec['msg'] ?? '')}${extra.length > 0 ? `  (${extra.join(' ')})` : ''}\n`;
}

export interface ServerLoggerOptions {
  loggers?: readonly LoggerConfig[];
  /** -d: debug level, to stderr. */
  debug?: boolean;
  /** Overrides the level from the config. */
  level?: LogLevel;
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  pretty?: boolean;
}

export function createServerLogger(o: ServerLoggerOptions = {}): Logger {
  const cfg = o.loggers?.find((l) => l.name === 'kea-dhcp4' || l.name === 'ipoib-dhcpd') ?? o.loggers?.[0];
  const level: pino.Level = o.level ?? (o.debug === true ? 'debug' : SEVERITY[(cfg?.severity ?? 'INFO').toUpperCase()] ?? 'info');
  const output = o.debug === true ? 'stderr' : cfg?.outputs[0]?.output ?? 'stderr';
  let stream: NodeJS.WritableStream & { isTTY?: boolean };
  if (o.stream !== undefined) stream = o.stream;
  else if (output === 'stdout') stream = process.stdout;
  else if (output === 'stderr' || output === 'syslog') stream = process.stderr;
  else stream = pino.destination({ dest: output, sync: false, mkdir: true }) as unknown as NodeJS.WritableStream;
  const pretty = o.pretty ?? stream.isTTY === true;
  const dest = pretty ? { write: (line: string): void => { stream.write(prettyLine(line)); } } : stream;
  return pino({ name: 'ipoib-dhcpd', level, base: { pid: process.pid } }, dest);
}
