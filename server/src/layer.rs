//! The one shape of this server's middleware: a typed handle — `auth::Gate`, `origin::Policy`,
//! `request_context::RequestContext` — that sees each request before the endpoint behind it and may
//! answer it itself. A handle implements [`Around`]; `.with(Layer(handle))` puts it in front of a
//! route, and the route keeps the handle, so nothing is looked up per request.

use std::future::Future;

use poem::{Endpoint, Middleware, Request, Response};

/// What a middleware handle does with a request and the endpoint behind it.
pub trait Around: Clone + Send + Sync + 'static {
    fn around<E: Endpoint>(&self, next: &E, request: Request) -> impl Future<Output = Response> + Send;
}

/// A handle as a `poem::Middleware`.
#[derive(Clone)]
pub struct Layer<A>(pub A);

impl<A: Around, E: Endpoint> Middleware<E> for Layer<A> {
    type Output = Layered<A, E>;

    fn transform(&self, next: E) -> Layered<A, E> {
        Layered {
            handle: self.0.clone(),
            next,
        }
    }
}

/// An endpoint behind a handle.
pub struct Layered<A, E> {
    handle: A,
    next: E,
}

impl<A: Around, E: Endpoint> Endpoint for Layered<A, E> {
    type Output = Response;

    async fn call(&self, request: Request) -> poem::Result<Response> {
        Ok(self.handle.around(&self.next, request).await)
    }
}
