import FieldbookModel
import Foundation

/// Every line this CLI prints goes through `Terminal.safe`: a device name, record value, server
/// message or file name that holds terminal escapes or direction overrides is shown escaped,
/// never acted on by the terminal. (It shadows `Swift.print` in this module; machine output —
/// JSON, CSV, HTML — is written as bytes, not through it.)
func print(_ items: Any..., separator: String = " ", terminator: String = "\n") {
    Swift.print(Terminal.safe(items.map { "\($0)" }.joined(separator: separator), keepLineBreaks: true), terminator: terminator)
}

/// Machine output (JSON) as bytes, with a line break, bypassing the escaping `print`: its
/// encoder escapes C0 controls itself, and a name's direction mark must reach a parser as the
/// character it is, not as `\u{202e}` text (which is not JSON).
func printBytes(_ data: Data) {
    FileHandle.standardOutput.write(data + Data("\n".utf8))
}
