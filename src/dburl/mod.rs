//! PostgreSQL connection URLs read as libpq reads them —
//! `postgres[ql]://[user[:password]@][host][:port][,host[:port]…][/dbname][?key=value&…]`, every part
//! percent-decoded — keeping where a password was written, so that what is stored can leave it out and
//! what is shown can mask it. Nothing here finds a password by pattern: the text is parsed, and the
//! password is the part that the parse says is the password.
//!
//! A URL that readers split differently is refused instead of guessed at. libpq ends the user and
//! password at the first `@` before any `/`; the Rust driver at the first `@` anywhere; RFC 3986 ends
//! the authority at the first `/`, `?` or `#`. They agree when the URL has at most one `@`, it comes
//! before any `/`, and no `?` or `#` precedes it — so a raw `/`, `?`, `@` or `#` in a password (or an
//! `@` or `#` anywhere else) is an error whose hint says to percent-encode it. Error messages name the
//! part at fault (the password, host 2, parameter `sslmode`) and never echo the URL's text.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::Range;

/// Why a URL was refused: what is wrong and what to do, never the URL's text. The bottom of the stack:
/// `error` turns it into a data error, so that masking a path inside any error can parse URLs here.
#[derive(Debug)]
pub struct UrlError {
    message: String,
    hint: Option<String>,
}

impl UrlError {
    fn new(message: String) -> UrlError {
        UrlError { message, hint: None }
    }

    #[must_use]
    fn with_hint(mut self, text: impl Into<String>) -> UrlError {
        self.hint = Some(text.into());
        self
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn hint(&self) -> Option<String> {
        self.hint.clone()
    }
}

impl std::fmt::Display for UrlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

type Result<T> = std::result::Result<T, UrlError>;

/// Query parameters a URL may set: libpq's keywords that the driver implements, `passfile` (mlpipe reads
/// the password file itself), and libpq's JDBC-style `ssl=true` (read as `sslmode=require`).
const PARAMETERS: &[&str] = &[
    "application_name",
    "channel_binding",
    "connect_timeout",
    "dbname",
    "host",
    "hostaddr",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_retries",
    "load_balance_hosts",
    "options",
    "passfile",
    "password",
    "port",
    "sslmode",
    "sslnegotiation",
    "target_session_attrs",
    "tcp_user_timeout",
    "user",
];

/// Every keyword of libpq's key/value connection strings (`host=… dbname=…`), to recognise one.
const LIBPQ_KEYWORDS: &[&str] = &[
    "application_name",
    "channel_binding",
    "client_encoding",
    "connect_timeout",
    "dbname",
    "fallback_application_name",
    "gssencmode",
    "host",
    "hostaddr",
    "keepalives",
    "keepalives_count",
    "keepalives_idle",
    "keepalives_interval",
    "load_balance_hosts",
    "options",
    "passfile",
    "password",
    "port",
    "replication",
    "requirepeer",
    "service",
    "sslcert",
    "sslkey",
    "sslmode",
    "sslpassword",
    "sslrootcert",
    "target_session_attrs",
    "tcp_user_timeout",
    "user",
];

/// What to do about a URL that is ambiguous or holds a raw delimiter.
const ENCODE_HINT: &str = "percent-encode these characters in the password (and anywhere else in the URL): \
    '/' as %2F, '?' as %3F, '@' as %40, '#' as %23, ':' as %3A, '%' as %25 — e.g. \
    postgres://etl:pa%2Fss%3Fword@db.example:5432/sales — or leave the password out of the URL and set \
    PGPASSWORD or a password file (~/.pgpass)";

/// A parsed `postgres://` or `postgresql://` URL.
#[derive(Clone)]
pub struct PgUrl<'a> {
    text: &'a str,
    /// libpq's keywords and their decoded values: the URL's own parts first, then its query parameters,
    /// a later value replacing an earlier one, as in libpq. `host` and `port` are comma lists.
    params: BTreeMap<String, String>,
    /// The password in the user part: the byte range of its text (after the `:`).
    userinfo_password: Option<Range<usize>>,
    /// The query (after `?`), when there is one: its byte range and each parameter's.
    query: Option<Query>,
}

#[derive(Clone)]
struct Query {
    range: Range<usize>,
    params: Vec<QueryParam>,
}

#[derive(Clone)]
struct QueryParam {
    /// `key=value` as written.
    range: Range<usize>,
    /// The key as written (still percent-encoded).
    key: Range<usize>,
    /// Its decoded key is `password`.
    secret: bool,
}

