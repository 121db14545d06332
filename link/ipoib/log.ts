// Structured logging for the emulated host: every event is a record with a stable `event` code,
// a level, the host and the device, and the sentence a kernel log would print (msg). The logger
// is injected (pino fits: pass `(e) => pino[e.level](e)`); every event is also published on the
// node:diagnostics_channel channel "ipoib.event" for whoever subscribes (undici's habit).
import diagnostics_channel from 'node:diagnostics_channel';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface IpoibEvent {
  level: LogLevel;
  /** Stable code, e.g. "carrier_on", "too_long", "neigh_failed", "drop". */
  event: string;
  host: string;
  dev?: string;
  /** The human sentence (for "too_long" exactly Linux's "packet len N (> M) too long to send, dropping"). */
  msg: string;
  [field: string]: unknown;
}

export type IpoibLogger = (e: IpoibEvent) => void;

export const IPOIB_EVENT_CHANNEL = 'ipoib.event';
const channel = diagnostics_channel.channel(IPOIB_EVENT_CHANNEL);

/** Emits to the injected logger and to the diagnostics channel. */
export function emit(logger: IpoibLogger | undefined, e: IpoibEvent): void {
  if (logger !== undefined) logger(e);
  if (channel.hasSubscribers) channel.publish(e);
}
