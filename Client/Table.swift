import FieldbookModel
import Foundation

/// An aligned text table.
struct Table {
    var header: [String]
    var rows: [[String]] = []

    func render() -> String {
        let rows = self.rows.map { $0.map { Terminal.safe($0) } }
        var widths = header.map(\.count)
        for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in i == cells.count - 1 ? c : c + String(repeating: " ", count: widths[i] - c.count) }
                .joined(separator: "  ")
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }
}

/// One line of free text for a table cell.
func cell(_ s: String?, max: Int = 40) -> String {
    let flat = Terminal.safe((s ?? "").replacingOccurrences(of: "\r\n", with: " ").replacingOccurrences(of: "\n", with: " "))
    return flat.count > max ? String(flat.prefix(max - 1)) + "…" : flat
}

func printJSON<T: Encodable>(_ value: T) throws {
    let e = JSONEncoder()
    e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    printBytes(try e.encode(value))
}
