//! `mlpipe serve`: the REST API over a fitted pipeline (axum on tokio).
//!
//! - `POST /v1/predict` — one record (a JSON object) or an array of records, with the training data's
//!   column names; answers predictions, the model id and a prediction id per record. Each prediction is
//!   in the ledger before it is answered.
//! - `GET /v1/model` — expected columns and types, known categories, metrics, run id.
//! - `GET /healthz`, `GET /metrics` (Prometheus text), `GET /openapi.json`.
//!
//! Bad input is always a 4xx with a JSON body `{"error": {"kind", "message", "field"?, "record"?,
//! "hint"?}}`; a 5xx means a fault of ours (or the ledger being unavailable: 503).
//! With a shadow model both score every request; the champion's answer is returned, both are recorded.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use crate::error::Error;
use crate::frame::ColumnType;
use crate::ledger::{Channel, Entry, Input, LedgerWriter};
use crate::predictor::prediction_record;
use crate::predictor::{Made, Scorer};
use crate::provenance;

pub struct Limits {
    /// Largest request body, in bytes (413 above it).
    pub max_body: usize,
    /// Most records in one request.
    pub max_records: usize,
    /// How long a client may take to send its body (408 after it).
    pub body_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body: 1 << 20,
            max_records: 10_000,
            body_timeout: Duration::from_secs(10),
        }
    }
}

pub struct App {
    pub champion: Scorer,
    pub shadow: Option<Scorer>,
    pub ledger: LedgerWriter,
    /// The bearer token's blake3 digest: requests are checked by comparing digests (see [`authorise`]).
    token: Option<blake3::Hash>,
    pub limits: Limits,
    pub metrics: Metrics,
    model_doc: Value,
    openapi: Value,
}

impl App {
    pub fn new(
        champion: Scorer,
        shadow: Option<Scorer>,
        ledger: LedgerWriter,
        token: Option<String>,
        limits: Limits,
    ) -> App {
        let model_doc = model_document(&champion, shadow.as_ref(), ledger.describe());
        let openapi = openapi_document(&champion);
        App {
            champion,
            shadow,
            ledger,
            token: token.map(|t| blake3::hash(t.as_bytes())),
            limits,
            metrics: Metrics::default(),
            model_doc,
            openapi,
        }
    }
}

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/v1/predict", post(predict))
        .route("/v1/model", get(model))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(app)
}

/// An error answered to the client: HTTP status and the JSON body's fields.
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
    pub field: Option<String>,
    pub record: Option<usize>,
    pub hint: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            kind,
            message: message.into(),
            field: None,
            record: None,
            hint: None,
        }
    }

    fn hint(mut self, hint: impl Into<String>) -> ApiError {
        self.hint = Some(hint.into());
        self
    }

    /// A library error: data errors are the client's (422), the rest are ours (500).
    fn from_error(e: &Error, record: Option<usize>) -> ApiError {
        match e {
            Error::Data { .. } | Error::Spec { .. } => ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                kind: "invalid_record",
                message: e.to_string(),
                field: e.column().map(str::to_string),
                record,
                hint: e.hint(),
            },
            _ => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
        }
    }

    fn body(&self) -> Value {
        let mut err = Map::new();
        err.insert("kind".into(), Value::String(self.kind.into()));
        err.insert("message".into(), Value::String(self.message.clone()));
        if let Some(f) = &self.field {
            err.insert("field".into(), Value::String(f.clone()));
        }
        if let Some(r) = self.record {
            err.insert("record".into(), Value::from(r));
        }
        if let Some(h) = &self.hint {
            err.insert("hint".into(), Value::String(h.clone()));
        }
        json!({ "error": err })
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_vec(body).unwrap_or_default(),
    )
        .into_response()
}

fn error_response(app: &App, route: &'static str, err: &ApiError) -> Response {
    app.metrics.error(err.kind);
    app.metrics.request(route, err.status.as_u16());
    json_response(err.status, &err.body())
}

/// Checks the `Authorization: Bearer <token>` header (the scheme in any case). Both tokens are digested
/// with blake3 and the digests compared in constant time (`blake3::Hash`'s `==`), so neither how much of
/// the token matched nor its length shows in the time taken.
fn authorise(app: &App, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = &app.token else { return Ok(()) };
    if bearer_matches(token, headers) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong bearer token",
        )
        .hint("send the header `Authorization: Bearer <token>` with the server's token"))
    }
}

