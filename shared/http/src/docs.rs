//! The human-readable API reference at `GET /docs`, rendered on the server from the generated
//! OpenAPI document (no scripts, no third-party assets).

use std::fmt::Write;

use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::{OpenApi, RefOr};

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn operations(item: &PathItem) -> Vec<(&'static str, &Operation)> {
    [
        ("GET", &item.get),
        ("POST", &item.post),
        ("PUT", &item.put),
        ("PATCH", &item.patch),
        ("DELETE", &item.delete),
        ("HEAD", &item.head),
        ("OPTIONS", &item.options),
    ]
    .into_iter()
    .filter_map(|(method, op)| op.as_ref().map(|op| (method, op)))
    .collect()
}

/// Every (method, path) the document describes.
pub fn routes(openapi: &OpenApi) -> Vec<(String, String)> {
    openapi
        .paths
        .paths
        .iter()
        .flat_map(|(path, item)| {
            operations(item)
                .into_iter()
                .map(move |(method, _)| (method.to_owned(), path.clone()))
        })
        .collect()
}

/// Renders the reference page.
pub fn render(openapi: &OpenApi) -> String {
    let title = escape(&openapi.info.title);
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title} API reference</title><style>\
         body{{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1d2b25}}\
         h1{{color:#14532d}}section{{border-top:1px solid #d7e3dc;padding:.5rem 0}}code{{background:#eef5f0;padding:0 .25rem}}\
         .m{{display:inline-block;min-width:4.5rem;font-weight:700}}table{{border-collapse:collapse}}td,th{{text-align:left;padding:.1rem .6rem .1rem 0}}\
         </style></head><body><h1>{title} API reference</h1><p>Version {version}. Machine-readable: <a href=\"/v1/openapi.json\"><code>/v1/openapi.json</code></a> (OpenAPI {oas}).</p>",
        version = escape(&openapi.info.version),
        oas = serde_json::to_value(&openapi.openapi)
            .ok()
            .and_then(|v| v.as_str().map(escape))
            .unwrap_or_default(),
    );
    if let Some(description) = &openapi.info.description {
        let _ = write!(html, "<p>{}</p>", escape(description));
    }
    html.push_str("<h2>Contents</h2><ul>");
    for (path, item) in &openapi.paths.paths {
        for (method, op) in operations(item) {
            let _ = write!(
                html,
                "<li><a href=\"#{id}\"><span class=\"m\">{method}</span><code>{path}</code></a> {summary}</li>",
                id = escape(&anchor(method, path)),
                path = escape(path),
                summary = escape(op.summary.as_deref().unwrap_or(""))
            );
        }
    }
    html.push_str("</ul>");
    for (path, item) in &openapi.paths.paths {
        for (method, op) in operations(item) {
            let _ = write!(
                html,
                "<section id=\"{}\"><h3><span class=\"m\">{method}</span><code>{}</code></h3>",
                escape(&anchor(method, path)),
                escape(path)
            );
            if let Some(summary) = &op.summary {
                let _ = write!(html, "<p><strong>{}</strong></p>", escape(summary));
            }
            if let Some(description) = &op.description {
                let _ = write!(html, "<p>{}</p>", escape(description));
            }
            if let Some(parameters) = op.parameters.as_ref().filter(|p| !p.is_empty()) {
                html.push_str("<table><tr><th>Parameter</th><th>In</th><th>Required</th><th>Description</th></tr>");
                for parameter in parameters {
                    let _ = write!(
                        html,
                        "<tr><td><code>{}</code></td><td>{:?}</td><td>{}</td><td>{}</td></tr>",
                        escape(&parameter.name),
                        serde_json::to_value(&parameter.parameter_in)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default(),
                        matches!(parameter.required, utoipa::openapi::Required::True),
                        escape(parameter.description.as_deref().unwrap_or(""))
                    );
                }
                html.push_str("</table>");
            }
            html.push_str("<table><tr><th>Status</th><th>Response</th></tr>");
            for (status, response) in &op.responses.responses {
                let description = match response {
                    RefOr::T(response) => response.description.clone(),
                    RefOr::Ref(reference) => reference.ref_location.clone(),
                };
                let _ = write!(
                    html,
                    "<tr><td>{}</td><td>{}</td></tr>",
                    escape(status),
                    escape(&description)
                );
            }
            html.push_str("</table></section>");
        }
    }
    html.push_str("<section><h2>Errors</h2><p>Every error is an RFC 9457 <code>application/problem+json</code> document with <code>type</code>, <code>title</code>, <code>status</code>, <code>detail</code>, <code>requestId</code> and, for validation errors, <code>errors: [{field, message}]</code>.</p></section></body></html>");
    html
}

fn anchor(method: &str, path: &str) -> String {
    format!(
        "{}{}",
        method.to_lowercase(),
        path.replace(['/', '{', '}', '.'], "-")
    )
}
