//! Toxiproxy v2's HTTP API on axum: the same paths, methods, status codes and bodies,
//! errors as `{"error": "...", "status": N}`.
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::{ProxyError, ProxyServer};

/// Largest request body taken (larger: 413).
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// The version `GET /version` reports.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

fn json_response(status: StatusCode, v: &Value) -> Response {
    let mut r = (status, v.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn error_response(status: u16, msg: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(code, &json!({"error": msg, "status": status}))
}

impl IntoResponse for ProxyError {
    fn into_response(self) -> Response {
        error_response(self.status(), &self.to_string())
    }
}

type ApiResult = Result<Response, Response>;

/// Runs a blocking operation of the server off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ProxyError> + Send + 'static,
) -> Result<T, Response> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(IntoResponse::into_response),
        Err(e) => Err(error_response(500, &format!("internal error: {e}"))),
    }
}

async fn read_json(body: Body) -> Result<Value, Response> {
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            error_response(
                413,
                &format!("request body larger than the limit of {MAX_BODY_BYTES} bytes"),
            )
        })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ProxyError::BadRequestBody(e.to_string()).into_response())
}

async fn refuse_browsers(req: Request, next: Next) -> Response {
    let ua = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ua.starts_with("Mozilla/") {
        return error_response(403, "User agent not allowed");
    }
    next.run(req).await
}

async fn proxy_index(State(s): State<ProxyServer>) -> ApiResult {
    let v = blocking(move || Ok(s.list())).await?;
    Ok(json_response(StatusCode::OK, &v))
}

async fn proxy_create(State(s): State<ProxyServer>, body: Body) -> ApiResult {
    let body = read_json(body).await?;
    let v = blocking(move || s.create(&body)).await?;
    Ok(json_response(StatusCode::CREATED, &v))
}

async fn populate(State(s): State<ProxyServer>, body: Body) -> ApiResult {
    let body = read_json(body).await?;
    let (made, err) = blocking(move || Ok(s.populate(&body))).await?;
    Ok(match err {
        None => json_response(StatusCode::CREATED, &json!({ "proxies": made })),
        Some(e) => {
            let status = e.status();
            json_response(
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                &json!({"error": e.to_string(), "status": status, "proxies": made}),
            )
        }
    })
}

async fn proxy_show(State(s): State<ProxyServer>, Path(name): Path<String>) -> ApiResult {
    let v = blocking(move || s.get(&name)).await?;
    Ok(json_response(StatusCode::OK, &v))
}

async fn proxy_update(
    State(s): State<ProxyServer>,
    Path(name): Path<String>,
    body: Body,
) -> ApiResult {
    let body = read_json(body).await?;
    let v = blocking(move || s.update(&name, &body)).await?;
    Ok(json_response(StatusCode::OK, &v))
}

async fn proxy_delete(State(s): State<ProxyServer>, Path(name): Path<String>) -> ApiResult {
    blocking(move || s.delete(&name)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn toxic_index(State(s): State<ProxyServer>, Path(name): Path<String>) -> ApiResult {
    let v = blocking(move || s.toxics(&name)).await?;
    Ok(json_response(StatusCode::OK, &v))
}

async fn toxic_create(
    State(s): State<ProxyServer>,
    Path(name): Path<String>,
    body: Body,
) -> ApiResult {
    let body = read_json(body).await?;
    let v = blocking(move || s.add_toxic(&name, &body)).await?;
    Ok(json_response(StatusCode::OK, &v))
}

async fn toxic_show(
    State(s): State<ProxyServer>,
    Path((name, toxic)): Path<(String, String)>,
) -> ApiResult {
    let v = blocking(move || s.toxic(&name, &toxic)).await?;
    Ok(json_response(StatusCode::OK, &v))
}

async fn toxic_update(
    State(s): State<ProxyServer>,
    Path((name, toxic)): Path<(String, String)>,
    body: Body,
) -> ApiResult {
    let body = read_json(body).await?;
    let v = blocking(move || s.update_toxic(&name, &toxic, &body)).await?;
    Ok(json_response(StatusCode::OK, &v))
}

async fn toxic_delete(
    State(s): State<ProxyServer>,
    Path((name, toxic)): Path<(String, String)>,
) -> ApiResult {
    blocking(move || s.remove_toxic(&name, &toxic)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn reset(State(s): State<ProxyServer>) -> ApiResult {
    blocking(move || s.reset()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn version() -> Response {
    json_response(StatusCode::OK, &json!({ "version": VERSION }))
}

async fn metrics(State(s): State<ProxyServer>) -> ApiResult {
    let text = blocking(move || Ok(s.metrics_text())).await?;
    let mut r = (StatusCode::OK, text).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    Ok(r)
}

/// The API's routes over `server`.
///
/// ```
/// let s = netloom_proxy::ProxyServer::new(Default::default()).unwrap();
/// let _router = netloom_proxy::api::router(s);
/// ```
pub fn router(server: ProxyServer) -> Router {
    Router::new()
        .route("/reset", post(reset))
        .route("/proxies", get(proxy_index).post(proxy_create))
        .route("/populate", post(populate))
        .route(
            "/proxies/{proxy}",
            get(proxy_show)
                .post(proxy_update)
                .patch(proxy_update)
                .delete(proxy_delete),
        )
        .route(
            "/proxies/{proxy}/toxics",
            get(toxic_index).post(toxic_create),
        )
        .route(
            "/proxies/{proxy}/toxics/{toxic}",
            get(toxic_show)
                .post(toxic_update)
                .patch(toxic_update)
                .delete(toxic_delete),
        )
        .route("/version", get(version))
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn(refuse_browsers))
        .with_state(server)
}

/// Serves the API on `listener` until the future is dropped.
///
/// ```no_run
/// # async fn f() -> std::io::Result<()> {
/// let s = netloom_proxy::ProxyServer::new(Default::default()).unwrap();
/// let l = tokio::net::TcpListener::bind("127.0.0.1:8474").await?;
/// netloom_proxy::api::serve(s, l).await
/// # }
/// ```
pub async fn serve(server: ProxyServer, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    axum::serve(listener, router(server)).await
}