/// Whether the request's bearer token digests to `token`. A missing header or another scheme gives an
/// empty token, which no server token (never empty) digests alike.
fn bearer_matches(token: &blake3::Hash, headers: &HeaderMap) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map_or("", |(_, credentials)| credentials.trim_start_matches(' '));
    blake3::hash(given.as_bytes()) == *token
}

async fn predict(
    State(app): State<Arc<App>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    #[allow(clippy::disallowed_methods)] // latency metrics only; never reaches an artifact
    let started = std::time::Instant::now();
    let response = match predict_inner(&app, &headers, body, client).await {
        Ok(v) => {
            app.metrics.request("/v1/predict", 200);
            json_response(StatusCode::OK, &v)
        }
        Err(e) => error_response(&app, "/v1/predict", &e),
    };
    app.metrics.observe(started.elapsed());
    response
}

async fn predict_inner(app: &App, headers: &HeaderMap, body: Body, client: SocketAddr) -> Result<Value, ApiError> {
    authorise(app, headers)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("the body must be JSON, but its content type is \"{content_type}\""),
        )
        .hint("send `Content-Type: application/json`"));
    }
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is larger than {} bytes", app.limits.max_body),
        )
        .hint("send fewer records per request")
    };
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        && len > app.limits.max_body
    {
        return Err(too_large());
    }
    let bytes =
        match tokio::time::timeout(app.limits.body_timeout, axum::body::to_bytes(body, app.limits.max_body)).await {
            Err(_) => {
                return Err(ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "timeout",
                    format!("the body did not arrive within {} s", app.limits.body_timeout.as_secs()),
                ));
            }
            Ok(Err(e)) => {
                let text = e.to_string();
                if text.contains("length limit") {
                    return Err(too_large());
                }
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_body",
                    format!("cannot read the body: {text}"),
                ));
            }
            Ok(Ok(b)) => b,
        };
    let value = parse_body(&bytes)?;
    let (maps, single) = records_of(&value, app.limits.max_records)?;
    let source = format!("request from {}", client.ip());
    let champion = &app.champion;
    let records = champion.decode_records(&maps, "the request").map_err(|e| {
        let mut err = ApiError::from_error(&e.error, Some(e.record));
        err.field = e.field().map(str::to_string);
        err
    })?;
    let ids: Vec<Option<Value>> = maps
        .iter()
        .map(|m| champion.id_column.as_deref().and_then(|c| m.get(c)).cloned())
        .collect();
    let predictions = champion.score_rows(records.frame).map_err(|f| {
        // Errors name "line N of the request": N is the record's position, from 1. A record whose
        // prediction is not a finite number is a 422 naming it (`record`, from 0); nothing is recorded.
        ApiError::from_error(&f.error, f.row)
    })?;
    let time = provenance::now_rfc3339_micros();
    let mut entries = Vec::with_capacity(maps.len());
    let mut inputs = Vec::with_capacity(maps.len());
    let mut out = Vec::with_capacity(maps.len());
    for (r, body) in records.canonical.into_iter().enumerate() {
        let input = crate::digest::Id::of_bytes(&body);
        let made = Made {
            time: &time,
            source: &source,
        };
        let row = predictions.row(r);
        let entry = champion.record_entry(input, &row, Channel::Serve, made, None);
        out.push(Value::Object(prediction_record(
            champion,
            ids[r].clone(),
            &row,
            &entry.prediction,
        )));
        entries.push(entry);
        inputs.push(Input { id: input, body });
    }
    if let Some(shadow) = &app.shadow {
        shadow_score(shadow, &maps, &entries, &time, &source, &mut inputs)
            .map_or_else(|| app.metrics.error("shadow_failed"), |e| entries.extend(e));
    }
    app.ledger.append(entries, inputs).committed().await.map_err(|e| {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "ledger_unavailable", e.to_string())
            .hint("the prediction was not recorded, so it is not returned; retry later")
    })?;
    app.metrics.predictions.fetch_add(out.len() as u64, Ordering::Relaxed);
    Ok(if single {
        out.into_iter().next().unwrap_or(Value::Null)
    } else {
        json!({ "predictions": out, "model": champion.model.hex(), "run": champion.run.hex() })
    })
}

