//! The REST server as the tests run it, an HTTP client, the test rows as JSON records, replays.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use super::{Project, stderr, stdout};

/// The test rows as NDJSON records (the same values the CSV holds; "NA" becomes null).
pub fn test_records(p: &Project) -> Vec<Value> {
    csv_records(&p.path("test.csv"), &["MSSubClass"], &[])
}

/// A CSV file's rows as JSON records: "NA" or empty is null, `text` columns stay strings, other cells
/// become integers or numbers when they parse as such; `skip` columns are left out.
pub fn csv_records(path: &std::path::Path, text: &[&str], skip: &[&str]) -> Vec<Value> {
    let content = std::fs::read_to_string(path).unwrap();
    let mut rdr = csv::Reader::from_reader(content.as_bytes());
    let headers = rdr.headers().unwrap().clone();
    rdr.records()
        .map(|r| {
            let r = r.unwrap();
            let mut m = serde_json::Map::new();
            for (h, v) in headers.iter().zip(r.iter()).filter(|(h, _)| !skip.contains(h)) {
                let value = if v == "NA" || v.is_empty() {
                    Value::Null
                } else if text.contains(&h) {
                    Value::String(v.into())
                } else if let Ok(n) = v.parse::<i64>() {
                    json!(n)
                } else if let Ok(x) = v.parse::<f64>() {
                    json!(x)
                } else {
                    Value::String(v.into())
                };
                m.insert(h.to_string(), value);
            }
            Value::Object(m)
        })
        .collect()
}

pub fn replay(p: &Project, id: &str) {
    let out = p.mlpipe(&["reproduce", id]);
    assert!(out.status.success(), "replay of {id}: {}", stderr(&out));
    assert!(stdout(&out).starts_with("reproduced bit-for-bit"), "{}", stdout(&out));
}

/// A running `mlpipe serve` and its address.
pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Server {
    pub fn start(p: &Project, args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mlpipe"))
            .current_dir(p.dir.path())
            .env("MLPIPE_STORE", p.store())
            .args(["serve", "--addr", "127.0.0.1:0", "--json"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let ready: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("not ready: {line:?}"));
        Server {
            base: format!("http://{}", ready["addr"].as_str().unwrap()),
            child,
        }
    }

    /// SIGTERM, then the exit status and what it printed last.
    pub fn stop(mut self) -> (bool, String) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let status = self.child.wait().unwrap();
        let mut rest = String::new();
        std::io::Read::read_to_string(self.child.stdout.as_mut().unwrap(), &mut rest).unwrap();
        (status.success(), rest)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

pub fn new_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

pub fn post(agent: &ureq::Agent, url: &str, content_type: &str, body: &str) -> (u16, Value) {
    let mut resp = agent.post(url).header("Content-Type", content_type).send(body).unwrap();
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

pub fn get(agent: &ureq::Agent, url: &str) -> (u16, String) {
    let mut resp = agent.get(url).call().unwrap();
    (resp.status().as_u16(), resp.body_mut().read_to_string().unwrap())
}
