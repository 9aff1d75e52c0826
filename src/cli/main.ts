#!/usr/bin/env node
// first, before the rest of the CLI is loaded: the key derivation runs meanwhile (early-kdf.ts)
import { startEarlyKdf } from './early-kdf.js';
startEarlyKdf(process.argv.slice(2));
const { mayUseConfig, preloadConfigModule } = await import('./config-module.js');
// the YAML parser and the config schema only when a config file may apply
const configLoad = mayUseConfig(process.argv.slice(2)) ? preloadConfigModule() : null;
const { CommanderError } = await import('commander');
const { buildProgram } = await import('./program.js');
const { EXIT, exitCodeFor, oneLine } = await import('./exit-codes.js');

// lifeboat ships its own runtime; the SDK's warning about Node versions is not for our users
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

// a reader that went away (`lifeboat snapshots | head`) ends us quietly, as SIGPIPE ends C tools
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? EXIT.ok);
  throw e;
});

async function main(argv: string[]): Promise<number> {
  await configLoad;
  const program = buildProgram();
  program.exitOverride();
  try {
    await program.parseAsync(argv);
    return EXIT.ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander already printed help, the version or its own one-line error
      return e.exitCode === 0 ? EXIT.ok : EXIT.error;
    }
    process.stderr.write(`lifeboat: ${oneLine(e)}\n`);
    if (program.opts<{ verbose?: number }>().verbose && e instanceof Error && e.stack) {
      process.stderr.write(e.stack + '\n');
    }
    return exitCodeFor(e);
  }
}

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`lifeboat: ${oneLine(e)}\n`);
    process.exitCode = EXIT.error;
  },
);
