import FieldbookModel
import Foundation

/// Every line `fieldbook-server` prints goes through `Terminal.safe`: a device or token name
/// from a bundle, a store or a request that holds terminal escapes is shown escaped, never acted
/// on by the operator's terminal. (It shadows `Swift.print` in this module.)
func print(_ items: Any..., separator: String = " ", terminator: String = "\n") {
    Swift.print(Terminal.safe(items.map { "\($0)" }.joined(separator: separator), keepLineBreaks: true), terminator: terminator)
}

/// A line on standard error, made safe the same way (`text` without its line break).
func printError(_ text: String) {
    FileHandle.standardError.write(Data((Terminal.safe(text, keepLineBreaks: true) + "\n").utf8))
}