/// The request decoder, step 1: the body's bytes as JSON (`serde_json` refuses nesting beyond 128).
pub fn parse_body(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the body is not valid JSON: {e}"),
        )
        .hint("send one JSON object, or an array of objects, with the training columns as keys")
    })
}

/// A request's records, and whether it sent one record (not an array).
pub type RequestRecords<'a> = (Vec<&'a Map<String, Value>>, bool);

/// The request decoder, step 2: one record or an array of at most `max_records` records.
pub fn records_of(value: &Value, max_records: usize) -> Result<RequestRecords<'_>, ApiError> {
    Ok(match value {
        Value::Object(m) => (vec![m], true),
        Value::Array(items) => {
            if items.is_empty() {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_body",
                    "the array holds no records",
                ));
            }
            if items.len() > max_records {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_many_records",
                    format!("{} records in one request; the limit is {}", items.len(), max_records),
                ));
            }
            let mut maps = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let Value::Object(m) = item else {
                    let mut e = ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_body",
                        format!("record {} is not a JSON object", i + 1),
                    );
                    e.record = Some(i);
                    return Err(e);
                };
                maps.push(m);
            }
            (maps, false)
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                "the body must be a JSON object or an array of objects",
            ));
        }
    })
}

/// Scores the request with the shadow model; `None` when it cannot (its failures never reach the client).
fn shadow_score(
    shadow: &Scorer,
    maps: &[&Map<String, Value>],
    champion_entries: &[Entry],
    time: &str,
    source: &str,
    inputs: &mut Vec<Input>,
) -> Option<Vec<Entry>> {
    let records = shadow.decode_records(maps, "the request").ok()?;
    let predictions = shadow.score(records.frame).ok()?;
    let mut out = Vec::with_capacity(maps.len());
    for (r, (body, champ)) in records.canonical.into_iter().zip(champion_entries).enumerate() {
        let input = crate::digest::Id::of_bytes(&body);
        let row = predictions.row(r);
        out.push(shadow.record_entry(
            input,
            &row,
            Channel::Serve,
            Made { time, source },
            Some(champ.prediction),
        ));
        if input != champ.input {
            inputs.push(Input { id: input, body });
        }
    }
    Some(out)
}

async fn model(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Err(e) = authorise(&app, &headers) {
        return error_response(&app, "/v1/model", &e);
    }
    app.metrics.request("/v1/model", 200);
    json_response(StatusCode::OK, &app.model_doc)
}

async fn openapi(State(app): State<Arc<App>>) -> Response {
    app.metrics.request("/openapi.json", 200);
    json_response(StatusCode::OK, &app.openapi)
}

async fn healthz(State(app): State<Arc<App>>) -> Response {
    app.metrics.request("/healthz", 200);
    json_response(
        StatusCode::OK,
        &json!({ "status": "ok", "run": app.champion.run.hex() }),
    )
}

async fn metrics(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Err(e) = authorise(&app, &headers) {
        return error_response(&app, "/metrics", &e);
    }
    app.metrics.request("/metrics", 200);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}

async fn not_found(State(app): State<Arc<App>>) -> Response {
    let e = ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
        .hint("POST /v1/predict, GET /v1/model, /healthz, /metrics, /openapi.json");
    error_response(&app, "other", &e)
}

async fn method_not_allowed(State(app): State<Arc<App>>) -> Response {
    let e = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method",
    )
    .hint("POST /v1/predict; GET everything else");
    error_response(&app, "other", &e)
}

/// Request counters, a latency histogram of `/v1/predict` and errors by kind, in Prometheus text format.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    errors: Mutex<BTreeMap<&'static str, u64>>,
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_ns: AtomicU64,
    pub predictions: AtomicU64,
}

/// Upper bounds of the latency buckets, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
];

