/**
 * Repository locations as users write them (`--repo`, LIFEBOAT_REPOSITORY, config):
 *
 *   s3:https://host[:port]/bucket[/prefix...]   S3-compatible store, explicit scheme
 *   s3:host[:port]/bucket[/prefix...]           the same over https
 *   local:/some/dir, /some/dir, ./dir, dir      a local directory (made absolute)
 */
import * as path from 'node:path';

export type Location =
  | { kind: 'local'; path: string }
  | { kind: 's3'; endpoint: string; bucket: string; prefix: string };

// S3 bucket naming rules (lowercase DNS-style), with "_" and capitals tolerated
// because some S3-compatible stores (Swift containers) allow them.
const BUCKET_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{2,62}$/;
const SCHEME_RE = /^([A-Za-z][A-Za-z0-9+.-]*):/;

export function parseLocation(input: string, cwd: string = process.cwd()): Location {
  const text = input.trim();
  if (text === '') throw new Error('repository location is empty');
  const scheme = SCHEME_RE.exec(text)?.[1]?.toLowerCase();
  if (scheme === undefined) return { kind: 'local', path: path.resolve(cwd, text) };
  if (scheme === 'local') {
    const rest = text.slice('local:'.length);
    if (rest === '') throw new Error(`repository location "${input}" has no path after "local:"`);
    return { kind: 'local', path: path.resolve(cwd, rest) };
  }
  if (scheme === 's3') return parseS3(text.slice('s3:'.length), input);
  throw new Error(
    `unsupported repository location "${input}": use s3:https://host/bucket[/prefix] or a local path ` +
      `(write ./${text} or local:${text} for a local directory whose name contains ":")`,
  );
}

function parseS3(rest: string, input: string): Location {
  const usage = 'expected s3:http[s]://host[:port]/bucket[/prefix] or s3:host/bucket[/prefix]';
  if (rest.startsWith('//')) {
    throw new Error(`invalid repository location "${input}": ${usage} (s3://bucket is not supported, name the endpoint)`);
  }
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(rest)?.[1]?.toLowerCase();
  if (scheme !== undefined && scheme !== 'http' && scheme !== 'https') {
    throw new Error(`invalid repository location "${input}": scheme ${scheme}: is not http or https; ${usage}`);
  }
  // URL() would resolve "a/../b" silently; refuse dot segments in what the user wrote
  const rawPath = rest.replace(/^[A-Za-z][A-Za-z0-9+.-]*:\/\//, '').replace(/^[^/]*/, '');
  if (rawPath.split(/[/?#]/).some((p) => p === '.' || p === '..')) {
    throw new Error(`invalid repository location "${input}": the bucket and prefix may not contain "." or ".."`);
  }
  let url: URL;
  try {
    url = new URL(scheme === undefined ? `https://${rest}` : rest);
  } catch {
    throw new Error(`invalid repository location "${input}": ${usage}`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new Error(
      `invalid repository location: credentials in the URL are not allowed; use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY`,
    );
  }
  if (url.search !== '' || url.hash !== '') {
    throw new Error(`invalid repository location "${input}": no query string or fragment allowed; ${usage}`);
  }
  if (url.hostname === '') throw new Error(`invalid repository location "${input}": no host; ${usage}`);
  const parts = decodeURIComponent(url.pathname)
    .split('/')
    .filter((p) => p !== '');
  const bucket = parts.shift();
  if (bucket === undefined) throw new Error(`invalid repository location "${input}": no bucket; ${usage}`);
  if (!BUCKET_RE.test(bucket)) {
    throw new Error(`invalid repository location "${input}": "${bucket}" is not a valid bucket name`);
  }
  return { kind: 's3', endpoint: url.origin, bucket, prefix: parts.join('/') };
}

/** One-line, credential-free rendering for messages: `s3:http://h:9000/bucket/prefix` or the path. */
export function describeLocation(loc: Location): string {
  if (loc.kind === 'local') return loc.path;
  return `s3:${loc.endpoint}/${loc.bucket}${loc.prefix === '' ? '' : `/${loc.prefix}`}`;
}
