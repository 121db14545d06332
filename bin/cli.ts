// What every program shares: --version, usage errors as one line with exit 2, runtime failures
// with exit 1 (DESIGN.md, Conventions).
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const EXIT_OK = 0;
export const EXIT_RUNTIME = 1;
export const EXIT_USAGE = 2;

/**
 * The package's root: the folder above this file holding bin/launch.js. This file runs from bin/ in
 * the checkout or from a compiled tree under .build/<key>/bin/ (bin/launch.js), so it is searched for.
 */
export const PACKAGE_ROOT: string = (() => {
  const start = dirname(fileURLToPath(import.meta.url));
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'bin', 'launch.js')) && existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no package root (bin/launch.js) above ${start}`);
  }
})();

const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string };
export const VERSION: string = pkg.version;

/** An error a program reports as one line; exit 2 for usage/configuration, 1 for runtime. */
export class CliError extends Error {
  constructor(message: string, readonly exitCode: number = EXIT_USAGE) {
    super(message);
  }
}

export function program(name: string, description: string): Command {
  return new Command(name)
    .description(description)
    .version(VERSION, '-V, --version')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })
    .showHelpAfterError(false);
}

/** Parses and runs a commander program; maps every failure to one line and an exit code. */
export async function run(name: string, cmd: Command, argv: string[]): Promise<number> {
  try {
    await cmd.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT_OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version arrive here as "errors" with exit code 0.
      return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    if (err instanceof CliError) {
      process.stderr.write(`${name}: ${err.message}\n`);
      return err.exitCode;
    }
    process.stderr.write(`${name}: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT_RUNTIME;
  }
}

/**
 * A throwing option parser reported through commander: the one-line error goes where the program's
 * configureOutput() writes (tests give main() their own io), not straight to process.stderr.
 */
export function commanderParser<T>(parse: (v: string) => T): (v: string) => T {
  return (v: string) => {
    try {
      return parse(v);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  };
}

/** Parses an integer option with a range, naming the option in the error. */
export function intOption(flag: string, min: number, max: number): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (!/^(0x[0-9a-f]+|\d+)$/i.test(v) || !Number.isInteger(n) || n < min || n > max) {
      throw new CliError(`${flag}: '${v}' is not an integer in ${min}..${max}`);
    }
    return n;
  };
}

/** The value of --link, shared by the server and the client: the kernel's UDP or the project's fabric. */
export function linkOption(v: string): 'kernel' | 'fabric' {
  if (v !== 'kernel' && v !== 'fabric') throw new CliError(`--link: '${v}' is not kernel or fabric`);
  return v;
}
