/**
 * Reads of the kernel's memory-backed filesystems (procfs, sysfs, devtmpfs), done synchronously.
 * They never wait on a disk, and the asynchronous fs calls are each a round trip through libuv's
 * thread pool (a readFile is four: open, fstat, read, close), a few milliseconds apiece under
 * emulation, on every stage and publish (issue 20, docs/benchmarks.md). Paths on real
 * filesystems (the kubelet directory, block devices' contents) stay asynchronous.
 */

/** `read`'s value as a promise; what it throws (ENOENT, EACCES) rejects it. */
export function fromMemoryFs<T>(read: () => T): Promise<T> {
  return new Promise((resolve) => resolve(read()));
}
