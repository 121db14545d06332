// KEY=value files that init scripts `source` (openib.conf, ifcfg-*): the subset of POSIX sh
// (XCU 2.2 quoting, 2.6.2 parameter expansion, 2.9.1 simple commands) such files use.
//
// Decisions, so nothing is silently misread:
// - `$VAR`, `${VAR}`, `${VAR:-word}` and `${VAR-word}` are expanded as a shell would, from the keys
//   assigned earlier in the same file (then from `env`, if the caller passes one; never from this
//   process's environment). An unset variable expands to '' with a warning.
// - Command substitution ($(...), `...`), arithmetic ($((...))), other ${...} forms and special
//   parameters ($1, $?, ...) are NOT run: the text is kept literally and a warning says so.
// - A line that is not a pure list of assignments (a command, `KEY = v`, `KEY=v cmd`, pipes,
//   redirections) is ignored with a warning: a shell would run it, and `KEY=v cmd` sets KEY only
//   for that command.
// - CRLF endings: a shell keeps the \r in the value; we drop it and warn once.

import { diag, type Diagnostic } from './diagnostic.js';

export interface ShellAssignment {
  key: string;
  value: string;
  /** 1-based line where the assignment starts. */
  line: number;
  exported: boolean;
}

export interface ShellVars {
  file: string;
  /** Every assignment in file order (a key may appear more than once). */
  assignments: ShellAssignment[];
  /** The value each key has after the whole file is sourced (the last assignment wins). */
  vars: Map<string, ShellAssignment>;
  diagnostics: Diagnostic[];
}

