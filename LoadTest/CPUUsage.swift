import Foundation

/// Where the machine's CPU went during a run: this process (the simulated devices), its child
/// processes once reaped (the servers), and the whole machine (`/proc/stat`, Linux), so that a
/// run says whether it measured the servers or the machine's limit.
struct CPUUsage {
    /// Jiffies since boot: (busy, all) over every core; nil where `/proc/stat` is missing.
    static func machine() -> (busy: Double, all: Double)? {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
              let line = text.split(separator: "\n").first, line.hasPrefix("cpu ") else { return nil }
        let v = line.split(separator: " ").dropFirst().compactMap { Double($0) }
        guard v.count >= 5 else { return nil }
        let all = v.prefix(8).reduce(0, +)
        return (all - v[3] - v[4], all)   // less idle and I/O wait
    }

    /// CPU seconds (user and system) of this process, or of its reaped children.
    static func seconds(children: Bool) -> Double {
        var u = rusage()
        getrusage(children ? RUSAGE_CHILDREN.rawValue : RUSAGE_SELF.rawValue, &u)
        func s(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return s(u.ru_utime) + s(u.ru_stime)
    }
}
