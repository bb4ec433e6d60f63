//! Connection plumbing shared by the HTTPS and TCP listeners: activity tracking for
//! idle timeouts, and a drain tracker for graceful shutdown.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Last-activity time and in-flight request count of one connection.
#[derive(Debug)]
pub struct Activity {
    start: Instant,
    last_ms: AtomicU64,
    inflight: AtomicUsize,
}

impl Activity {
    /// Starts the clock now.
    pub fn new() -> Arc<Self> {
        Arc::new(Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            inflight: AtomicUsize::new(0),
        })
    }

    /// Records activity now.
    pub fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// How long since the last activity.
    pub fn idle_for(&self) -> Duration {
        let now = self.start.elapsed();
        now.saturating_sub(Duration::from_millis(self.last_ms.load(Ordering::Relaxed)))
    }

    /// Marks a request in flight until the guard drops (an idle timer must not cut a
    /// connection that waits for a slow upstream).
    pub fn request(self: &Arc<Self>) -> InflightGuard {
        self.inflight.fetch_add(1, Ordering::Relaxed);
        InflightGuard(self.clone())
    }

    /// Requests in flight.
    pub fn inflight(&self) -> usize {
        self.inflight.load(Ordering::Relaxed)
    }

    /// Resolves once the connection has been idle (no bytes, no request in flight)
    /// for `limit`.
    pub async fn idle(&self, limit: Duration) {
        loop {
            let idle = self.idle_for();
            if idle >= limit && self.inflight() == 0 {
                return;
            }
            let wait = limit.saturating_sub(idle).max(Duration::from_millis(50));
            tokio::time::sleep(wait).await;
        }
    }
}

/// Decrements the in-flight count on drop.
pub struct InflightGuard(Arc<Activity>);

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0.touch();
        self.0.inflight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An IO object that records activity on every read or write that moved bytes.
pub struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Tracked<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, activity: Arc<Activity>) -> Self {
        activity.touch();
        Tracked { inner, activity }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Resolves when `rx` holds `true` (or its sender is gone). Returns `()` so that no
/// watch guard is held across awaits in a `select!`.
pub async fn wait_true(rx: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}

/// Counts live connection tasks so shutdown can wait for them: every task holds a
/// [`DrainToken`]; [`Drain::wait`] returns when all are dropped.
pub struct Drain {
    tx: Option<mpsc::Sender<()>>,
    rx: mpsc::Receiver<()>,
}

/// Held by a connection task while it runs.
#[derive(Clone)]
pub struct DrainToken(#[allow(dead_code)] mpsc::Sender<()>);

impl Default for Drain {
    fn default() -> Self {
        Self::new()
    }
}

impl Drain {
    /// A new tracker.
    pub fn new() -> Self {
        let (tx, rx) = mpsc::channel(1);
        Drain { tx: Some(tx), rx }
    }

    /// A token for a new task (`None` once waiting has begun).
    pub fn token(&self) -> Option<DrainToken> {
        self.tx.clone().map(DrainToken)
    }

    /// Waits until every token is dropped, at most `limit`. Returns false on timeout.
    pub async fn wait(mut self, limit: Duration) -> bool {
        self.tx = None;
        // recv() yields None once every sender (token) is gone; nothing is ever sent.
        tokio::time::timeout(limit, self.rx.recv()).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn idle_waits_for_quiet_and_no_requests() {
        let a = Activity::new();
        a.touch();
        let g = a.request();
        let a2 = a.clone();
        let t = tokio::spawn(async move { a2.idle(Duration::from_secs(5)).await });
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(!t.is_finished(), "a request in flight keeps the connection");
        drop(g);
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert!(t.is_finished());
    }

    #[tokio::test]
    async fn tracked_io_touches() {
        let (a, mut b) = tokio::io::duplex(64);
        let act = Activity::new();
        let mut t = Tracked::new(a, act.clone());
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(act.idle_for() >= Duration::from_millis(30));
        b.write_all(b"x").await.unwrap();
        let mut buf = [0u8; 1];
        t.read_exact(&mut buf).await.unwrap();
        assert!(act.idle_for() < Duration::from_millis(30));
    }

    #[tokio::test]
    async fn drain_waits_for_tokens() {
        let d = Drain::new();
        let tok = d.token().unwrap();
        let h = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(tok);
        });
        assert!(d.wait(Duration::from_secs(2)).await);
        h.await.unwrap();
        let d = Drain::new();
        let _held = d.token().unwrap();
        assert!(!d.wait(Duration::from_millis(50)).await);
    }
}
