import Foundation

/// Overwrites a file's bytes in place before it goes (best effort). On a plain file system on a
/// spinning disk the old bytes are gone; on SSDs (wear levelling), copy-on-write file systems
/// (btrfs, ZFS, APFS), snapshots and backups the old blocks may survive — `Scrub.caveat` says
/// so wherever a command relies on it. Full-disk encryption is what protects those.
public enum Scrub {
    public static let caveat = "on SSDs, copy-on-write file systems (btrfs, ZFS, APFS), snapshots and backups the old data may survive an overwrite: full-disk encryption is what protects it there"

    /// Writes random bytes over the whole of the open file `fd` and waits for the disk.
    /// Returns whether every byte was overwritten.
    @discardableResult
    public static func overwrite(_ fd: Int32) -> Bool {
        var st = stat()
        guard fstat(fd, &st) == 0 else { return false }
        let size = Int64(st.st_size)
        var rng = SystemRandomNumberGenerator()
        var words = [UInt64](repeating: 0, count: (1 << 16) / 8)
        for i in words.indices { words[i] = rng.next() }
        let chunk = words.withUnsafeBytes { Array($0) }
        var at: Int64 = 0
        while at < size {
            let n = Int(min(Int64(chunk.count), size - at))
            let w = chunk.withUnsafeBytes { pwrite(fd, $0.baseAddress, n, off_t(at)) }
            guard w == n else { return false }
            at += Int64(n)
        }
        return fsync(fd) == 0
    }

    /// Overwrites the file at `path`, if there is one.
    @discardableResult
    public static func overwrite(path: String) -> Bool {
        let fd = open(path, O_RDWR)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return overwrite(fd)
    }
}
