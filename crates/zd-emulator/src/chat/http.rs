//! `POST /graphql/request`: `startAgentSession`, and a pointer to the WebSocket for anything
//! else.

use axum::body::{Body, Bytes};
use http::{Response, StatusCode, header};
use zd_wire::chat::{ErrorName, GraphQlRequest};

use super::Service;
use super::render::{OwnedError, Rendered, http_body};
use super::schema::Caller;

fn json(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// A `GRAPHQL_EXEC_ERROR` answer with `message`.
fn exec_error(status: StatusCode, message: String) -> Response<Body> {
    let rendered = Rendered {
        data: None,
        errors: vec![OwnedError::new(ErrorName::GraphQlExecError, message)],
    };
    json(status, http_body(&rendered))
}

/// Executes a GraphQL request sent over HTTP to `host` (its `Host` header, checked already).
pub(crate) async fn graphql_request(
    service: Service,
    host: Option<String>,
    body: Bytes,
) -> Response<Body> {
    let payload: GraphQlRequest<'_> = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(error) => {
            let message = format!("invalid GraphQL request body: {error}");
            return exec_error(StatusCode::BAD_REQUEST, message);
        }
    };
    // Parsed and measured first: the engine would walk a fragment bomb before validating it.
    let document = match service.documents.parse(&payload.query) {
        Ok(document) => document,
        // GraphQL errors come with HTTP 200, as the engine's own would.
        Err(error) => return exec_error(StatusCode::OK, format!("invalid query: {error}")),
    };
    let variables = payload
        .variables
        .and_then(|raw| serde_json::from_str::<serde_json::Value>(raw.get()).ok())
        .map(async_graphql::Variables::from_json)
        .unwrap_or_default();
    let schema = match service.schema_for(&document, payload.operation_name.as_deref()) {
        Ok(schema) => schema,
        Err(refusal) => return exec_error(StatusCode::OK, refusal),
    };
    let mut request = async_graphql::Request::new(payload.query.to_string())
        .variables(variables)
        .data(Caller::Http { host });
    if let Some(name) = payload.operation_name {
        request = request.operation_name(name.to_string());
    }
    request.set_parsed_query(document);
    let response = schema.execute(request).await;
    let rendered = Rendered::from_engine(&response);
    let status = if rendered
        .errors
        .iter()
        .any(|e| e.name == ErrorName::RateLimited)
    {
        StatusCode::TOO_MANY_REQUESTS
    } else {
        StatusCode::OK
    };
    json(status, http_body(&rendered))
}
