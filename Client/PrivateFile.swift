import Foundation

/// Files the CLI writes (exports, reports, bundles, key backups) are the owner's alone: mode
/// 0600 from the first byte (never created readable and narrowed afterwards), written to a
/// temporary file beside the target and renamed over it once synced, so that a crash leaves the
/// old file or the new one, never half of one.
enum PrivateFile {
    enum Existing { case replace, refuse }

    static func write(_ data: Data, to path: String, existing: Existing = .replace) throws {
        if existing == .refuse && FileManager.default.fileExists(atPath: path) {
            throw PrivateFileError(message: "\(path) exists already; choose another file")
        }
        let dir = (path as NSString).deletingLastPathComponent
        let temp = (dir.isEmpty ? "." : dir) + "/.\((path as NSString).lastPathComponent).\(UUID().uuidString.prefix(8)).tmp"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw PrivateFileError(message: "cannot write \(path): \(String(cString: strerror(errno)))") }
        var ok = false
        defer {
            close(fd)
            if !ok { unlink(temp) }
        }
        guard writeAll(data, fd), fchmod(fd, 0o600) == 0, fsync(fd) == 0 else {
            throw PrivateFileError(message: "cannot write \(path): \(String(cString: strerror(errno)))")
        }
        if existing == .refuse {
            // link fails if the target appeared meanwhile: never replace what was refused above.
            // File systems without hard links (FAT and exFAT USB sticks) get an exclusive create.
            if link(temp, path) != 0 {
                let why = errno
                guard why == EPERM || why == ENOTSUP || why == EOPNOTSUPP || why == EXDEV else {
                    throw PrivateFileError(message: "cannot write \(path): \(String(cString: strerror(why)))")
                }
                try writeExclusive(data, to: path)
            }
            unlink(temp)
        } else {
            guard rename(temp, path) == 0 else { throw PrivateFileError(message: "cannot write \(path): \(String(cString: strerror(errno)))") }
        }
        ok = true
    }
}

extension PrivateFile {
    /// Creates `path` (0600, refusing an existing one) and writes `data` to it, synced; removes
    /// it again if the write fails.
    static func writeExclusive(_ data: Data, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw PrivateFileError(message: "cannot write \(path): \(String(cString: strerror(errno)))") }
        let ok = writeAll(data, fd) && fsync(fd) == 0
        close(fd)
        guard ok else {
            unlink(path)
            throw PrivateFileError(message: "cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }
}

extension PrivateFile {
    /// Writes all of `data` to `fd` (short writes continued, interrupted ones retried).
    static func writeAll(_ data: Data, _ fd: Int32) -> Bool {
        var at = 0
        return data.withUnsafeBytes { b -> Bool in
            while at < b.count {
                let n = Foundation.write(fd, b.baseAddress! + at, b.count - at)
                if n < 0 { if errno == EINTR { continue }; return false }
                at += n
            }
            return true
        }
    }
}

struct PrivateFileError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
