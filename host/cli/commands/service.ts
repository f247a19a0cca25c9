// itera service: installs `itera serve` as a hardened systemd service (a Raspberry Pi appliance):
// a dedicated unprivileged user, settings in /etc/itera/, logs in the journal. See docs/pi.md.

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { Command } from '../command.js';
import { num, str, UsageError } from '../command.js';
import { defaultModelPath } from '../../node/index.js';
import { IteraError } from '../../runtime/types.js';

export interface ServiceSettings {
  /** The command that runs itera: [executable] or [node, script]. */
  exec: string[];
  user: string;
  /** The model file as the service sees it. */
  model: string;
  host: string;
  port: number;
  memoryMax: string;
  /** Extra `itera serve` options, as words. */
  serveArgs: string[];
}

export const UNIT_NAME = 'itera.service';
export const CONFIG_DIR = '/etc/itera';
export const MODEL_DIR = '/usr/local/share/itera/models';

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

/** systemd's quoting for one word of ExecStart= ("..." with \ and " escaped; % doubled). */
function unitWord(w: string): string {
  if (/^[A-Za-z0-9_./:=@+-]+$/.test(w)) return w;
  return `"${w.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/%/g, '%%')}"`;
}

/** /etc/itera/itera.env: the settings the unit reads (EnvironmentFile=). */
export function envFile(s: ServiceSettings): string {
  return (
    `# itera serve settings (read by ${UNIT_NAME}); after a change: sudo systemctl restart itera\n` +
    `ITERA_MODEL=${s.model}\n` +
    `ITERA_HOST=${s.host}\n` +
    `ITERA_PORT=${s.port}\n` +
    `# more 'itera serve' options (see 'itera serve --help'), e.g. --parallel 2 --cors '*'\n` +
    `ITERA_SERVE_ARGS=${s.serveArgs.join(' ')}\n`
  );
}

/** The systemd unit. Hardened as far as Node allows: no MemoryDenyWriteExecute= (V8 compiles
 *  JavaScript and WebAssembly into memory it then executes). */
export function unitFile(s: ServiceSettings): string {
  const exec = [...s.exec.map(unitWord), 'serve'].join(' ');
  const loopback = LOOPBACK.test(s.host);
  return `# Written by 'itera service install'; 'itera service uninstall' removes it.
[Unit]
Description=Itera-Lite Edge completion server (itera serve)
Documentation=https://github.com/itera-lite/itera-lite/blob/main/docs/pi.md
After=network.target
StartLimitIntervalSec=60
StartLimitBurst=10

[Service]
Type=exec
User=${s.user}
Group=${s.user}
EnvironmentFile=${CONFIG_DIR}/itera.env
# 'itera serve' options such as --workers 2 come from ITERA_SERVE_ARGS in the file above
ExecStart=${exec} --model \${ITERA_MODEL} --host \${ITERA_HOST} --port \${ITERA_PORT} --api-key-file ${CONFIG_DIR}/api-key $ITERA_SERVE_ARGS
Restart=on-failure
RestartSec=200ms
TimeoutStopSec=40
SyslogIdentifier=itera
# the executable unpacks its WebAssembly builds and model here once ($CACHE_DIRECTORY)
CacheDirectory=itera
CacheDirectoryMode=0700
MemoryMax=${s.memoryMax}
TasksMax=64
UMask=0077
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
PrivateUsers=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
RemoveIPC=yes
KeyringMode=private
CapabilityBoundingSet=
AmbientCapabilities=
DevicePolicy=closed
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources
SystemCallErrorNumber=EPERM
${loopback ? 'IPAddressDeny=any\nIPAddressAllow=localhost\n' : ''}
[Install]
WantedBy=multi-user.target
`;
}

/** How this itera is started: the executable itself (a single executable application) or node
 *  with the script. */
export function currentExec(): string[] {
  let sea = false;
  try {
    // node:sea exists on Node >= 20; isSea() is true inside a single executable application
    const req = (process as unknown as { getBuiltinModule?: (m: string) => unknown }).getBuiltinModule;
    const m = req?.('node:sea') as { isSea?: () => boolean } | undefined;
    sea = m?.isSea?.() ?? false;
  } catch {
    sea = false;
  }
  if (sea) return [realpathSync(process.execPath)];
  return [realpathSync(process.execPath), realpathSync(process.argv[1] ?? '')];
}

function sh(cmd: string, args: string[], quiet = false): { code: number; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.error) throw new IteraError(`${cmd} could not run: ${r.error.message}`, 'SERVICE');
  if (!quiet && r.status !== 0)
    throw new IteraError(
      `${cmd} ${args.join(' ')} failed (exit ${r.status}): ${(r.stderr || r.stdout).trim()}`,
      'SERVICE',
    );
  return { code: r.status ?? 1, out: (r.stdout ?? '') + (r.stderr ?? '') };
}

