/** Where the agent keeps its state database and control socket. */
import os from 'node:os';
import path from 'node:path';
import type { LifeboatConfig } from '../config/schema.js';

const isRoot = () => process.getuid?.() === 0;

/** agent.state_dir, else LIFEBOAT_STATE_DIR (systemd's $STATE_DIRECTORY), else /var/lib/lifeboat (root) or ~/.local/state/lifeboat. */
export function stateDir(config: LifeboatConfig | null): string {
  if (config?.agent.state_dir) return path.resolve(config.agent.state_dir);
  const env = process.env.LIFEBOAT_STATE_DIR ?? process.env.STATE_DIRECTORY?.split(':')[0];
  if (env) return path.resolve(env);
  if (isRoot()) return '/var/lib/lifeboat';
  const xdg = process.env.XDG_STATE_HOME;
  return path.join(xdg && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), '.local', 'state'), 'lifeboat');
}

/** agent.socket, else /run/lifeboat/agent.sock (root), else $XDG_RUNTIME_DIR/lifeboat/agent.sock, else in the state directory. */
export function socketPath(config: LifeboatConfig | null): string {
  if (config?.agent.socket) return path.resolve(config.agent.socket);
  if (config?.agent.state_dir) return path.join(stateDir(config), 'agent.sock');
  const runtime = process.env.RUNTIME_DIRECTORY?.split(':')[0];
  if (runtime) return path.join(runtime, 'agent.sock');
  if (isRoot()) return '/run/lifeboat/agent.sock';
  const xdg = process.env.XDG_RUNTIME_DIR;
  return xdg ? path.join(xdg, 'lifeboat', 'agent.sock') : path.join(stateDir(config), 'agent.sock');
}
