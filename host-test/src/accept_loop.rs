//! The accept loop of the host's loopback servers (the fake API, the
//! designer, the benchmarks' plain server): each connection is served in a
//! task of its own, and ending the loop closes every one of them, so a
//! stopped server leaves no connection behind.

use std::future::Future;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinSet;

/// After a failed accept (out of file descriptors and the like), the wait
/// before the next: the loop backs off instead of spinning, and keeps
/// serving.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// Serves each accepted connection with `serve` until `stop` fires (or its
/// sender is dropped).
pub async fn serve_until_stopped<S, F>(
    listener: TcpListener,
    mut stop: oneshot::Receiver<()>,
    mut serve: S,
) where
    S: FnMut(TcpStream) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    // Dropping the set when the loop ends closes every connection.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve(stream));
                }
                Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}
