//! What the servers' tests share: the bound that keeps a broken test from hanging, and the check
//! that the server closed a connection.

use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Bounds only to keep a broken test from hanging; no timing is asserted against them.
pub(crate) const HANG: Duration = Duration::from_secs(5);

/// Whether the server closes `io` (EOF or an error) within [`HANG`]; whatever it sends before
/// (its HTTP/2 settings, say) is ignored.
pub(crate) async fn closed<T: AsyncRead + Unpin>(io: &mut T) -> bool {
    let mut buf = [0u8; 1024];
    let until_closed = async {
        loop {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(HANG, until_closed).await.is_ok()
}
