/**
 * /etc/lifeboat/lifeboat.yaml: a header saying how to start, then the YAML examples of
 * docs/configuration.md, every line commented out (one source of truth: the docs).
 */
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from './paths.js';

export function exampleConfig(): string {
  const head = fs.readFileSync(path.join(ROOT, 'packaging', 'debian', 'lifeboat.yaml.head'), 'utf8');
  const docs = fs.readFileSync(path.join(ROOT, 'docs', 'configuration.md'), 'utf8');
  const blocks = [...docs.matchAll(/^```yaml\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
  if (blocks.length < 2) throw new Error('docs/configuration.md: expected the commented example and the agent example (```yaml blocks)');
  const commented = blocks.slice(0, 2).map((b) => b.trimEnd().split('\n').map((l) => (l.startsWith('#') ? l : l === '' ? '#' : `#${l.startsWith(' ') ? '' : ' '}${l}`)).join('\n'));
  return `${head}${commented.join('\n#\n')}\n`;
}
