use super::*;

fn parsed(text: &str) -> PgUrl<'_> {
    PgUrl::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn refusal(text: &str) -> (String, Option<String>) {
    match PgUrl::parse(text) {
        Ok(_) => panic!("{text} parsed"),
        Err(e) => (e.to_string(), e.hint()),
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn every_url_form_libpq_reads_is_read_alike() {
    let cases: &[(&str, &[(&str, &str)])] = &[
        ("postgres://", &[]),
        ("postgresql://", &[]),
        ("postgres://db.example", &[("host", "db.example")]),
        (
            "postgresql://db.example:5433",
            &[("host", "db.example"), ("port", "5433")],
        ),
        (
            "postgres://db.example/sales",
            &[("dbname", "sales"), ("host", "db.example")],
        ),
        (
            "postgres://ann@db/sales",
            &[("dbname", "sales"), ("host", "db"), ("user", "ann")],
        ),
        (
            "postgres://ann:pw@db:5432/sales",
            &[
                ("dbname", "sales"),
                ("host", "db"),
                ("password", "pw"),
                ("port", "5432"),
                ("user", "ann"),
            ],
        ),
        ("postgres://ann:@db", &[("host", "db"), ("user", "ann")]),
        ("postgres://:pw@db", &[("host", "db"), ("password", "pw")]),
        ("postgres://@db", &[("host", "db")]),
        ("postgres:///sales", &[("dbname", "sales")]),
        (
            "postgres://@/sales?host=/tmp/pg",
            &[("dbname", "sales"), ("host", "/tmp/pg")],
        ),
        (
            "postgres://%2Ftmp%2Fpg/sales",
            &[("dbname", "sales"), ("host", "/tmp/pg")],
        ),
        (
            "postgres://[::1]:5432/x",
            &[("dbname", "x"), ("host", "::1"), ("port", "5432")],
        ),
        (
            "postgres://[2001:db8::7]/x",
            &[("dbname", "x"), ("host", "2001:db8::7")],
        ),
        (
            "postgres://h1:5433,h2,[::1]:5435/x",
            &[("dbname", "x"), ("host", "h1,h2,::1"), ("port", "5433,,5435")],
        ),
        ("postgres://h1,h2/x", &[("dbname", "x"), ("host", "h1,h2")]),
        (
            "postgres://me%40corp:p%40ss%3Aw%2Fo%3Frd%23%25@db/my%20db",
            &[
                ("dbname", "my db"),
                ("host", "db"),
                ("password", "p@ss:w/o?rd#%"),
                ("user", "me@corp"),
            ],
        ),
        (
            "postgres://ann:pa:ss@db",
            &[("host", "db"), ("password", "pa:ss"), ("user", "ann")],
        ),
        (
            "postgres://db/x?user=ann&password=s3cret&sslmode=disable",
            &[
                ("dbname", "x"),
                ("host", "db"),
                ("password", "s3cret"),
                ("sslmode", "disable"),
                ("user", "ann"),
            ],
        ),
        ("postgres://db?ssl=true", &[("host", "db"), ("sslmode", "require")]),
        (
            "postgres://db/x?application_name=a%20b&",
            &[("application_name", "a b"), ("dbname", "x"), ("host", "db")],
        ),
        // Later wins, as in libpq: the query overrides the URL's own parts.
        (
            "postgres://ann@db:1/x?host=other&port=2&user=bob",
            &[("dbname", "x"), ("host", "other"), ("port", "2"), ("user", "bob")],
        ),
        (
            "postgres://db/x?pass%77ord=s",
            &[("dbname", "x"), ("host", "db"), ("password", "s")],
        ),
    ];
    for (text, want) in cases {
        let url = parsed(text);
        let got: Vec<(&str, &str)> = url.params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(&got, want, "{text}");
    }
}

#[test]
fn a_password_with_any_character_percent_encoded_round_trips_and_never_shows() {
    let mut all: String = (0x20u8..0x7f).map(char::from).collect();
    all.push_str("é€");
    for password in [all.as_str(), "S3c/ret?x", "a@b", "#", "%", ":", "p w", "'\\"] {
        let text = format!("postgres://etl:{}@127.0.0.1:5432/db?sslmode=disable", encode(password));
        let url = parsed(&text);
        assert_eq!(url.get("password"), Some(password));
        assert_eq!(url.redacted(), "postgres://etl:***@127.0.0.1:5432/db?sslmode=disable");
        assert_eq!(
            url.without_password(),
            "postgres://etl@127.0.0.1:5432/db?sslmode=disable"
        );
        let in_query = format!("postgres://etl@h/db?password={}&user=x", encode(password));
        let url = parsed(&in_query);
        assert_eq!(url.get("password"), Some(password));
        assert_eq!(url.redacted(), "postgres://etl@h/db?password=***&user=x");
        assert_eq!(url.without_password(), "postgres://etl@h/db?user=x");
    }
}

#[test]
fn passwords_are_cut_out_where_the_parse_puts_them() {
    let cases = [
        (
            "postgres://ann:s3cret@db:5432/x",
            "postgres://ann:***@db:5432/x",
            "postgres://ann@db:5432/x",
        ),
        ("postgres://:s3cret@db", "postgres://:***@db", "postgres://@db"),
        (
            "postgres://db/x?password=s3cret&user=ann",
            "postgres://db/x?password=***&user=ann",
            "postgres://db/x?user=ann",
        ),
        (
            "postgres://db/x?user=ann&password=s3cret",
            "postgres://db/x?user=ann&password=***",
            "postgres://db/x?user=ann",
        ),
        (
            "postgres://db/x?password=s3cret",
            "postgres://db/x?password=***",
            "postgres://db/x",
        ),
        (
            "postgres://db/x?password=a&password=b",
            "postgres://db/x?password=***&password=***",
            "postgres://db/x",
        ),
        (
            "postgres://db/x?pass%77ord=s3cret",
            "postgres://db/x?pass%77ord=***",
            "postgres://db/x",
        ),
        (
            "postgres://a:b@db/x?password=c&sslmode=disable",
            "postgres://a:***@db/x?password=***&sslmode=disable",
            "postgres://a@db/x?sslmode=disable",
        ),
    ];
    for (text, redacted, stored) in cases {
        let url = parsed(text);
        assert_eq!(url.redacted(), redacted, "{text}");
        assert_eq!(url.without_password(), stored, "{text}");
    }
    // Without a password the text is kept byte for byte (the stored pipeline's bytes do not move).
    for text in [
        "postgres://ann@db/x?host=/tmp/a&",
        "postgresql://ann:@db",
        "postgres://root@/postgres?host=/tmp/mlpipe-pg1",
    ] {
        assert_eq!(parsed(text).without_password(), text);
        assert_eq!(parsed(text).redacted(), text);
    }
}

#[test]
fn a_raw_slash_question_mark_at_or_hash_in_a_password_is_refused_with_a_hint() {
    let cases = [
        (
            "postgres://etl:S3c/ret?x@127.0.0.1:5432/db",
            "the PostgreSQL URL is ambiguous: an '@' comes after the first '/' (a raw '/' in the password, \
             or a raw '@' in the database name or a parameter?); readers of URLs would split it differently \
             (the URL is not shown: it may hold a password)",
        ),
        (
            "postgres://etl:S3c?ret@127.0.0.1:5432/db",
            "the PostgreSQL URL is ambiguous: a '?' comes before the '@' that ends the user and password \
             (a raw '?' in the password?); readers of URLs would split it differently (the URL is not shown: \
             it may hold a password)",
        ),
        (
            "postgres://etl:S3c@ret@127.0.0.1:5432/db",
            "the PostgreSQL URL is ambiguous: it holds more than one raw '@' (a raw '@' in the password?); \
             readers of URLs would split it differently (the URL is not shown: it may hold a password)",
        ),
        (
            "postgres://etl:S3c#ret@127.0.0.1:5432/db",
            "the PostgreSQL URL is ambiguous: it holds a raw '#', which ends a URL for most readers; readers \
             of URLs would split it differently (the URL is not shown: it may hold a password)",
        ),
        (
            "postgres://db/x?application_name=a@b",
            "the PostgreSQL URL is ambiguous: an '@' comes after the first '/' (a raw '/' in the password, \
             or a raw '@' in the database name or a parameter?); readers of URLs would split it differently \
             (the URL is not shown: it may hold a password)",
        ),
    ];
    for (text, message) in cases {
        let (got, hint) = refusal(text);
        assert_eq!(got, message, "{text}");
        assert_eq!(hint.as_deref(), Some(ENCODE_HINT));
        assert!(!got.contains("S3c") && !got.contains("ret"), "{got}");
    }
}

#[test]
fn malformed_urls_are_refused_naming_the_part_never_its_text() {
    let cases = [
        (
            "postgres://etl:S3cret/db",
            "the port of host 1 is not a number from 1 to 65535",
        ),
        (
            "postgres://h:0/db",
            "the port of host 1 is not a number from 1 to 65535",
        ),
        (
            "postgres://h1,h2:99999/db",
            "the port of host 2 is not a number from 1 to 65535",
        ),
        (
            "postgres://a:S3c%zzret@h/db",
            "the password holds a '%' that is not followed by two hex digits",
        ),
        (
            "postgres://a:S3c%00ret@h/db",
            "the password holds %00, which no connection parameter may hold",
        ),
        (
            "postgres://a:S3c%FFret@h/db",
            "the password does not decode to UTF-8 text",
        ),
        (
            "postgres://[::1/db",
            "host 1 opens an IPv6 address with '[' and never closes it",
        ),
        ("postgres://[]/db", "host 1 is an empty IPv6 address '[]'"),
        (
            "postgres://[::1]x/db",
            "host 1: an IPv6 address in '[…]' must be followed by ':', '/', '?', ',' or the end",
        ),
        (
            "postgres://h/db?S3cret",
            "query parameter 1 has no '=' between its name and value",
        ),
        (
            "postgres://h/db?password=S3c=ret",
            "the value of parameter password holds a raw '='",
        ),
        (
            "postgres://h/db?sslpassword=S3cret",
            "query parameter sslpassword is a libpq parameter that mlpipe's PostgreSQL driver does not support",
        ),
        (
            "postgres://h/db?PASSWORD=S3cret",
            "query parameter PASSWORD is not a PostgreSQL connection parameter",
        ),
    ];
    for (text, message) in cases {
        let (got, _) = refusal(text);
        assert_eq!(
            got,
            format!("the PostgreSQL URL cannot be read: {message} (the URL is not shown: it may hold a password)"),
            "{text}"
        );
        assert!(!got.contains("S3c"), "{got}");
    }
}

#[test]
fn keyword_value_strings_and_schemes_are_recognised() {
    assert!(looks_like_keyword_value("host=db password=x"));
    assert!(looks_like_keyword_value("  dbname = sales"));
    assert!(!looks_like_keyword_value("data/train.csv"));
    assert!(!looks_like_keyword_value("x=1.csv"));
    assert_eq!(url_scheme("mysql://u:p@h/db"), Some("mysql"));
    assert_eq!(url_scheme("git+ssh://h"), Some("git+ssh"));
    assert_eq!(url_scheme("data/a://b"), None);
    assert_eq!(url_scheme("sqlite:a.db"), None);
    assert_eq!(
        unshown("mysql://u:secret@h"),
        "mysql://(not shown: the URL does not parse)"
    );
}

#[test]
fn the_driver_gets_every_parameter_quoted() {
    let url = parsed("postgres://an%27n:p%5C%27w%20x@h1:5433,h2/my%20db?sslmode=disable&passfile=/p");
    assert_eq!(
        url.keyword_value_string(),
        r"dbname='my db' host='h1,h2' password='p\\\'w x' port='5433,' sslmode='disable' user='an\'n'"
    );
    let config: postgres::Config = url.keyword_value_string().parse().unwrap();
    assert_eq!(config.get_user(), Some("an'n"));
    assert_eq!(config.get_password(), Some(&b"p\\'w x"[..]));
    assert_eq!(config.get_dbname(), Some("my db"));
    assert_eq!(config.get_ports(), &[5433, 5432]);
    assert_eq!(url.get("passfile"), Some("/p"));
}

#[test]
fn a_password_in_user_given_text_is_masked_before_it_is_shown() {
    assert_eq!(
        mask_passwords("postgres://etl:S3cretPW@127.0.0.1:1/db"),
        "postgres://etl:***@127.0.0.1:1/db"
    );
    assert_eq!(
        mask_passwords("postgres://etl@h/db?password=S3cretPW"),
        "postgres://etl@h/db?password=***"
    );
    assert!(!mask_passwords("postgres://etl:S3c#ret@h/db").contains("S3c"));
    assert_eq!(mask_passwords("mysql://u:S3cretPW@h/db"), "mysql://u:***@h/db");
    assert_eq!(mask_passwords("data/test.csv"), "data/test.csv");
    assert_eq!(mask_passwords("abcd1234"), "abcd1234");
}