impl Metrics {
    fn request(&self, route: &'static str, status: u16) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((route, status)).or_default() += 1;
        }
    }

    fn error(&self, kind: &'static str) {
        if let Ok(mut m) = self.errors.lock() {
            *m.entry(kind).or_default() += 1;
        }
    }

    fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_ns
            .fetch_add(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        s.push_str("# HELP mlpipe_requests_total HTTP requests by route and status.\n");
        s.push_str("# TYPE mlpipe_requests_total counter\n");
        if let Ok(m) = self.requests.lock() {
            for ((route, status), n) in m.iter() {
                let _ = writeln!(s, "mlpipe_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}");
            }
        }
        s.push_str("# HELP mlpipe_errors_total Failed requests by kind of error.\n");
        s.push_str("# TYPE mlpipe_errors_total counter\n");
        if let Ok(m) = self.errors.lock() {
            for (kind, n) in m.iter() {
                let _ = writeln!(s, "mlpipe_errors_total{{kind=\"{kind}\"}} {n}");
            }
        }
        s.push_str("# HELP mlpipe_predictions_total Predictions answered (and recorded in the ledger).\n");
        s.push_str("# TYPE mlpipe_predictions_total counter\n");
        let _ = writeln!(
            s,
            "mlpipe_predictions_total {}",
            self.predictions.load(Ordering::Relaxed)
        );
        s.push_str("# HELP mlpipe_predict_duration_seconds Latency of POST /v1/predict.\n");
        s.push_str("# TYPE mlpipe_predict_duration_seconds histogram\n");
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            let _ = writeln!(
                s,
                "mlpipe_predict_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                self.buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(s, "mlpipe_predict_duration_seconds_bucket{{le=\"+Inf\"}} {count}");
        #[allow(clippy::cast_precision_loss)]
        let sum = self.latency_sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(s, "mlpipe_predict_duration_seconds_sum {sum}");
        let _ = writeln!(s, "mlpipe_predict_duration_seconds_count {count}");
        s
    }
}

fn column_doc(scorer: &Scorer, name: &str, ty: ColumnType) -> Value {
    let mut doc = Map::new();
    doc.insert("name".into(), Value::String(name.into()));
    doc.insert("type".into(), Value::String(ty.name().into()));
    doc.insert(
        "required".into(),
        Value::Bool(name != scorer.target && Some(name) != scorer.id_column.as_deref()),
    );
    if let Some(p) = scorer
        .profile
        .as_ref()
        .and_then(|p| p.columns.iter().find(|c| c.name == name))
    {
        doc.insert("train_missing_fraction".into(), json!(p.missing_fraction));
        if ty == ColumnType::Categorical {
            let top: Vec<&str> = p.top.iter().map(|(v, _)| v.as_str()).collect();
            doc.insert("categories".into(), json!(top));
            doc.insert("distinct".into(), json!(p.distinct));
            // The analyse profile keeps the most frequent values only (`top_categories`).
            doc.insert("categories_complete".into(), Value::Bool(top.len() >= p.distinct));
        }
    }
    Value::Object(doc)
}

fn model_document(champion: &Scorer, shadow: Option<&Scorer>, ledger: &str) -> Value {
    let columns: Vec<Value> = champion
        .schema
        .iter()
        .filter(|(n, _)| n != &champion.target)
        .map(|(n, t)| column_doc(champion, n, *t))
        .collect();
    json!({
        "run": champion.run.hex(),
        "model": champion.model.hex(),
        "pipeline": champion.pipeline_name,
        "target": champion.target,
        "classes": champion.classes().map(|(labels, _)| labels.to_vec()),
        "id_column": champion.id_column,
        "created": champion.created,
        "metrics": champion.metrics,
        "columns": columns,
        "missing_values": champion.na_values,
        "shadow": shadow.map(|s| json!({ "run": s.run.hex(), "model": s.model.hex(), "metrics": s.metrics })),
        "ledger": ledger,
        "mlpipe": provenance::MLPIPE_VERSION,
    })
}

fn openapi_document(scorer: &Scorer) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for (name, ty) in &scorer.schema {
        if name == &scorer.target {
            continue;
        }
        let t = match ty {
            ColumnType::Numeric => json!({ "type": ["number", "null"] }),
            ColumnType::Categorical => json!({ "type": ["string", "integer", "null"] }),
        };
        properties.insert(name.clone(), t);
        if Some(name) != scorer.id_column.as_ref() {
            required.push(Value::String(name.clone()));
        }
    }
    let error = json!({
        "type": "object",
        "required": ["error"],
        "properties": { "error": {
            "type": "object", "required": ["kind", "message"],
            "properties": {
                "kind": { "type": "string" }, "message": { "type": "string" },
                "field": { "type": "string" }, "record": { "type": "integer" }, "hint": { "type": "string" }
            }
        }}
    });
    let mut prediction = json!({
        "type": "object",
        "required": ["prediction", "model", "run", "prediction_id"],
        "properties": {
            "prediction": { "type": "number" }, "model": { "type": "string" },
            "run": { "type": "string" }, "prediction_id": { "type": "string" }
        }
    });
    if let Some((labels, numeric)) = scorer.classes() {
        // A classifier answers with one of its classes and every class's probability.
        let class: Vec<Value> = labels
            .iter()
            .map(|l| scorer.label_json(labels.iter().position(|x| x == l).unwrap_or(0)))
            .collect();
        prediction["properties"]["prediction"] =
            json!({ "type": if numeric { "number" } else { "string" }, "enum": class });
        prediction["properties"]["probabilities"] = json!({
            "type": "object",
            "properties": labels.iter().map(|l| (l.clone(), json!({ "type": "number" }))).collect::<Map<String, Value>>(),
        });
        prediction["required"] = json!(["prediction", "probabilities", "model", "run", "prediction_id"]);
    }
    let err_ref = json!({ "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } });
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": format!("mlpipe: {}", scorer.pipeline_name),
            "version": provenance::MLPIPE_VERSION,
            "description": format!("Predictions of run {} (model {}).", scorer.run.hex(), scorer.model.hex()),
        },
        "paths": {
            "/v1/predict": { "post": {
                "summary": "Score one record or an array of records",
                "requestBody": { "required": true, "content": { "application/json": { "schema": {
                    "oneOf": [
                        { "$ref": "#/components/schemas/Record" },
                        { "type": "array", "minItems": 1, "items": { "$ref": "#/components/schemas/Record" } }
                    ]
                }}}},
                "responses": {
                    "200": { "description": "Predictions", "content": { "application/json": { "schema": { "oneOf": [
                        { "$ref": "#/components/schemas/Prediction" },
                        { "type": "object", "properties": {
                            "predictions": { "type": "array", "items": { "$ref": "#/components/schemas/Prediction" } },
                            "model": { "type": "string" }, "run": { "type": "string" } } }
                    ]}}}},
                    "400": { "description": "Not JSON, or not records", "content": err_ref["content"].clone() },
                    "401": { "description": "Missing or wrong bearer token", "content": err_ref["content"].clone() },
                    "408": { "description": "Body too slow", "content": err_ref["content"].clone() },
                    "413": { "description": "Body too large", "content": err_ref["content"].clone() },
                    "415": { "description": "Not application/json", "content": err_ref["content"].clone() },
                    "422": { "description": "A record the model cannot score", "content": err_ref["content"].clone() },
                    "503": { "description": "Ledger unavailable", "content": err_ref["content"].clone() }
                }
            }},
            "/v1/model": { "get": { "summary": "Describe the model", "responses": { "200": { "description": "The model" } } } },
            "/healthz": { "get": { "summary": "Liveness", "responses": { "200": { "description": "Alive" } } } },
            "/metrics": { "get": { "summary": "Prometheus metrics", "responses": { "200": { "description": "Metrics" } } } },
            "/openapi.json": { "get": { "summary": "This document", "responses": { "200": { "description": "OpenAPI" } } } }
        },
        "components": { "schemas": {
            "Record": {
                "type": "object",
                "properties": properties,
                "required": required,
                "additionalProperties": false
            },
            "Prediction": prediction,
            "Error": error
        }}
    })
}

#[cfg(test)]
mod auth_tests {
    use super::*;

    fn headers(value: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = value {
            h.insert(header::AUTHORIZATION, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn a_bearer_token_is_checked_by_its_digest_whatever_its_length() {
        let token = blake3::hash(b"s3cr3t-token");
        assert!(bearer_matches(&token, &headers(Some("Bearer s3cr3t-token"))));
        assert!(
            bearer_matches(&token, &headers(Some("bearer s3cr3t-token"))),
            "the scheme is case-insensitive"
        );
        for wrong in [
            None,
            Some("Bearer "),
            Some("Bearer s3cr3t-toke"),
            Some("Bearer s3cr3t-token-and-more"),
            Some("Bearer s3cr3t-tokeN"),
            Some("Basic s3cr3t-token"),
            Some("s3cr3t-token"),
        ] {
            assert!(!bearer_matches(&token, &headers(wrong)), "{wrong:?}");
        }
        // An empty header matches no token: a server never holds an empty one (serve refuses it).
        assert!(!bearer_matches(&blake3::hash(b"x"), &headers(Some("Bearer"))));
    }
}
