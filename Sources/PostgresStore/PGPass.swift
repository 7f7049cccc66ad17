import Foundation

/// Where the PostgreSQL password comes from when the URL holds none — never the command line,
/// which every user of the machine reads in the process list: a file holding only the password
/// (`--database-password-file`, `FIELDBOOK_DATABASE_PASSWORD_FILE`), else a password file in
/// libpq's format (`PGPASSFILE`, else `~/.pgpass`): lines `host:port:database:user:password`,
/// `*` matching anything, `\:` and `\\` escaped, `#` comments. The first matching line wins.
public enum PGPass {
    /// The password for a connection, or nil when no file names one.
    public static func password(host: String, port: Int, database: String, user: String, passwordFile: String?,
                                environment: [String: String]) throws -> String? {
        if let f = passwordFile ?? environment["FIELDBOOK_DATABASE_PASSWORD_FILE"].flatMap({ $0.isEmpty ? nil : $0 }) {
            guard let data = FileManager.default.contents(atPath: f), let text = String(data: data, encoding: .utf8),
                  let line = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).first, !line.isEmpty else {
                throw PGPassError(message: "--database-password-file \(f): cannot read a password from it (one line, the password)")
            }
            return String(line)
        }
        let file = environment["PGPASSFILE"].flatMap { $0.isEmpty ? nil : $0 }
            ?? environment["HOME"].map { $0 + "/.pgpass" }
        // As libpq: a password file others may read (group or world bits) is not used.
        var st = stat()
        guard let file, stat(file, &st) == 0, st.st_mode & 0o077 == 0,
              let data = FileManager.default.contents(atPath: file), let text = String(data: data, encoding: .utf8) else { return nil }
        for line in text.split(whereSeparator: \.isNewline) where !line.hasPrefix("#") {
            let f = fields(String(line))
            guard f.count == 5 else { continue }
            let wanted = [host, String(port), database, user]
            if zip(f.prefix(4), wanted).allSatisfy({ $0 == "*" || $0 == $1 }) { return f[4] }
        }
        return nil
    }

    /// A line's fields, split at unescaped colons.
    static func fields(_ line: String) -> [String] {
        var out: [String] = [], cur = "", escaped = false
        for c in line {
            if escaped { cur.append(c); escaped = false }
            else if c == "\\" { escaped = true }
            else if c == ":" { out.append(cur); cur = "" }
            else { cur.append(c) }
        }
        out.append(cur)
        return out
    }

    /// The warning for a password written in a URL given on the command line.
    public static func commandLineWarning(_ url: String) -> String? {
        guard let u = URLComponents(string: url), u.password != nil else { return nil }
        return "--database holds a password, which every user of this machine can read in the process list; give it in FIELDBOOK_DATABASE_URL, --database-password-file or a PGPASSFILE instead"
    }
}

public struct PGPassError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
