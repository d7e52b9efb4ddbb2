//! An OTLP/HTTP collector for tests: accepts `POST /v1/traces` on a loopback port and decodes each
//! protobuf body, so a test can assert on the spans the server really exported.
#![allow(dead_code)]

use std::{net::SocketAddr, sync::Arc, sync::Mutex};

use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest, common::v1::any_value, resource::v1::Resource, trace::v1::Span,
};
use prost::Message;

/// One exported span with the resource it came with.
#[derive(Clone, Debug)]
pub struct Exported {
    pub span: Span,
    pub resource: Option<Resource>,
}

impl Exported {
    pub fn trace_id(&self) -> String {
        hex::encode(&self.span.trace_id)
    }
    pub fn span_id(&self) -> String {
        hex::encode(&self.span.span_id)
    }
    pub fn parent_span_id(&self) -> String {
        hex::encode(&self.span.parent_span_id)
    }
    /// A string, integer or boolean attribute as text.
    pub fn attribute(&self, key: &str) -> Option<String> {
        self.span
            .attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                any_value::Value::StringValue(s) => Some(s.clone()),
                any_value::Value::IntValue(i) => Some(i.to_string()),
                any_value::Value::BoolValue(b) => Some(b.to_string()),
                other => Some(format!("{other:?}")),
            })
    }
    pub fn resource_attribute(&self, key: &str) -> Option<String> {
        let resource = self.resource.as_ref()?;
        resource
            .attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                any_value::Value::StringValue(s) => Some(s.clone()),
                other => Some(format!("{other:?}")),
            })
    }
}

/// The collector: its address and everything POSTed to it so far.
pub struct Collector {
    pub addr: SocketAddr,
    spans: Arc<Mutex<Vec<Exported>>>,
    posts: Arc<Mutex<Vec<String>>>,
}

impl Collector {
    pub async fn start() -> Collector {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let spans = Arc::new(Mutex::new(Vec::new()));
        let posts = Arc::new(Mutex::new(Vec::new()));
        let (seen, paths) = (spans.clone(), posts.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (seen, paths) = (seen.clone(), paths.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        let (seen, paths) = (seen.clone(), paths.clone());
                        async move {
                            let path = request.uri().path().to_string();
                            let content_type = request
                                .headers()
                                .get("content-type")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_string();
                            let body = request.into_body().collect().await.unwrap().to_bytes();
                            paths.lock().unwrap().push(format!("{path} {content_type}"));
                            let decoded = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf body");
                            let mut seen = seen.lock().unwrap();
                            for resource_spans in decoded.resource_spans {
                                for scope in resource_spans.scope_spans {
                                    for span in scope.spans {
                                        seen.push(Exported {
                                            span,
                                            resource: resource_spans.resource.clone(),
                                        });
                                    }
                                }
                            }
                            Ok::<_, std::convert::Infallible>(Response::new(Full::new(bytes::Bytes::new())))
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Collector { addr, spans, posts }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn spans(&self) -> Vec<Exported> {
        self.spans.lock().unwrap().clone()
    }

    /// `path content-type` of every POST received.
    pub fn posts(&self) -> Vec<String> {
        self.posts.lock().unwrap().clone()
    }
}
