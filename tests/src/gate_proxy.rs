//! A TCP proxy in front of the API server that the test can close and open, to cut a controller
//! off from the API server while the test changes state behind its back.
//!
//! While closed, new connections wait (as if the network were down) and established ones are cut.

use anyhow::Result;
use std::net::SocketAddr;
use tokio::{net::TcpListener, sync::watch};

#[derive(Debug)]
pub struct GateProxy {
    pub addr: SocketAddr,
    open: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl GateProxy {
    pub async fn start(upstream: SocketAddr, open: bool) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = watch::channel(open);
        let task = tokio::spawn(async move {
            while let Ok((mut downstream, _)) = listener.accept().await {
                let mut rx = rx.clone();
                tokio::spawn(async move {
                    if rx.wait_for(|open| *open).await.is_err() {
                        return;
                    }
                    let Ok(mut upstream) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut downstream, &mut upstream) => {}
                        _ = rx.wait_for(|open| !*open) => {}
                    }
                });
            }
        });
        Ok(Self {
            addr,
            open: tx,
            task,
        })
    }

    pub fn open(&self) {
        self.open.send_replace(true);
    }

    pub fn close(&self) {
        self.open.send_replace(false);
    }
}

impl Drop for GateProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
