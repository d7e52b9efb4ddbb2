//! A pooled connection lent to one tool call, and what becomes of it when the call is abandoned.
//!
//! A call's future is dropped when its request passes `http.request_timeout` (504) or its client
//! goes away. Handed back to the pool as it was, the connection would keep what the call left on
//! it: the statement still running on the backend until `statement_timeout`, and session-level
//! advisory locks, held until that connection happened to serve another call — hours on a quiet
//! instance, while a migration tool waits on the lock (found by a red-team review of issue #13).
//!
//! So a [`Checkout`] dropped before [`Checkout::finish`] never returns to the pool: it sends
//! PostgreSQL a CancelRequest for whatever the backend is running, then closes the connection, and
//! the backend's exit releases everything the session held. The cancel cannot hit another caller's
//! statement — the usual objection to cancelling late — because nobody else ever gets this
//! connection. The next call pays one new connection, only after an abandoned call.

use std::time::Duration;

use deadpool_postgres::Object;
use tokio_postgres::NoTls;
use tokio_postgres_rustls::MakeRustlsConnect;

/// How long the CancelRequest (a new connection to the server) may take before the connection is
/// closed anyway; the backend then ends the statement at `statement_timeout` at the latest.
const CANCEL_TIMEOUT: Duration = Duration::from_secs(5);

/// How a CancelRequest reaches the server: over the same kind of transport as the connection
/// (`sslmode` travels with the cancel token; the rustls connector is only used when it asks for TLS).
#[derive(Clone)]
pub enum CancelTransport {
    Rustls(MakeRustlsConnect),
    /// `database.ca_file` could not be read: cancels are sent only to servers without TLS.
    Plain,
}

/// One call's pooled connection; see the module doc.
pub struct Checkout {
    object: Option<Object>,
    cancel: CancelTransport,
}

impl Checkout {
    pub fn new(object: Object, cancel: CancelTransport) -> Checkout {
        Checkout {
            object: Some(object),
            cancel,
        }
    }

    pub fn client(&mut self) -> &mut Object {
        self.object
            .as_mut()
            .expect("a checkout holds its connection until finished or dropped")
    }

    /// The call ended cleanly (its transaction rolled back, its locks released): the connection goes
    /// back to the pool.
    pub fn finish(mut self) {
        drop(self.object.take());
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        let Some(object) = self.object.take() else {
            return;
        };
        // Detached from the pool: dropping the client closes the connection.
        let client = Object::take(object);
        let token = client.cancel_token();
        let cancel = self.cancel.clone();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let sent = match cancel {
                CancelTransport::Rustls(tls) => tokio::time::timeout(CANCEL_TIMEOUT, token.cancel_query(tls)).await,
                CancelTransport::Plain => tokio::time::timeout(CANCEL_TIMEOUT, token.cancel_query(NoTls)).await,
            };
            if !matches!(sent, Ok(Ok(()))) {
                tracing::debug!("the cancel request of an abandoned call did not reach the database");
            }
            drop(client);
        });
    }
}
