import Foundation

/// A report as one self-contained HTML page: inline CSS, tables, and bar charts as inline SVG;
/// no script and no external asset, and a Content-Security-Policy that forbids both, so that
/// a page sent on opens the same anywhere and a hostile name in the records cannot run.
public enum HTMLReport {
    /// The bar colours, one per series (also what the browser test looks for).
    public static let seriesColours = ["#b03a2e", "#2e6fb0"]

    public static func render(_ doc: ReportDocument, generated: Date = Date()) -> String {
        var h = """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(escape(doc.title))</title>
            <style>
            body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; padding: 0 1em; }
            h1 { font-size: 1.5em; margin-bottom: .2em; }
            h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #ccc; }
            p.note { color: #555; margin: .2em 0; }
            table { border-collapse: collapse; width: 100%; font-size: .9em; margin: .8em 0; }
            th, td { border: 1px solid #ddd; padding: .3em .5em; text-align: left; vertical-align: top; }
            th { background: #f3f3f3; }
            td.num { text-align: right; font-variant-numeric: tabular-nums; }
            svg { display: block; margin: .8em 0; max-width: 100%; height: auto; }
            svg text { font-family: system-ui, sans-serif; font-size: 12px; fill: #222; }
            footer { margin-top: 2em; color: #777; font-size: .8em; }
            </style>
            </head>
            <body>
            <h1>\(escape(doc.title))</h1>

            """
        for n in doc.notes { h += "<p class=\"note\">\(escape(n))</p>\n" }
        for s in doc.sections {
            h += "<section>\n<h2>\(escape(s.title))</h2>\n"
            if let chart = s.chart { h += svg(chart) }
            if s.rows.isEmpty {
                h += "<p class=\"note\">\(escape(s.empty))</p>\n"
            } else {
                h += "<table>\n<thead><tr>" + s.columns.map { "<th>\(escape($0))</th>" }.joined() + "</tr></thead>\n<tbody>\n"
                for r in s.rows {
                    h += "<tr>" + r.enumerated().map { k, c in
                        s.numeric.contains(k) ? "<td class=\"num\">\(escape(c))</td>" : "<td>\(escape(c))</td>"
                    }.joined() + "</tr>\n"
                }
                h += "</tbody>\n</table>\n"
            }
            h += "</section>\n"
        }
        let stamp = ISO8601DateFormatter().string(from: generated)
        h += "<footer>Made by Fieldbook on \(escape(stamp)).</footer>\n</body>\n</html>\n"
        return h
    }

    /// A horizontal bar chart: one row per bar, one bar per series, the value at its end.
    static func svg(_ c: ReportDocument.Chart) -> String {
        let labelWidth = 260, barArea = 560, barHeight = 14, gap = 8, top = 34
        let rowHeight = c.series.count * barHeight + gap
        let height = top + c.bars.count * rowHeight + 28
        let width = labelWidth + barArea + 60
        let maxValue = max(1, c.bars.flatMap(\.values).max() ?? 1)
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" role=\"img\" aria-label=\"\(escape(c.title))\">\n"
        s += "<title>\(escape(c.title))</title>\n"
        s += "<text x=\"0\" y=\"16\" style=\"font-weight:600;font-size:14px\">\(escape(c.title))</text>\n"
        for (i, bar) in c.bars.enumerated() {
            let y = top + i * rowHeight
            let label = bar.label.count > 40 ? String(bar.label.prefix(39)) + "…" : bar.label
            s += "<text x=\"\(labelWidth - 8)\" y=\"\(y + barHeight - 2)\" text-anchor=\"end\"><title>\(escape(bar.label))</title>\(escape(label))</text>\n"
            for (k, v) in bar.values.enumerated() {
                let w = max(v > 0 ? 2 : 0, v * barArea / maxValue)
                let by = y + k * barHeight
                s += "<rect x=\"\(labelWidth)\" y=\"\(by)\" width=\"\(w)\" height=\"\(barHeight - 2)\" fill=\"\(seriesColours[k % seriesColours.count])\"/>"
                s += "<text x=\"\(labelWidth + w + 4)\" y=\"\(by + barHeight - 3)\">\(v)</text>\n"
            }
        }
        if c.series.count > 1 {
            let y = top + c.bars.count * rowHeight + 8
            for (k, name) in c.series.enumerated() {
                let x = labelWidth + k * 120
                s += "<rect x=\"\(x)\" y=\"\(y)\" width=\"12\" height=\"12\" fill=\"\(seriesColours[k % seriesColours.count])\"/>"
                s += "<text x=\"\(x + 16)\" y=\"\(y + 11)\">\(escape(name))</text>\n"
            }
        }
        return s + "</svg>\n"
    }

    /// Text as HTML character data or attribute value.
    public static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for ch in s.unicodeScalars {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default:
                // Control characters (none should reach here; the model refuses them) are dropped.
                if ch.value < 0x20 && ch != "\n" && ch != "\t" { continue }
                out.unicodeScalars.append(ch)
            }
        }
        return out
    }
}