impl std::fmt::Debug for PgUrl<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// The scheme of a `scheme://…` text (RFC 3986: a letter, then letters, digits, `+`, `-`, `.`).
pub fn url_scheme(text: &str) -> Option<&str> {
    let end = text.find("://")?;
    let scheme = &text[..end];
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic() && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
        .then_some(scheme)
}

/// Whether `text` is a PostgreSQL URL (whether or not it parses).
pub fn is_postgres_url(text: &str) -> bool {
    text.starts_with("postgres://") || text.starts_with("postgresql://")
}

/// Whether `text` begins as a libpq key/value connection string does (`host=…`, `dbname = …`).
pub fn looks_like_keyword_value(text: &str) -> bool {
    let text = text.trim_start();
    let end = text.find(|c: char| c == '=' || c.is_whitespace()).unwrap_or(text.len());
    let (keyword, rest) = text.split_at(end);
    rest.trim_start().starts_with('=') && LIBPQ_KEYWORDS.contains(&keyword)
}

fn refused(message: impl std::fmt::Display) -> UrlError {
    UrlError::new(format!(
        "the PostgreSQL URL cannot be read: {message} (the URL is not shown: it may hold a password)"
    ))
}

fn ambiguous(message: &str) -> UrlError {
    UrlError::new(format!(
        "the PostgreSQL URL is ambiguous: {message}; readers of URLs would split it differently \
         (the URL is not shown: it may hold a password)"
    ))
    .with_hint(ENCODE_HINT)
}

/// Percent-decodes one part of the URL, as libpq does: `%` takes two hex digits, `%00` is refused.
fn decode(raw: &str, what: &str) -> Result<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = |b: u8| char::from(b).to_digit(16);
            let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) else {
                return Err(
                    refused(format!("{what} holds a '%' that is not followed by two hex digits"))
                        .with_hint("write a literal '%' as %25"),
                );
            };
            let byte = u8::try_from(hi * 16 + lo).unwrap_or(0);
            if byte == 0 {
                return Err(refused(format!(
                    "{what} holds %00, which no connection parameter may hold"
                )));
            }
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| refused(format!("{what} does not decode to UTF-8 text")))
}

