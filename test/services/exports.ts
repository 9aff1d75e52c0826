/** `export NAME=value` lines, as the service scripts print them (values escaped like printf %q), to a record. */
export function parseExports(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^export ([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m?.[1] && m[2] !== undefined) env[m[1]] = m[2].replace(/\\(.)/g, '$1');
  }
  return env;
}
