// Bundle src/node.js (a js-libp2p browser node) into dist/jsnode.js for page.addScriptTag().
import { build } from 'esbuild';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
await build({
  entryPoints: [path.join(here, 'src', 'node.js')],
  outfile: path.join(here, 'dist', 'jsnode.js'),
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: 'es2022',
  sourcemap: 'inline',
  logLevel: 'warning',
});
