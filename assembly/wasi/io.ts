// Output, exit, time, arguments and files over WASI.

import {
  fd_write, proc_exit, clock_time_get, args_sizes_get, args_get, fd_prestat_get, fd_prestat_dir_name,
  path_open, fd_read, fd_seek, fd_close, errnoName, CLOCK_MONOTONIC, WHENCE_END, WHENCE_SET,
  LOOKUP_SYMLINK_FOLLOW, RIGHT_FD_READ, RIGHT_FD_SEEK, RIGHT_FD_TELL, RIGHT_FD_WRITE,
  RIGHT_FD_FILESTAT_GET, OFLAGS_CREAT, OFLAGS_TRUNC, ERRNO_NOENT, ERRNO_NOTCAPABLE,
} from './wasi';

export const STDOUT: u32 = 1;
export const STDERR: u32 = 2;

// one scratch area for iovecs and out-parameters (the module is single-threaded)
const scratch = heap.alloc(64);

/** Writes len bytes at ptr to fd, all of them (WASI may write fewer per call). */
export function writeBytes(fd: u32, ptr: usize, len: usize): bool {
  while (len > 0) {
    store<u32>(scratch, <u32>ptr);
    store<u32>(scratch + 4, <u32>len);
    if (fd_write(fd, scratch, 1, scratch + 8) != 0) return false;
    const n = <usize>load<u32>(scratch + 8);
    if (n == 0) return false;
    ptr += n;
    len -= n;
  }
  return true;
}

export function write(fd: u32, s: string): void {
  const b = String.UTF8.encode(s);
  writeBytes(fd, changetype<usize>(b), <usize>b.byteLength);
}

/** Prints `itera-wasi: msg` to stderr and exits with code (never returns). */
export function die(msg: string, code: u32 = 1): void {
  write(STDERR, 'itera-wasi: ' + msg + '\n');
  proc_exit(code);
  unreachable();
}

/** Monotonic clock in nanoseconds. */
export function nowNs(): u64 {
  if (clock_time_get(CLOCK_MONOTONIC, 1000, scratch) != 0) return 0;
  return load<u64>(scratch);
}

/** The command line (argv[0] included), decoded from UTF-8. */
export function args(): string[] {
  const out = new Array<string>();
  if (args_sizes_get(scratch, scratch + 4) != 0) return out;
  const argc = <i32>load<u32>(scratch);
  const bufSize = <usize>load<u32>(scratch + 4);
  const argv = heap.alloc(<usize>argc * 4 + 4);
  const buf = heap.alloc(bufSize + 1);
  if (args_get(argv, buf) != 0) return out;
  for (let i = 0; i < argc; i++) {
    const p = <usize>load<u32>(argv + (<usize>i << 2));
    let e = p;
    const end = buf + bufSize;
    while (e < end && load<u8>(e) != 0) e++;
    out.push(String.UTF8.decodeUnsafe(p, e - p));
  }
  heap.free(argv);
  heap.free(buf);
  return out;
}

// ---- Files: a path is resolved against the directories the runtime preopened (--dir)

class Preopen {
  constructor(public fd: u32, public name: string) {}
}

let preopens: Preopen[] | null = null;

function listPreopens(): Preopen[] {
  let list = preopens;
  if (list !== null) return list;
  list = new Array<Preopen>();
  for (let fd: u32 = 3; fd < 64; fd++) {
    if (fd_prestat_get(fd, scratch) != 0) break;
    if (load<u8>(scratch) != 0) continue; // not a directory
    const len = <usize>load<u32>(scratch + 4);
    const name = heap.alloc(len + 1);
    if (fd_prestat_dir_name(fd, name, len) == 0) {
      let n = len;
      while (n > 0 && load<u8>(name + n - 1) == 0) n--; // some runtimes count a NUL
      list.push(new Preopen(fd, String.UTF8.decodeUnsafe(name, n)));
    }
    heap.free(name);
  }
  preopens = list;
  return list;
}

function stripSlashes(s: string): string {
  let i = 0;
  while (i < s.length && s.charCodeAt(i) == 47) i++;
  return s.substring(i);
}

/** A preopen's name as an absolute folder ('/a/b'), '.' for the current one, '/' for the root.
 *  Runtimes differ: wasmer lists '/a/b' as 'a/b', some list the root as ''. */
function trimName(name: string): string {
  while (name.length > 1 && name.endsWith('/')) name = name.substring(0, name.length - 1);
  if (name == '' || name == '/') return '/';
  if (name == '.' || name == './') return '.';
  if (name.startsWith('./')) name = name.substring(2);
  return name.startsWith('/') ? name : '/' + name;
}

/** How well a preopened directory fits a path: -1 not at all, else larger is better. */
function fit(dir: Preopen, path: string): i32 {
  const name = trimName(dir.name);
  if (path.startsWith('/')) {
    if (name == '/') return 1;
    if (name != '.' && (path == name || path.startsWith(name + '/'))) return 1 + name.length;
    return -1;
  }
  if (name == '.') return 1 << 16;
  return 0; // a relative path: wasmer maps --dir folders by name; try the others last
}