export interface ShellVarsOptions {
  /** Variables visible to expansions before the file's own (e.g. what the sourcing script set). */
  env?: Readonly<Record<string, string>>;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const NAME_START = /[A-Za-z_]/;
const NAME_CHAR = /[A-Za-z0-9_]/;

interface Word {
  /** The word as written, quotes included. */
  raw: string;
  /** After quote removal and expansion. */
  value: string;
  line: number;
  /** Set when the word is NAME=... with NAME unquoted. */
  assignKey: string | null;
  /** The value part of an assignment word, after quote removal and expansion. */
  assignValue: string;
  unsupported: string | null;
}

class UnterminatedError extends Error {
  constructor(readonly what: string, readonly line: number) {
    super(what);
  }
}

export function parseShellVars(text: string, file: string, opts: ShellVarsOptions = {}): ShellVars {
  const diagnostics: Diagnostic[] = [];
  if (text.includes('\r\n')) {
    diagnostics.push(diag('warning', 'crlf', { file, line: 1 },
      'CRLF line endings: a shell would keep the \\r in every value; ipoib-boot drops it'));
    text = text.replace(/\r\n/g, '\n');
  }
  const assignments: ShellAssignment[] = [];
  const vars = new Map<string, ShellAssignment>();
  const env = opts.env ?? {};
  let pos = 0;
  let line = 1;

  // Assignments of the command being read, visible to the words after them (`A=1 B=$A` sets B=1).
  const pending = new Map<string, string>();
  const lookup = (name: string): string | undefined => pending.get(name) ?? vars.get(name)?.value ?? env[name];

  // Reads one word starting at pos; stops before unquoted blank, newline, ';' or end.
  const readWord = (): Word => {
    const startLine = line;
    const start = pos;
    let value = '';
    let assignKey: string | null = null;
    let assignAt = -1;
    let unsupported: string | null = null;
    let quotedYet = false;
    const warnLiteral = (what: string, shown: string): void => {
      diagnostics.push(diag('warning', 'not-expanded', { file, line: startLine, key: assignKey },
        `${what} ${shown} is not run by ipoib-boot; the text is kept literally`));
    };
    const expandDollar = (): string => {
      // pos is at '$'
      const next = text[pos + 1];
      if (next === '{') {
        const close = text.indexOf('}', pos + 2);
        if (close < 0) throw new UnterminatedError('${', line);
        const body = text.slice(pos + 2, close);
        const shown = text.slice(pos, close + 1);
        pos = close + 1;
        const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)(.*))?$/s.exec(body);
        if (m === null) {
          warnLiteral('parameter expansion', shown);
          return shown;
        }
        const name = m[1] ?? '';
        const v = lookup(name);
        if (m[2] !== undefined) {
          const useDefault = v === undefined || (m[2] === ':-' && v === '');
          return useDefault ? (m[3] ?? '') : (v ?? '');
        }
        if (v === undefined) {
          diagnostics.push(diag('warning', 'unset-variable', { file, line: startLine, key: name },
            `${shown} is not set earlier in the file; it expands to '' as in a shell`));
          return '';
        }
        return v;
      }
      if (next === '(') {
        const arith = text[pos + 2] === '(';
        let depth = 0;
        let i = pos + 1;
        for (; i < text.length; i++) {
          if (text[i] === '(') depth++;
          else if (text[i] === ')' && --depth === 0) break;
          else if (text[i] === '\n') line++;
        }
        if (i >= text.length) throw new UnterminatedError('$(', line);
        const shown = text.slice(pos, i + 1);
        pos = i + 1;
        warnLiteral(arith ? 'arithmetic expansion' : 'command substitution', shown);
        return shown;
      }
      if (next !== undefined && NAME_START.test(next)) {
        let i = pos + 1;
        while (i < text.length && NAME_CHAR.test(text[i] ?? '')) i++;
        const name = text.slice(pos + 1, i);
        pos = i;
        const v = lookup(name);
        if (v === undefined) {
          diagnostics.push(diag('warning', 'unset-variable', { file, line: startLine, key: name },
            `$${name} is not set earlier in the file; it expands to '' as in a shell`));
          return '';
        }
        return v;
      }
      if (next !== undefined && /[0-9?#@*!$-]/.test(next)) {
        const shown = '$' + next;
        pos += 2;
        warnLiteral('special parameter', shown);
        return shown;
      }
      pos++;
      return '$';
    };
    const backtick = (): string => {
      const close = text.indexOf('`', pos + 1);
      if (close < 0) throw new UnterminatedError('`', line);
      const shown = text.slice(pos, close + 1);
      for (const c of shown) if (c === '\n') line++;
      pos = close + 1;
      warnLiteral('command substitution', shown);
      return shown;
    };

    while (pos < text.length) {
      const c = text[pos] ?? '';
      if (c === ' ' || c === '\t' || c === '\n' || c === ';') break;
      if (assignKey === null && !quotedYet && c === '=' && NAME.test(text.slice(start, pos))) {
        assignKey = text.slice(start, pos);
        assignAt = value.length + 1;
        value += c;
        pos++;
        continue;
      }
      if (c === '\\') {
        const n = text[pos + 1];
        if (n === '\n') {
          line++;
          pos += 2;
        } else if (n === undefined) {
          pos++;
        } else {
          value += n;
          pos += 2;
        }
        quotedYet = true;
        continue;
      }
      if (c === "'") {
        const close = text.indexOf("'", pos + 1);
        if (close < 0) throw new UnterminatedError("'", startLine);
        const s = text.slice(pos + 1, close);
        for (const ch of s) if (ch === '\n') line++;
        value += s;
        pos = close + 1;
        quotedYet = true;
        continue;
      }
      if (c === '"') {
        pos++;
        let closed = false;
        while (pos < text.length) {
          const d = text[pos] ?? '';
          if (d === '"') {
            pos++;
            closed = true;
            break;
          }
          if (d === '\\') {
            const n = text[pos + 1];
            if (n === '\n') {
              line++;
              pos += 2;
            } else if (n === '$' || n === '`' || n === '"' || n === '\\') {
              value += n;
              pos += 2;
            } else {
              value += '\\';
              pos++;
            }
            continue;
          }
          if (d === '$') {
            value += expandDollar();
            continue;
          }
          if (d === '`') {
            value += backtick();
            continue;
          }
          if (d === '\n') line++;
          value += d;
          pos++;
        }
        if (!closed) throw new UnterminatedError('"', startLine);
        quotedYet = true;
        continue;
      }
      if (c === '$') {
        value += expandDollar();
        continue;
      }
      if (c === '`') {
        value += backtick();
        continue;
      }
      if ('|&<>()'.includes(c)) unsupported ??= c;
      value += c;
      pos++;
    }
    return {
      raw: text.slice(start, pos), value, line: startLine, assignKey,
      assignValue: assignAt < 0 ? '' : value.slice(assignAt), unsupported,
    };
  };