function userIds(user: string): { uid: number; gid: number } | null {
  const r = spawnSync('id', ['-u', user], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  const g = spawnSync('id', ['-g', user], { encoding: 'utf8' });
  return { uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) };
}

const HOME_LIKE = /^\/(home|root|tmp|var\/tmp|run\/user)(\/|$)/;

export const service: Command = {
  name: 'service',
  summary: 'install, remove or check itera serve as a systemd service (Raspberry Pi appliance)',
  help: `Usage: itera service install [options]
       itera service uninstall [--purge]
       itera service status
       itera service unit [options]      print the unit and settings it would write

Runs 'itera serve' under systemd as the unprivileged user 'itera', started at boot and restarted
on failure, with its settings in ${CONFIG_DIR}/itera.env, its API key in ${CONFIG_DIR}/api-key (mode
0600, owned by the service user; made up when missing) and its logs in the journal
(journalctl -u itera). The unit is hardened (ProtectSystem=strict, PrivateTmp, NoNewPrivileges, no
capabilities, a system call filter, MemoryMax, ...). install and uninstall need root (sudo).
The executable must live outside home folders (the service cannot see them): e.g.
  sudo install -m 755 itera-linux-arm64 /usr/local/bin/itera && sudo itera service install

Options (install, unit):
  -m, --model FILE      the model to serve; copied to ${MODEL_DIR}/ (default: the shipped model)
      --host ADDR       address to listen on (default 127.0.0.1; 0.0.0.0 for the whole network,
                        which the API key then guards)
  -p, --port N          port (default 8080)
      --memory-max SIZE systemd MemoryMax= (default 256M)
      --user NAME       the service user (default itera; created as a system user)
      --serve-args ARGS more 'itera serve' options, as one string (e.g. "--parallel 2")
      --root DIR        write the files under DIR instead of / and touch neither users nor
                        systemd (for checking the files, e.g. with systemd-analyze verify)
      --purge           (uninstall) also remove ${CONFIG_DIR}, the cache and the user
  -h, --help            this help`,
  options: {
    model: { type: 'string', short: 'm' },
    host: { type: 'string' },
    port: { type: 'string', short: 'p' },
    'memory-max': { type: 'string' },
    user: { type: 'string' },
    'serve-args': { type: 'string' },
    root: { type: 'string' },
    purge: { type: 'boolean' },
  },
  positionals: [1, 1],
  args: ['ACTION (install, uninstall, status or unit)'],
  async run(v, p, io) {
    const action = p[0];
    const root = str(v, 'root') ? resolve(str(v, 'root')!) : '/';
    const at = (path: string): string => join(root, path);
    const user = str(v, 'user') ?? 'itera';
    if (!/^[a-z_][a-z0-9_-]{0,30}$/.test(user)) throw new UsageError(`--user must be a plain user name, got '${user}'`);

    if (action === 'status') {
      const active = sh('systemctl', ['is-active', UNIT_NAME], true).out.trim();
      const enabled = sh('systemctl', ['is-enabled', UNIT_NAME], true).out.trim();
      io.out.write(`${UNIT_NAME}: ${active}, ${enabled} at boot\n`);
      const env = existsSync(`${CONFIG_DIR}/itera.env`) ? readFileSync(`${CONFIG_DIR}/itera.env`, 'utf8') : '';
      const get = (k: string): string | undefined => new RegExp(`^${k}=(.*)$`, 'm').exec(env)?.[1];
      if (env) io.out.write(`model ${get('ITERA_MODEL')}, listening on ${get('ITERA_HOST')}:${get('ITERA_PORT')}\n`);
      if (active === 'active' && env) {
        const host = get('ITERA_HOST') === '0.0.0.0' ? '127.0.0.1' : get('ITERA_HOST');
        try {
          const r = await fetch(`http://${host?.includes(':') ? `[${host}]` : host}:${get('ITERA_PORT')}/health`, {
            signal: AbortSignal.timeout(5000),
          });
          io.out.write(`/health: ${r.status} ${(await r.text()).trim()}\n`);
          return r.ok ? 0 : 1;
        } catch (e) {
          io.out.write(`/health: no answer (${(e as Error).message})\n`);
          return 1;
        }
      }
      io.out.write(`logs: journalctl -u itera\n`);
      return active === 'active' ? 0 : 3;
    }

    if (action === 'uninstall') {
      if (root === '/') {
        if (process.getuid?.() !== 0) throw new UsageError('uninstall needs root: run it with sudo');
        sh('systemctl', ['disable', '--now', UNIT_NAME], true);
      }
      rmSync(at(`/etc/systemd/system/${UNIT_NAME}`), { force: true });
      rmSync(at(dirname(MODEL_DIR)), { recursive: true, force: true });
      if (v.purge) {
        rmSync(at(CONFIG_DIR), { recursive: true, force: true });
        rmSync(at('/var/cache/itera'), { recursive: true, force: true });
        if (root === '/' && userIds(user)) sh('userdel', [user], true);
      }
      if (root === '/') sh('systemctl', ['daemon-reload'], true);
      io.out.write(
        `removed ${UNIT_NAME}${v.purge ? `, ${CONFIG_DIR} and the user ${user}` : ` (kept ${CONFIG_DIR}; --purge removes it)`}\n`,
      );
      return 0;
    }

    if (action !== 'install' && action !== 'unit')
      throw new UsageError(`unknown action '${action}': install, uninstall, status or unit`);

    const host = str(v, 'host') ?? '127.0.0.1';
    if (!/^[0-9A-Za-z.:-]+$/.test(host)) throw new UsageError(`--host must be an address, got '${host}'`);
    const port = num(v, 'port', { int: true, min: 1, max: 65535 }) ?? 8080;
    const memoryMax = str(v, 'memory-max') ?? '256M';
    if (!/^\d+[KMG]?$/.test(memoryMax)) throw new UsageError(`--memory-max takes a size like 256M, got '${memoryMax}'`);
    const serveArgs = (str(v, 'serve-args') ?? '').split(/\s+/).filter(Boolean);
    for (const a of serveArgs)
      if (!/^[A-Za-z0-9_.,:=*\/-]+$/.test(a))
        throw new UsageError(`--serve-args: '${a}' holds characters a unit cannot pass safely`);
    const source = str(v, 'model') ? resolve(str(v, 'model')!) : defaultModelPath();
    if (!source) throw new UsageError('no default model is shipped with this itera: give --model FILE');
    if (!existsSync(source)) throw new UsageError(`model file not found: ${source}`);
    const exec = currentExec();
    const settings: ServiceSettings = {
      exec,
      user,
      model: `${MODEL_DIR}/${basename(source)}`,
      host,
      port,
      memoryMax,
      serveArgs,
    };
    if (action === 'unit') {
      io.out.write(
        `# /etc/systemd/system/${UNIT_NAME}\n${unitFile(settings)}\n# ${CONFIG_DIR}/itera.env\n${envFile(settings)}`,
      );
      return 0;
    }

    const live = root === '/';
    if (live) {
      if (process.getuid?.() !== 0) throw new UsageError("install needs root: run 'sudo itera service install'");
      for (const e of exec)
        if (HOME_LIKE.test(e))
          throw new UsageError(
            `${e} is under a home or temporary folder, which the service cannot see (ProtectHome, PrivateTmp): ` +
              `copy it first, e.g. 'sudo install -m 755 ${e} /usr/local/bin/itera', and run that one`,
          );
      if (!existsSync('/run/systemd/system')) throw new IteraError('this machine does not run systemd', 'SERVICE');
      if (!userIds(user))
        sh('useradd', [
          '--system',
          '--no-create-home',
          '--home-dir',
          '/nonexistent',
          '--shell',
          '/usr/sbin/nologin',
          user,
        ]);
    }
    const ids = live ? userIds(user) : null;
    mkdirSync(at(MODEL_DIR), { recursive: true, mode: 0o755 });
    if (resolve(source) !== at(settings.model)) copyFileSync(source, at(settings.model));
    chmodSync(at(settings.model), 0o644);
    mkdirSync(at(CONFIG_DIR), { recursive: true, mode: 0o755 });
    writeFileSync(at(`${CONFIG_DIR}/itera.env`), envFile(settings), { mode: 0o644 });
    const keyFile = at(`${CONFIG_DIR}/api-key`);
    if (!existsSync(keyFile)) writeFileSync(keyFile, randomBytes(24).toString('hex') + '\n', { mode: 0o600 });
    chmodSync(keyFile, 0o600);
    if (ids) chownSync(keyFile, ids.uid, ids.gid);
    mkdirSync(at('/etc/systemd/system'), { recursive: true });
    writeFileSync(at(`/etc/systemd/system/${UNIT_NAME}`), unitFile(settings), { mode: 0o644 });
    if (live) {
      sh('systemctl', ['daemon-reload']);
      sh('systemctl', ['enable', UNIT_NAME], true);
      sh('systemctl', ['restart', UNIT_NAME]);
    }
    io.out.write(
      `${live ? 'installed and started' : `wrote under ${root}`}: ${UNIT_NAME} (itera serve on ${host}:${port}, model ${settings.model})\n` +
        `  settings ${CONFIG_DIR}/itera.env, API key ${CONFIG_DIR}/api-key, logs: journalctl -u itera\n`,
    );
    return 0;
  },
};