/** The path relative to a preopened directory that fits it. */
function relativeTo(dir: Preopen, path: string): string {
  if (!path.startsWith('/')) return path;
  const name = trimName(dir.name);
  const rest = name == '/' ? path : path.substring(name.length);
  const r = stripSlashes(rest);
  return r.length == 0 ? '.' : r;
}

/** Opens path in the best-fitting preopened directory that lets it (runtimes differ in which
 *  directories they list first and what each may open); on failure calls die() with a message. */
function open(path: string, write: bool, what: string): u32 {
  const list = listPreopens();
  const rights: u64 = write ? RIGHT_FD_WRITE | RIGHT_FD_SEEK | RIGHT_FD_TELL
    : RIGHT_FD_READ | RIGHT_FD_SEEK | RIGHT_FD_TELL | RIGHT_FD_FILESTAT_GET;
  let firstErr: u16 = 0;
  for (let want = 1 << 30; want >= 0; ) {
    // the best remaining fit below `want`
    let best = -1;
    for (let i = 0; i < list.length; i++) { const f = fit(list[i], path); if (f < want && f > best) best = f; }
    if (best < 0) break;
    for (let i = 0; i < list.length; i++) {
      if (fit(list[i], path) != best) continue;
      const rel = String.UTF8.encode(relativeTo(list[i], path));
      const e = path_open(list[i].fd, LOOKUP_SYMLINK_FOLLOW, changetype<usize>(rel), <usize>rel.byteLength,
        write ? OFLAGS_CREAT | OFLAGS_TRUNC : 0, rights, 0, 0, scratch);
      if (e == 0) return load<u32>(scratch);
      if (firstErr == 0 || (firstErr == ERRNO_NOTCAPABLE && e != ERRNO_NOTCAPABLE)) firstErr = e;
    }
    want = best;
  }
  if (list.length == 0) {
    die(`cannot open ${what} '${path}': the runtime gave the module no directory; run it with one, e.g. wasmtime run --dir . ...`);
  }
  die(`cannot open ${what} '${path}': ` + (firstErr == 0 ? 'no directory given to the runtime holds it' : errnoName(firstErr)) +
    (firstErr == ERRNO_NOENT ? '' : ` (directories given: ${preopenNames()})`));
  return 0;
}

function preopenNames(): string {
  const list = listPreopens();
  let s = '';
  for (let i = 0; i < list.length; i++) s += (i > 0 ? ', ' : '') + "'" + list[i].name + "'";
  return list.length == 0 ? 'none' : s;
}

/** A whole file in a fresh heap block: [ptr, len]. The block is 16-byte aligned. */
export class FileBytes {
  constructor(public ptr: usize, public len: usize) {}
}

export function readFile(path: string, what: string, maxBytes: u64): FileBytes {
  const fd = open(path, false, what);
  if (fd_seek(fd, 0, WHENCE_END, scratch) != 0) die(`cannot read ${what} '${path}': it cannot be seeked (is it a directory?)`);
  const size = load<u64>(scratch);
  if (size > maxBytes) die(`${what} '${path}' is ${size.toString()} bytes, more than this module can hold (${maxBytes.toString()})`);
  if (fd_seek(fd, 0, WHENCE_SET, scratch) != 0) die(`cannot read ${what} '${path}'`);
  const len = <usize>size;
  const ptr = heap.alloc(len > 0 ? len : 1);
  let got: usize = 0;
  while (got < len) {
    store<u32>(scratch, <u32>(ptr + got));
    store<u32>(scratch + 4, <u32>(len - got));
    const e = fd_read(fd, scratch, 1, scratch + 8);
    if (e != 0) die(`cannot read ${what} '${path}': ${errnoName(e)}`);
    const n = <usize>load<u32>(scratch + 8);
    if (n == 0) break;
    got += n;
  }
  fd_close(fd);
  if (got != len) die(`${what} '${path}' changed size while being read (${got.toString()} of ${len.toString()} bytes)`);
  return new FileBytes(ptr, len);
}

export function writeFile(path: string, what: string, ptr: usize, len: usize): void {
  const fd = open(path, true, what);
  if (!writeBytes(fd, ptr, len)) die(`cannot write ${what} '${path}'`);
  fd_close(fd);
}

/** Internal errors (a failed assertion, an index out of range): a message, then exit 70. */
export function wasiAbort(message: string | null, fileName: string | null, line: u32, column: u32): void {
  write(STDERR, 'itera-wasi: internal error: ' + (message !== null ? message : 'abort') + ' at ' +
    (fileName !== null ? fileName : '?') + ':' + line.toString() + ':' + column.toString() + '\n');
  proc_exit(70);
  unreachable();
}