  const skipToEndOfLine = (): void => {
    while (pos < text.length && text[pos] !== '\n') pos++;
  };

  try {
    while (pos < text.length) {
      const c = text[pos] ?? '';
      if (c === ' ' || c === '\t' || c === ';') {
        pos++;
        continue;
      }
      if (c === '\n') {
        line++;
        pos++;
        continue;
      }
      if (c === '#') {
        skipToEndOfLine();
        continue;
      }
      // One simple command: words up to newline, ';' or a comment.
      const words: Word[] = [];
      while (pos < text.length) {
        const d = text[pos] ?? '';
        if (d === ' ' || d === '\t') {
          pos++;
          continue;
        }
        if (d === '\n' || d === ';') break;
        if (d === '#') {
          skipToEndOfLine();
          break;
        }
        const w = readWord();
        words.push(w);
        if (w.assignKey !== null) pending.set(w.assignKey, w.assignValue);
      }
      pending.clear();
      handleCommand(words);
    }
  } catch (err) {
    if (!(err instanceof UnterminatedError)) throw err;
    diagnostics.push(diag('error', 'unterminated-quote', { file, line: err.line },
      `unterminated ${err.what}: a shell stops sourcing the file here; nothing after line ${err.line} is read`));
  }

  function handleCommand(words: Word[]): void {
    const first = words[0];
    if (first === undefined) return;
    const where = { file, line: first.line };
    const bad = words.find((w) => w.unsupported !== null);
    if (bad !== undefined) {
      diagnostics.push(diag('warning', 'not-an-assignment', where,
        `'${words.map((w) => w.raw).join(' ')}' uses the shell operator '${bad.unsupported}'; ignored`));
      return;
    }
    if (first.assignKey === null && (first.raw === 'export' || first.raw === 'readonly')) {
      for (const w of words.slice(1)) {
        if (w.assignKey !== null) assign(w, true);
        else if (NAME.test(w.raw)) {
          const a = vars.get(w.raw);
          if (a !== undefined) a.exported = true;
        } else {
          diagnostics.push(diag('warning', 'not-an-assignment', { file, line: w.line },
            `'${first.raw} ${w.raw}': not a NAME or NAME=value; ignored`));
        }
      }
      return;
    }
    const cmdAt = words.findIndex((w) => w.assignKey === null);
    if (cmdAt < 0) {
      for (const w of words) assign(w, false);
      return;
    }
    const cmd = words[cmdAt] as Word;
    const second = words[cmdAt + 1];
    const key = NAME.test(cmd.raw) ? cmd.raw : null;
    if (cmdAt === 0 && key !== null && second !== undefined && second.raw.startsWith('=')) {
      diagnostics.push(diag('warning', 'not-an-assignment', { ...where, key },
        `'${words.map((w) => w.raw).join(' ')}': a shell runs '${key}' as a command (no spaces around '=' in an assignment); ignored`));
    } else if (cmdAt > 0) {
      const set = words.slice(0, cmdAt).map((w) => w.assignKey).join(', ');
      diagnostics.push(diag('warning', 'not-an-assignment', { ...where, key: words[0]?.assignKey ?? null },
        `'${words.map((w) => w.raw).join(' ')}': a shell runs '${cmd.raw}' with ${set} set only for that command (quote values that contain blanks); ignored`));
    } else {
      diagnostics.push(diag('warning', 'not-an-assignment', where,
        `'${words.map((w) => w.raw).join(' ')}' is not a KEY=value assignment; a shell would run it; ignored`));
    }
  }

  function assign(w: Word, exported: boolean): void {
    const key = w.assignKey as string;
    const prev = vars.get(key);
    if (prev !== undefined) {
      diagnostics.push(diag('info', 'reassigned', { file, line: w.line, key },
        `${key} was set on line ${prev.line} too; this later value wins, as in a shell`));
    }
    const a: ShellAssignment = { key, value: w.assignValue, line: w.line, exported: exported || (prev?.exported ?? false) };
    assignments.push(a);
    vars.set(key, a);
  }

  return { file, assignments, vars, diagnostics };
}
