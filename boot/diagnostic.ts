// What the configuration readers report: one record per finding, always naming the file and, when
// known, the line and key, so that a message can be printed as one line (DESIGN.md, Conventions)
// and an executor can still decide by `code` and `severity`.

/**
 * error: a value that cannot be interpreted (the key falls back to its default);
 * warning: a setting that is ignored, overridden or conflicting; the rest of the plan still runs;
 * info: something an operator may want to know (a known but unused key, a default applied).
 */
export type Severity = 'error' | 'warning' | 'info';

export interface Diagnostic {
  severity: Severity;
  /** Stable identifier, e.g. 'unknown-key', 'mtu-out-of-range', 'ipoib-load-ignored'. */
  code: string;
  file: string | null;
  line: number | null;
  key: string | null;
  message: string;
}

export interface Where {
  file: string | null;
  line?: number | null | undefined;
  key?: string | null | undefined;
}

export function diag(severity: Severity, code: string, where: Where, message: string): Diagnostic {
  return { severity, code, file: where.file, line: where.line ?? null, key: where.key ?? null, message };
}

/** `file:line: KEY: message` (parts that are unknown are left out), the CLI's one-line form. */
export function formatDiagnostic(d: Diagnostic): string {
  let place = d.file ?? '';
  if (d.file !== null && d.line !== null) place += `:${d.line}`;
  const head = [place, d.key ?? ''].filter((s) => s !== '').join(': ');
  return `${d.severity}: ${head === '' ? '' : head + ': '}${d.message}`;
}

export function hasErrors(ds: readonly Diagnostic[]): boolean {
  return ds.some((d) => d.severity === 'error');
}
