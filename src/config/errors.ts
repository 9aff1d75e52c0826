/** A config file that cannot be read or is invalid; the message names the file, line and field. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}