impl<'a> PgUrl<'a> {
    /// Parses a URL that starts with `postgres://` or `postgresql://`.
    pub fn parse(text: &'a str) -> Result<PgUrl<'a>> {
        let start = if let Some(rest) = text.strip_prefix("postgresql://") {
            text.len() - rest.len()
        } else if let Some(rest) = text.strip_prefix("postgres://") {
            text.len() - rest.len()
        } else {
            return Err(refused("it does not start with postgres:// or postgresql://"));
        };
        if text[start..].contains('#') {
            return Err(ambiguous("it holds a raw '#', which ends a URL for most readers"));
        }
        let mut url = PgUrl {
            text,
            params: BTreeMap::new(),
            userinfo_password: None,
            query: None,
        };
        let b = text.as_bytes();
        let first_at = text[start..].find('@').map(|i| start + i);
        let first_slash = text[start..].find('/').map(|i| start + i);
        let mut p = start;
        match first_at {
            // libpq: a user part exists when an '@' comes before any '/'.
            Some(at) if first_slash.is_none_or(|s| at < s) => {
                if text[start..at].contains('?') {
                    return Err(ambiguous(
                        "a '?' comes before the '@' that ends the user and password (a raw '?' in the password?)",
                    ));
                }
                if text[at + 1..].contains('@') {
                    return Err(ambiguous("it holds more than one raw '@' (a raw '@' in the password?)"));
                }
                let userinfo = &text[start..at];
                let (user, password) = match userinfo.find(':') {
                    Some(colon) => (&userinfo[..colon], Some(start + colon + 1..at)),
                    None => (userinfo, None),
                };
                if !user.is_empty() {
                    url.params.insert("user".into(), decode(user, "the user name")?);
                }
                if let Some(range) = password.filter(|r| !r.is_empty()) {
                    url.params
                        .insert("password".into(), decode(&text[range.clone()], "the password")?);
                    url.userinfo_password = Some(range);
                }
                p = at + 1;
            }
            Some(_) => {
                return Err(ambiguous(
                    "an '@' comes after the first '/' (a raw '/' in the password, or a raw '@' in the \
                     database name or a parameter?)",
                ));
            }
            None => {}
        }

        // One or more host[:port], separated by commas.
        let mut hosts = Vec::new();
        let mut ports = Vec::new();
        loop {
            let n = hosts.len() + 1;
            let host_raw;
            if b.get(p) == Some(&b'[') {
                let Some(close) = text[p..].find(']').map(|i| p + i) else {
                    return Err(refused(format!(
                        "host {n} opens an IPv6 address with '[' and never closes it"
                    )));
                };
                if close == p + 1 {
                    return Err(refused(format!("host {n} is an empty IPv6 address '[]'")));
                }
                host_raw = &text[p + 1..close];
                p = close + 1;
                if !matches!(b.get(p), None | Some(b':' | b'/' | b'?' | b',')) {
                    return Err(refused(format!(
                        "host {n}: an IPv6 address in '[…]' must be followed by ':', '/', '?', ',' or the end"
                    )));
                }
            } else {
                let end = text[p..].find([':', '/', '?', ',']).map_or(text.len(), |i| p + i);
                host_raw = &text[p..end];
                p = end;
            }
            let mut port_raw = "";
            if b.get(p) == Some(&b':') {
                let end = text[p + 1..].find(['/', '?', ',']).map_or(text.len(), |i| p + 1 + i);
                port_raw = &text[p + 1..end];
                p = end;
            }
            let port = decode(port_raw, &format!("the port of host {n}"))?;
            if !port.is_empty() && !port.parse::<u16>().is_ok_and(|v| v > 0) {
                return Err(
                    refused(format!("the port of host {n} is not a number from 1 to 65535")).with_hint(
                        "write postgres://user:password@host:5432/dbname — with '@' after the user and password — \
                     and percent-encode ':' in a password as %3A",
                    ),
                );
            }
            hosts.push(decode(host_raw, &format!("host {n}"))?);
            ports.push(port);
            if b.get(p) == Some(&b',') {
                p += 1;
            } else {
                break;
            }
        }
        if hosts.len() > 1 || hosts.iter().any(|h| !h.is_empty()) {
            url.params.insert("host".into(), hosts.join(","));
        }
        if ports.iter().any(|p| !p.is_empty()) {
            url.params.insert("port".into(), ports.join(","));
        }

        if b.get(p) == Some(&b'/') {
            let end = text[p + 1..].find('?').map_or(text.len(), |i| p + 1 + i);
            let dbname = decode(&text[p + 1..end], "the database name")?;
            if !dbname.is_empty() {
                url.params.insert("dbname".into(), dbname);
            }
            p = end;
        }
        if b.get(p) == Some(&b'?') {
            url.query = Some(url.parse_query(p + 1)?);
        }
        Ok(url)
    }

    fn parse_query(&mut self, start: usize) -> Result<Query> {
        let text = self.text;
        let mut params = Vec::new();
        let mut p = start;
        while p < text.len() {
            let end = text[p..].find('&').map_or(text.len(), |i| p + i);
            let element = &text[p..end];
            let n = params.len() + 1;
            let Some(eq) = element.find('=') else {
                return Err(
                    refused(format!("query parameter {n} has no '=' between its name and value"))
                        .with_hint("write each parameter as name=value, separated by '&'"),
                );
            };
            let key = decode(&element[..eq], &format!("the name of query parameter {n}"))?;
            let value_raw = &element[eq + 1..];
            if value_raw.contains('=') {
                return Err(refused(format!("the value of parameter {key} holds a raw '='"))
                    .with_hint("percent-encode '=' in a value as %3D"));
            }
            let value = decode(value_raw, &format!("the value of parameter {key}"))?;
            let (name, value) = if key == "ssl" && value == "true" {
                ("sslmode".to_string(), "require".to_string())
            } else {
                (key, value)
            };
            if !PARAMETERS.contains(&name.as_str()) {
                let known = if LIBPQ_KEYWORDS.contains(&name.as_str()) {
                    "is a libpq parameter that mlpipe's PostgreSQL driver does not support"
                } else {
                    "is not a PostgreSQL connection parameter"
                };
                return Err(refused(format!("query parameter {name} {known}"))
                    .with_hint(format!("use: {}", PARAMETERS.join(", "))));
            }
            params.push(QueryParam {
                range: p..end,
                key: p..p + eq,
                secret: name == "password",
            });
            self.params.insert(name, value);
            // libpq ends the query at the text's end; a final '&' adds nothing.
            p = end + 1;
        }
        Ok(Query {
            range: start..text.len(),
            params,
        })
    }

    /// Whether the URL carries a password (in its user part or as `password=`).
    pub fn has_password(&self) -> bool {
        self.params.contains_key("password")
    }

    /// The decoded value of a libpq keyword the URL sets.
    pub fn get(&self, keyword: &str) -> Option<&str> {
        self.params.get(keyword).map(String::as_str)
    }

    /// The URL as written, each password replaced by `***`: for messages and the terminal.
    pub fn redacted(&self) -> String {
        self.render(true)
    }

    /// The URL as written without its password (`user:secret@` → `user@`, `password=…` left out): what
    /// may be stored. A URL without a password comes back unchanged, byte for byte.
    pub fn without_password(&self) -> String {
        self.render(false)
    }

    fn render(&self, mask: bool) -> String {
        let text = self.text;
        let query_secret = self.query.as_ref().is_some_and(|q| q.params.iter().any(|p| p.secret));
        if self.userinfo_password.is_none() && !query_secret {
            return text.to_string();
        }
        let head_end = self.query.as_ref().map_or(text.len(), |q| q.range.start - 1);
        let mut out = String::with_capacity(text.len());
        match &self.userinfo_password {
            // `range` is the password's text; the ':' before it goes too when it is removed.
            Some(range) if mask => {
                out.push_str(&text[..range.start]);
                out.push_str("***");
                out.push_str(&text[range.end..head_end]);
            }
            Some(range) => {
                out.push_str(&text[..range.start - 1]);
                out.push_str(&text[range.end..head_end]);
            }
            None => out.push_str(&text[..head_end]),
        }
        if let Some(q) = &self.query {
            if query_secret {
                let kept: Vec<String> = q
                    .params
                    .iter()
                    .filter_map(|p| match (p.secret, mask) {
                        (false, _) => Some(text[p.range.clone()].to_string()),
                        (true, true) => Some(format!("{}=***", &text[p.key.clone()])),
                        (true, false) => None,
                    })
                    .collect();
                if !kept.is_empty() {
                    out.push('?');
                    out.push_str(&kept.join("&"));
                }
            } else {
                out.push_str(&text[q.range.start - 1..q.range.end]);
            }
        }
        out
    }

    /// The parameters as a libpq key/value string for the driver (values quoted; holds the password).
    pub fn keyword_value_string(&self) -> String {
        let mut out = String::new();
        for (key, value) in &self.params {
            if key == "passfile" {
                continue;
            }
            let quoted = value.replace('\\', "\\\\").replace('\'', "\\'");
            let _ = write!(out, "{}{key}='{quoted}'", if out.is_empty() { "" } else { " " });
        }
        out
    }
}

/// A URL that does not parse, shown without any of its text past the scheme.
pub fn unshown(text: &str) -> String {
    match url_scheme(text) {
        Some(scheme) => format!("{scheme}://(not shown: the URL does not parse)"),
        None => "(not shown: the URL does not parse)".into(),
    }
}

/// User-given text (a path, a hash, an argument) made safe to show in a message: a PostgreSQL URL is
/// shown as its parser reads it, passwords replaced by `***` (or not shown at all when it does not
/// parse); in any other `scheme://user:password@host` the password is replaced by `***`.
pub fn mask_passwords(text: &str) -> String {
    let trimmed = text.trim();
    if is_postgres_url(trimmed) {
        return match PgUrl::parse(trimmed) {
            Ok(url) => url.redacted(),
            Err(_) => unshown(trimmed),
        };
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let authority_end = tail
            .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace())
            .unwrap_or(tail.len());
        let authority = &tail[..authority_end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at_sign), Some(colon)) if colon < at_sign => {
                out.push_str(&authority[..=colon]);
                out.push_str("***");
                out.push_str(&authority[at_sign..]);
            }
            _ => out.push_str(authority),
        }
        rest = &tail[authority_end..];
    }
    out.push_str(rest);
    out
}

/// A source or database text as it may be shown: a PostgreSQL URL with `***` for its password, parsed;
/// a URL that does not parse (or of a scheme mlpipe does not read) without anything past its scheme;
/// anything else (a file path, `sqlite:PATH`) unchanged.
pub fn redact_url(text: &str) -> String {
    if is_postgres_url(text) {
        return PgUrl::parse(text).map_or_else(|_| unshown(text), |u| u.redacted());
    }
    if url_scheme(text).is_some() && !text.starts_with("sqlite:") {
        return unshown(text);
    }
    text.to_string()
}

/// A source or database text as it may be stored: a PostgreSQL URL without its password (unchanged,
/// byte for byte, when it has none); otherwise as [`redact_url`]. Connecting with it takes the password
/// from `PGPASSWORD` or the password file.
pub fn strip_password(text: &str) -> String {
    if is_postgres_url(text) {
        return PgUrl::parse(text).map_or_else(|_| unshown(text), |u| u.without_password());
    }
    redact_url(text)
}

#[cfg(test)]
mod tests;
