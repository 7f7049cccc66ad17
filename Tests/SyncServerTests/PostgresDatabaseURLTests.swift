import PostgresStore
import SyncServer
import Testing

/// `--database URL` (and `FIELDBOOK_DATABASE_URL`): every setting is checked before anything
/// connects, and a wrong one is refused with an error naming it; what is not given has its
/// documented default; the password never shows in what is logged.
@Suite struct PostgresDatabaseURLTests {
    static func parameters(_ db: PostgresStore.PostgresDatabase) -> [String: String] {
        Dictionary(db.configuration.options.additionalStartupParameters.map { ($0.0, $0.1) }, uniquingKeysWith: { _, last in last })
    }

    @Test func aPlainURLGetsTheDocumentedDefaults() throws {
        let db = try PostgresDatabase(url: "postgres://fieldbook:s3cret@127.0.0.1:5433/fieldbook")
        #expect(db.configuration.host == "127.0.0.1" && db.configuration.port == 5433)
        #expect(db.configuration.username == "fieldbook" && db.configuration.database == "fieldbook")
        #expect(Self.parameters(db) == ["statement_timeout": "30s", "idle_in_transaction_session_timeout": "60s",
                                        "plan_cache_mode": "force_custom_plan"])
        #expect(db.configuration.options.maximumConnections == 20)
        #expect(db.sslMode == "disable", "loopback: no TLS unless asked")
        #expect(!db.display.contains("s3cret") && db.display.contains("***"), "\(db.display)")
    }

    @Test func aHostElsewhereRequiresTLSUnlessTheURLSaysOtherwise() throws {
        #expect(try PostgresDatabase(url: "postgres://fieldbook@db.example.org/fieldbook").sslMode == "require")
        #expect(try PostgresDatabase(url: "postgresql://fieldbook@10.0.0.7:5432/fieldbook").sslMode == "require")
        #expect(try PostgresDatabase(url: "postgres://fieldbook@localhost/fieldbook").sslMode == "disable")
        let v6 = try PostgresDatabase(url: "postgres://fieldbook@[::1]:5432/fieldbook")
        #expect(v6.sslMode == "disable" && v6.configuration.host == "::1", "\(v6.configuration.host ?? "-")")
        #expect(try PostgresDatabase(url: "postgres://fieldbook@db.example.org/fieldbook?sslmode=prefer").sslMode == "prefer")
        #expect(try PostgresDatabase(url: "postgres://fieldbook@127.0.0.1/fieldbook?sslmode=require").sslMode == "require")
    }

    @Test func everySettingIsTakenWhenItIsRight() throws {
        let db = try PostgresDatabase(url: "postgres://u@127.0.0.1/d?statement_timeout=500ms&idle_in_transaction_session_timeout=2min&max_connections=4&plan_cache_mode=auto")
        #expect(Self.parameters(db) == ["statement_timeout": "500ms", "idle_in_transaction_session_timeout": "2min", "plan_cache_mode": "auto"])
        #expect(db.configuration.options.maximumConnections == 4)
    }

    /// Each wrong URL is refused with a 400-class store error whose message names what is wrong.
    @Test(arguments: [
        ("http://u@127.0.0.1/d", "postgres://"),
        ("postgres://127.0.0.1/d", "postgres://"),                     // no user
        ("postgres://u@/d", "postgres://"),                            // no host
        ("not a url at all", "postgres://"),
        ("postgres://u@127.0.0.1/d?sslmode=off", "sslmode"),
        ("postgres://u@127.0.0.1/d?statement_timeout=1%20day", "statement_timeout"),
        ("postgres://u@127.0.0.1/d?statement_timeout=30s%3B%20DROP%20TABLE%20fb_row", "statement_timeout"),
        ("postgres://u@127.0.0.1/d?statement_timeout=", "statement_timeout"),
        ("postgres://u@127.0.0.1/d?idle_in_transaction_session_timeout=99999999999s", "idle_in_transaction_session_timeout"),
        ("postgres://u@127.0.0.1/d?max_connections=0", "max_connections"),
        ("postgres://u@127.0.0.1/d?max_connections=501", "max_connections"),
        ("postgres://u@127.0.0.1/d?max_connections=-1", "max_connections"),
        ("postgres://u@127.0.0.1/d?max_connections=99999999999999999999999", "max_connections"),
        ("postgres://u@127.0.0.1/d?plan_cache_mode=fast", "plan_cache_mode"),
        ("postgres://u@127.0.0.1/d?search_path=evil", "search_path"),   // not a known setting
    ])
    func aWrongURLIsRefusedNamingWhatIsWrong(url: String, named: String) {
        do {
            _ = try PostgresDatabase(url: url)
            Issue.record("accepted \(url)")
        } catch let e as ServerError {
            #expect(e.status.code == 400 && e.message.contains(named), "\(url): \(e.message)")
        } catch {
            Issue.record("\(url): not a ServerError: \(error)")
        }
    }
}
