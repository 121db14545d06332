// Kea's configuration file syntax: JSON plus comments, which Kea's lexer (src/bin/dhcp4/dhcp4_lexer.ll)
// accepts in three spellings — `// ...` and `# ...` to the end of the line, and `/* ... */`. Comments
// are blanked out (newlines kept, so JSON.parse positions still map to the right line), never inside
// strings. Kea's `<?include "file"?>` is refused with a clear message rather than misread.

export class ConfigSyntaxError extends Error {
  override readonly name = 'ConfigSyntaxError';
  constructor(readonly file: string, readonly line: number, readonly column: number, detail: string) {
    super(`${file}:${line}:${column}: ${detail}`);
  }
}

function lineCol(text: string, pos: number): [number, number] {
  let line = 1, col = 1;
  for (let i = 0; i < pos && i < text.length; i++) {
    if (text[i] === '\n') { line++; col = 1; } else col++;
  }
  return [line, col];
}

/** The text with every comment replaced by spaces (newlines kept). */
export function stripComments(text: string, file = '(config)'): string {
  const out = text.split('');
  let i = 0;
  const blank = (from: number, to: number): void => {
    for (let k = from; k < to; k++) if (out[k] !== '\n' && out[k] !== '\r') out[k] = ' ';
  };
  while (i < text.length) {
    const c = text[i]!;
    if (c === '"') {
      i++;
      while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
      i++;
    } else if (c === '#' || (c === '/' && text[i + 1] === '/')) {
      const end = text.indexOf('\n', i);
      const stop = end < 0 ? text.length : end;
      blank(i, stop);
      i = stop;
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      if (end < 0) {
        const [l, col] = lineCol(text, i);
        throw new ConfigSyntaxError(file, l, col, 'comment opened with /* is never closed');
      }
      blank(i, end + 2);
      i = end + 2;
    } else if (c === '<' && text.startsWith('<?include', i)) {
      const [l, col] = lineCol(text, i);
      throw new ConfigSyntaxError(file, l, col, '<?include ...?> is not supported: put the included text in this file');
    } else {
      i++;
    }
  }
  return out.join('');
}

/** Parses a Kea configuration text: comments removed, then JSON; errors name file, line and column. */
export function parseConfigText(text: string, file = '(config)'): unknown {
  const clean = stripComments(text, file);
  try {
    return JSON.parse(clean) as unknown;
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    const m = /position (\d+)/.exec(msg);
    const pos = m === null ? clean.length : Number(m[1]);
    const [l, col] = lineCol(clean, pos);
    throw new ConfigSyntaxError(file, l, col, `not valid JSON: ${msg.replace(/ in JSON at position \d+.*$/, '')}`);
  }
}
