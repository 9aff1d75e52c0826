/** Errors of the cloud layer: one line, naming the cloud and the cause, never a credential. */
export type CloudErrorKind =
  | 'config' // no or bad cloud configuration
  | 'auth' // wrong or missing credentials (401)
  | 'forbidden' // policy / role (403)
  | 'not-found' // 404
  | 'conflict' // 409 that did not clear in time
  | 'quota' // over a quota
  | 'bad-request' // 400 / 406
  | 'unreachable' // network error, DNS, refused, TLS
  | 'timeout' // waited too long
  | 'failed' // the cloud reported a failure (killed image, error snapshot, 5xx)
  | 'not-openstack'; // cannot find this VM's own server

export class CloudError extends Error {
  constructor(
    readonly kind: CloudErrorKind,
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'CloudError';
  }
}

/** Secrets that must never reach an error message or a log line. */
const secrets = new Set<string>();

/** Registers a value (password, application credential secret, token) for redaction. */
export function registerSecret(value: string | undefined): void {
  if (value && value.length >= 4) secrets.add(value);
}

/** Replaces every registered secret in text. */
export function redact(text: string): string {
  let out = text;
  for (const s of secrets) out = out.split(s).join('***');
  return out;
}
