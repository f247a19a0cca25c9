// The few wasi_snapshot_preview1 functions the standalone module uses, declared by hand (no
// bindings library): the module imports these and nothing else, so it runs unchanged under
// wasmtime, wasmer, node:wasi and @wasmer/wasi. Every function returns a WASI errno (0 = success).

// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "args_sizes_get")
export declare function args_sizes_get(argc: usize, argvBufSize: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "args_get")
export declare function args_get(argv: usize, argvBuf: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_prestat_get")
export declare function fd_prestat_get(fd: u32, buf: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_prestat_dir_name")
export declare function fd_prestat_dir_name(fd: u32, path: usize, len: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "path_open")
export declare function path_open(dirfd: u32, dirflags: u32, path: usize, pathLen: usize, oflags: u16,
  rightsBase: u64, rightsInheriting: u64, fdflags: u16, fdOut: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_read")
export declare function fd_read(fd: u32, iovs: usize, iovsLen: usize, nread: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_write")
export declare function fd_write(fd: u32, iovs: usize, iovsLen: usize, nwritten: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_seek")
export declare function fd_seek(fd: u32, offset: i64, whence: u8, newOffset: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_close")
export declare function fd_close(fd: u32): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "clock_time_get")
export declare function clock_time_get(clock: u32, precision: u64, time: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "proc_exit")
export declare function proc_exit(code: u32): void;

export const ERRNO_SUCCESS: u16 = 0;
export const ERRNO_BADF: u16 = 8;
export const ERRNO_NOENT: u16 = 44;
export const ERRNO_ACCES: u16 = 2;
export const ERRNO_NOTCAPABLE: u16 = 76;
export const ERRNO_ISDIR: u16 = 31;
export const CLOCK_MONOTONIC: u32 = 1;
export const WHENCE_SET: u8 = 0;
export const WHENCE_END: u8 = 2;
export const OFLAGS_CREAT: u16 = 1;
export const OFLAGS_TRUNC: u16 = 8;
export const LOOKUP_SYMLINK_FOLLOW: u32 = 1;
export const RIGHT_FD_READ: u64 = 1 << 1;
export const RIGHT_FD_SEEK: u64 = 1 << 2;
export const RIGHT_FD_TELL: u64 = 1 << 5;
export const RIGHT_FD_WRITE: u64 = 1 << 6;
export const RIGHT_FD_FILESTAT_GET: u64 = 1 << 21;

/** A short human name for the errnos a user meets. */
export function errnoName(e: u16): string {
  switch (e) {
    case ERRNO_NOENT: return 'no such file';
    case ERRNO_ACCES: return 'permission denied';
    case ERRNO_NOTCAPABLE: return 'not reachable from the directories given to the runtime (--dir)';
    case ERRNO_ISDIR: return 'is a directory';
    case ERRNO_BADF: return 'bad file descriptor';
    default: return 'WASI errno ' + e.toString();
  }
}
