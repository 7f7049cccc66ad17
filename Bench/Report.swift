import Foundation

/// Prints the benchmark table (medians of the measured runs), or one JSON object.
enum Report {
    static func print(_ results: [(Workload, [Figures])], json: Bool) {
        var objects: [[String: Any]] = []
        for (w, figs) in results {
            func med(_ k: (Figures) -> Double) -> Double { Measure.median(figs.map(k)) }
            let f = figs[0]
            let o: [String: Any] = [
                "workload": w.name,
                "insert_ratio": med { $0.fbInsertMs / $0.plainInsertMs },
                "update_ratio": med { $0.fbUpdateMs / $0.plainUpdateMs },
                "apply_ratio": med { $0.fbApplyMs / $0.plainLoadMs },
                "plain_insert_ms": med(\.plainInsertMs), "insert_ms": med(\.fbInsertMs),
                "plain_update_ms": med(\.plainUpdateMs), "update_ms": med(\.fbUpdateMs),
                "plain_load_ms": med(\.plainLoadMs), "apply_ms": med(\.fbApplyMs),
                "extract_ms": med(\.extractMs), "encode_ms": med(\.encodeMs), "decode_ms": med(\.decodeMs),
                "full_changeset_raw_bytes": f.rawBytes, "full_changeset_gzip_bytes": f.gzipBytes,
                "incremental_round_ms": med(\.round2Ms), "incremental_round_bytes": f.round2Bytes,
                "replica_size_ratio": Double(f.replicaFile) / Double(f.plainFile),
                "replica_bytes": f.replicaFile, "plain_bytes": f.plainFile,
                "state_hash": f.hashA, "state_hash_b": f.hashB, "state_hash_plain": f.hashPlain,
                "expected_state_hash": w.expectedHash ?? "",
            ]
            objects.append(o)
        }
        if json {
            var top = objects[0]
            top["domain"] = objects.count > 1 ? objects[1] : [:]
            let d = try! JSONSerialization.data(withJSONObject: top, options: [.prettyPrinted, .sortedKeys])
            Swift.print(String(decoding: d, as: UTF8.self))
            return
        }
        for o in objects {
            Swift.print("\n## \(o["workload"]!)")
            Swift.print(pad("metric", 44) + pad("plain SQLite", 16) + pad("Fieldbook", 16) + "ratio / target")
            func row(_ name: String, _ p: Any, _ v: Any, _ r: String) { Swift.print(pad(name, 44) + pad("\(p)", 16) + pad("\(v)", 16) + r) }
            func ms(_ k: String) -> String { String(format: "%.2f ms", o[k] as! Double) }
            func x(_ k: String) -> String { String(format: "%.2f×", o[k] as! Double) }
            row("10,000 inserts, one transaction", ms("plain_insert_ms"), ms("insert_ms"), x("insert_ratio") + "  (target ≤ 1.5×)")
            row("20,000 single-field updates, one transaction", ms("plain_update_ms"), ms("update_ms"), x("update_ratio") + "  (target ≤ 1.5×)")
            row("round 1: apply all on empty replica", ms("plain_load_ms"), ms("apply_ms"), x("apply_ratio") + "  (target ≤ 3×)")
            row("round 1: extract / encode / decode", "", "\(ms("extract_ms")) / \(ms("encode_ms")) / \(ms("decode_ms"))", "")
            let raw = o["full_changeset_raw_bytes"] as! Int, gz = o["full_changeset_gzip_bytes"] as! Int
            row("round 1: changeset raw / gzip", "", "\(raw / 1024) / \(gz / 1024) KiB", "(target ≤ 300 KiB gzip)")
            row("round 2: 100 updates, delta round", "", ms("incremental_round_ms"), "\(o["incremental_round_bytes"]!) B  (target ≤ 2 ms)")
            row("file size", "\((o["plain_bytes"] as! Int) / 1024) KiB", "\((o["replica_bytes"] as! Int) / 1024) KiB", x("replica_size_ratio"))
            let agree = o["state_hash"] as! String == o["state_hash_b"] as! String && o["state_hash"] as! String == o["state_hash_plain"] as! String
            Swift.print("state hash A = B = plain: \(agree ? "yes" : "NO")  \(o["state_hash"]!)")
            if let e = o["expected_state_hash"] as? String, !e.isEmpty {
                Swift.print("expected state hash matches: \(e == o["state_hash"] as! String ? "yes" : "NO")")
            }
        }
    }

    static func pad(_ s: String, _ n: Int) -> String {
        s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count)
    }
}
