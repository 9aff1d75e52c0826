/**
 * The man page (lifeboat.1) and the bash completion, generated from the CLI's own commander
 * program (src/cli/program.ts): every command, argument and option with its help text.
 */
import type { Command, Option } from 'commander';

interface CmdDoc {
  /** e.g. ['hooks', 'install'] */
  path: string[];
  usage: string;
  description: string;
  options: Option[];
  subcommands: string[];
}

function visibleOptions(c: Command): Option[] {
  return c.options.filter((o) => !o.hidden);
}

function walk(c: Command, prefix: string[], out: CmdDoc[]): void {
  for (const sub of c.commands) {
    const internal = sub as Command & { _hidden?: boolean };
    if (internal._hidden) continue;
    const p = [...prefix, sub.name()];
    out.push({
      path: p,
      usage: sub.usage(),
      description: sub.description(),
      options: visibleOptions(sub),
      subcommands: sub.commands.map((s) => s.name()),
    });
    walk(sub, p, out);
  }
}

export function commandDocs(program: Command): CmdDoc[] {
  const out: CmdDoc[] = [];
  walk(program, [], out);
  return out;
}

/** roff text: backslashes, leading dots and quotes, and hyphens (as \-) escaped. */
function roff(s: string): string {
  return s
    .replace(/\\/g, '\\e')
    .replace(/-/g, '\\-')
    .split('\n')
    .map((l) => (/^[.']/.test(l) ? `\\&${l}` : l))
    .join('\n');
}

function optionsRoff(opts: Option[]): string[] {
  const lines: string[] = [];
  for (const o of opts) {
    lines.push('.TP', `.B ${roff(o.flags)}`, roff(o.description || ''));
    if (o.defaultValue !== undefined && o.defaultValue !== false && o.defaultValue !== 0 && !/default/i.test(o.description)) {
      lines.push(`(default: ${roff(String(o.defaultValue))})`);
    }
  }
  return lines;
}

const EXIT_STATUS: [number, string][] = [
  [0, 'success'],
  [1, 'error: bad input or config, integrity error, storage error, a restore that failed or refused entries'],
  [3, 'snapshot saved, but some files could not be read (each is named on stderr)'],
  [10, 'no repository at that location (or its bucket does not exist)'],
  [11, 'a lock could not be obtained'],
  [12, 'wrong password (no key file opens with it)'],
];

/** The man page, section 1. `date` as YYYY-MM-DD (the changelog's, so builds are reproducible). */
export function manPage(program: Command, version: string, date: string): string {
  const L: string[] = [];
  L.push(`.TH LIFEBOAT 1 "${date}" "lifeboat ${version}" "User Commands"`);
  L.push('.SH NAME', `lifeboat \\- ${roff(program.description().replace(/^lifeboat:\s*/, ''))}`);
  L.push('.SH SYNOPSIS', '.B lifeboat', '[\\fIglobal options\\fR] \\fIcommand\\fR [\\fIoptions\\fR] [\\fIarguments\\fR]');
  L.push('.SH DESCRIPTION', roff(program.description()) + '.');
  L.push('Run', '.B lifeboat help', '\\fIcommand\\fR for the help of one command.');
  L.push('.SH GLOBAL OPTIONS', ...optionsRoff(visibleOptions(program)));
  L.push('.SH COMMANDS');
  for (const d of commandDocs(program)) {
    L.push(`.SS "${roff(['lifeboat', ...d.path].join(' '))} ${roff(d.usage).replace(/"/g, '')}"`);
    L.push(roff(d.description || ''));
    if (d.subcommands.length) L.push('.br', `Commands: ${roff(d.subcommands.join(', '))}.`);
    if (d.options.length) L.push('.RS', ...optionsRoff(d.options), '.RE');
  }
  L.push('.SH EXIT STATUS');
  for (const [code, what] of EXIT_STATUS) L.push('.TP', `.B ${code}`, roff(what));
  L.push('.SH ENVIRONMENT');
  for (const [v, what] of [
    ['LIFEBOAT_CONFIG', 'the config file (default /etc/lifeboat/lifeboat.yaml when it exists)'],
    ['LIFEBOAT_REPOSITORY', 'the repository: a directory or s3:https://host[:port]/bucket[/prefix]'],
    ['LIFEBOAT_PASSWORD_FILE', 'a file holding the repository password'],
    ['LIFEBOAT_PASSWORD', 'the repository password itself'],
    ['LIFEBOAT_CACHE_DIR', 'the local cache directory'],
  ] as const) L.push('.TP', `.B ${v}`, roff(what));
  L.push('.SH FILES');
  for (const [f, what] of [
    ['/etc/lifeboat/lifeboat.yaml', 'the config (see /usr/share/doc/lifeboat/configuration.md)'],
    ['/etc/lifeboat/password', 'the repository password (mode 0600), read by the service as a systemd credential'],
    ['/var/lib/lifeboat', 'the agent\'s state (agent.db) and the default cache of commands run as root'],
    ['/var/cache/lifeboat', 'the service\'s repository cache (only a copy)'],
    ['/lib/systemd/system/lifeboat.service', 'the agent\'s unit: systemctl enable --now lifeboat'],
  ] as const) L.push('.TP', `.I ${roff(f)}`, roff(what));
  L.push('.SH SEE ALSO', '.BR systemctl (1),', '.BR journalctl (1),', '/usr/share/doc/lifeboat/README.md, /usr/share/doc/lifeboat/operations.md');
  return L.join('\n') + '\n';
}

function takesValue(o: Option): boolean {
  return o.required || o.optional;
}

function optionWords(opts: Option[]): string[] {
  return opts.flatMap((o) => [o.short, o.long].filter((x): x is string => Boolean(x)));
}

function shellWords(ws: string[]): string {
  return ws.map((w) => w.replace(/[^A-Za-z0-9_.:,/=+-]/g, '')).join(' ');
}

/** A bash completion script: commands, subcommands and each command's options. */
export function bashCompletion(program: Command): string {
  const docs = commandDocs(program);
  const globalOpts = visibleOptions(program);
  const valued = new Set(optionWords([...globalOpts, ...docs.flatMap((d) => d.options)].filter(takesValue)));
  const cases: string[] = [];
  cases.push(`    '') subs='${shellWords(program.commands.map((c) => c.name()))}'; opts='' ;;`);
  for (const d of docs) {
    cases.push(`    '${d.path.join(' ')}') subs='${shellWords(d.subcommands)}'; opts='${shellWords(optionWords(d.options))}' ;;`);
  }
  return `# bash completion for lifeboat (generated from its commander program)
_lifeboat() {
  local cur prev path='' subs opts w i
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  case " ${shellWords([...valued])} " in
    *" $prev "*) COMPREPLY=( $(compgen -f -- "$cur") ); return 0 ;;
  esac
  for (( i = 1; i < COMP_CWORD; i++ )); do
    w="\${COMP_WORDS[i]}"
    [[ $w == -* ]] && continue
    _lifeboat_words "$path"
    [[ " $subs " == *" $w "* ]] && path="\${path:+$path }$w"
  done
  _lifeboat_words "$path"
  if [[ $cur == -* ]]; then
    COMPREPLY=( $(compgen -W "$opts ${shellWords(optionWords(globalOpts))} --help" -- "$cur") )
  elif [[ -n $subs ]]; then
    COMPREPLY=( $(compgen -W "$subs" -- "$cur") )
  else
    COMPREPLY=( $(compgen -f -- "$cur") )
  fi
  return 0
}
_lifeboat_words() {
  case "$1" in
${cases.join('\n')}
    *) subs=''; opts='' ;;
  esac
}
complete -F _lifeboat lifeboat
`;
}
