// Runs bin/<name>.ts from a checkout with no build step: tsx compiles TypeScript on load.
// Each bin/<name> shim calls launch(name); <name>.ts exports main(argv) -> exit code.
import { register } from 'tsx/esm/api';

export async function launch(name) {
  register();
  const mod = await import(new URL(`./${name}.ts`, import.meta.url).href);
  const code = await mod.main(process.argv.slice(2));
  if (typeof code === 'number') process.exitCode = code;
}
