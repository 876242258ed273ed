//! Guards of the public edge against clients that hold resources instead of
//! using them: each client's share of the connection pool, the HTTP/2
//! progress watchdog, and the bound on answer bytes held for slow readers.
//! `server.rs` applies them to each connection.

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body, Frame, SizeHint};
use hyper::Response;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use hotline_protocol::Reason;

use crate::http::Resp;
use crate::metrics::Metrics;
use crate::ratelimit::ClientBuckets;

/// Each client's share of the connection pool: a count per bucket of the
/// keyed address hash, so one address (or one /64) cannot take every
/// connection and shut everyone else out. No address is kept.
#[derive(Debug)]
pub struct ConnectionShares {
    buckets: ClientBuckets,
    held: Box<[AtomicU32]>,
    max: u32,
}

/// One connection's place in its client's share; given back on drop.
#[derive(Debug)]
pub struct Share {
    shares: Arc<ConnectionShares>,
    bucket: usize,
}

impl ConnectionShares {
    /// Shares of `max` connections per client, hashed into `buckets`.
    pub fn new(max: usize, buckets: u32) -> Result<Self, ring::error::Unspecified> {
        let buckets = ClientBuckets::new(buckets)?;
        let held = (0..buckets.count()).map(|_| AtomicU32::new(0)).collect();
        Ok(ConnectionShares {
            buckets,
            held,
            max: u32::try_from(max).unwrap_or(u32::MAX),
        })
    }

    /// A place for one more connection from `ip`, unless its share is taken.
    pub fn take(self: &Arc<Self>, ip: IpAddr) -> Option<Share> {
        let bucket = usize::try_from(self.buckets.of(ip)).ok()?;
        let held = self.held.get(bucket)?;
        held.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < self.max).then_some(n + 1)
        })
        .ok()?;
        Some(Share {
            shares: self.clone(),
            bucket,
        })
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        if let Some(held) = self.shares.held.get(self.bucket) {
            held.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Why the watchdog ends a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// No request under way and none for the idle time: a polite close
    /// (GOAWAY) if it ever sent a request, else dropped.
    Idle,
    /// Answers waiting and none of them taken for the stall time: dropped,
    /// with the answers it held.
    Stalled,
}

/// What one HTTP/2 connection is doing: requests in handlers, answers not
/// yet sent, and when it last made progress. The watchdog reads it.
#[derive(Debug)]
pub struct Activity {
    idle: Duration,
    stall: Duration,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    last: Instant,
    handlers: usize,
    bodies: usize,
}

impl Activity {
    /// A connection just opened: idle since now.
    pub fn new(idle: Duration, stall: Duration) -> Self {
        Activity {
            idle,
            stall,
            state: Mutex::new(State {
                last: Instant::now(),
                handlers: 0,
                bodies: 0,
            }),
        }
    }

    fn update(&self, f: impl FnOnce(&mut State)) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut s);
        s.last = Instant::now();
    }

    /// Progress without a change of state (restarts the clocks).
    pub fn touch(&self) {
        self.update(|_| {});
    }

    /// A request came in and its handler runs until the guard is dropped
    /// (answered, or cancelled by a reset stream).
    pub fn handling(self: &Arc<Self>) -> Handling {
        self.update(|s| s.handlers += 1);
        Handling(self.clone())
    }

    fn body_started(&self) {
        self.update(|s| s.bodies += 1);
    }

    fn body_done(&self) {
        self.update(|s| s.bodies = s.bodies.saturating_sub(1));
    }

    /// When to look again, and what has ended if that moment has passed.
    /// While a handler runs there is no deadline here: its own timeouts
    /// (body, store) bound it.
    fn next(&self) -> (Instant, Option<End>) {
        let s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if s.handlers > 0 {
            (Instant::now() + self.stall.min(self.idle), None)
        } else if s.bodies > 0 {
            (s.last + self.stall, Some(End::Stalled))
        } else {
            (s.last + self.idle, Some(End::Idle))
        }
    }

    /// Completes when the connection should end, and says why. It looks
    /// at least twice per the shorter timeout, so a change of state (say,
    /// from idle to answers waiting) is seen in time.
    pub async fn expired(&self) -> End {
        let step = self.stall.min(self.idle) / 2;
        loop {
            let now = Instant::now();
            let (at, end) = self.next();
            match end {
                Some(end) if at <= now => return end,
                _ => tokio::time::sleep_until(at.min(now + step)).await,
            }
        }
    }
}

/// A handler at work on an HTTP/2 connection; see [`Activity::handling`].
#[derive(Debug)]
pub struct Handling(Arc<Activity>);

impl Drop for Handling {
    fn drop(&mut self) {
        self.0.update(|s| s.handlers = s.handlers.saturating_sub(1));
    }
}

/// The answer bytes held for clients at once, across all connections: an
/// answer takes its body's length from here until it is sent or dropped.
#[derive(Debug, Clone)]
pub struct ResponseBudget(Arc<Semaphore>);

impl ResponseBudget {
    /// A budget of `bytes`.
    pub fn new(bytes: usize) -> Self {
        ResponseBudget(Arc::new(Semaphore::new(bytes.min(Semaphore::MAX_PERMITS))))
    }

    /// The answer as sent: its body holds its bytes of the budget (and, on
    /// HTTP/2, tells `activity` when it is taken), or, when the budget is
    /// spent, `overloaded` instead (counted in `metrics`).
    pub fn hold(
        &self,
        resp: Resp,
        activity: Option<Arc<Activity>>,
        metrics: &Metrics,
    ) -> Response<EdgeBody> {
        let len = resp.body().size_hint().exact().unwrap_or(0);
        let resp = if len == 0 {
            resp
        } else {
            match u32::try_from(len)
                .ok()
                .and_then(|n| self.0.clone().try_acquire_many_owned(n).ok())
            {
                Some(permit) => {
                    return wrap(resp, Some(permit), activity);
                }
                None => {
                    metrics.rejected(Reason::Overloaded);
                    crate::http::with_common_headers(
                        crate::error::ApiError::new(
                            Reason::Overloaded,
                            "the server is busy; try again shortly",
                        )
                        .into_response(),
                    )
                }
            }
        };
        wrap(resp, None, activity)
    }
}

fn wrap(
    resp: Resp,
    bytes: Option<OwnedSemaphorePermit>,
    activity: Option<Arc<Activity>>,
) -> Response<EdgeBody> {
    let (parts, body) = resp.into_parts();
    let rest = whole(body);
    let activity = activity.filter(|_| !rest.is_empty());
    if let Some(a) = &activity {
        a.body_started();
    }
    Response::from_parts(
        parts,
        EdgeBody {
            rest,
            _bytes: bytes,
            activity,
        },
    )
}

/// The bytes of a whole body in memory (its one frame is always ready).
fn whole(mut body: Full<Bytes>) -> Bytes {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    match Pin::new(&mut body).poll_frame(&mut cx) {
        Poll::Ready(Some(Ok(frame))) => frame.into_data().unwrap_or_default(),
        _ => Bytes::new(),
    }
}

/// Size of the pieces an answer is handed out in: hyper asks for the next
/// piece only once the peer's window took the last, so each piece taken is
/// progress, and a slow but steady download (the 62 KiB form script on 2G)
/// is never taken for a stall.
const PIECE: usize = 16 * 1024;

/// An answer's body on its way out: gives back its budget bytes when done,
/// and counts as progress each time the peer takes a piece.
#[derive(Debug)]
pub struct EdgeBody {
    rest: Bytes,
    _bytes: Option<OwnedSemaphorePermit>,
    activity: Option<Arc<Activity>>,
}

impl Body for EdgeBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.rest.is_empty() {
            return Poll::Ready(None);
        }
        if let Some(a) = &this.activity {
            a.touch();
        }
        let piece = this.rest.split_to(this.rest.len().min(PIECE));
        Poll::Ready(Some(Ok(Frame::data(piece))))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.rest.len() as u64)
    }
}

impl Drop for EdgeBody {
    fn drop(&mut self) {
        if let Some(a) = &self.activity {
            a.body_done();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn one_address_cannot_take_more_than_its_share() {
        let shares = Arc::new(ConnectionShares::new(2, 1 << 16).unwrap());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = shares.take(a).unwrap();
        let _second = shares.take(a).unwrap();
        assert!(shares.take(a).is_none());
        assert!(
            shares.take(b).is_some(),
            "another address has its own share"
        );
        drop(first);
        assert!(
            shares.take(a).is_some(),
            "a closed connection gives it back"
        );
    }

    #[tokio::test]
    async fn an_answer_goes_out_whole_in_pieces() {
        use http_body_util::BodyExt;
        let text = "x".repeat(40_000);
        let resp = ResponseBudget::new(1 << 16).hold(
            crate::http::text(hyper::StatusCode::OK, &text),
            None,
            &Metrics::new(),
        );
        assert_eq!(resp.body().size_hint().exact(), Some(40_000));
        let mut body = resp.into_body();
        let mut got = Vec::new();
        while let Some(frame) = body.frame().await {
            let data = frame.unwrap().into_data().unwrap();
            assert!(data.len() <= PIECE);
            got.extend_from_slice(&data);
        }
        assert_eq!(got, text.as_bytes());
        assert!(body.is_end_stream());
    }

    #[tokio::test]
    async fn answers_beyond_the_budget_are_overloaded_and_bytes_come_back() {
        let budget = ResponseBudget::new(1 << 16);
        let m = Metrics::new();
        let page = || crate::http::text(hyper::StatusCode::OK, &"x".repeat(40_000));
        let held = budget.hold(page(), None, &m);
        assert_eq!(held.status(), 200);
        let refused = budget.hold(page(), None, &m);
        assert_eq!(refused.status(), 503);
        let text = m.render(0, 0);
        assert!(
            text.contains("hotline_rejections_total{reason=\"overloaded\"} 1"),
            "{text}"
        );
        drop(held);
        assert_eq!(budget.hold(page(), None, &m).status(), 200);
    }

    #[tokio::test]
    async fn the_watchdog_tells_idle_from_stalled() {
        let ms = Duration::from_millis;
        let a = Arc::new(Activity::new(ms(10), ms(20)));
        assert_eq!(a.expired().await, End::Idle);
        let handling = a.handling();
        let body = ResponseBudget::new(1 << 16).hold(
            crate::http::text(hyper::StatusCode::OK, "hello"),
            Some(a.clone()),
            &Metrics::new(),
        );
        drop(handling);
        assert_eq!(a.expired().await, End::Stalled);
        drop(body);
        assert_eq!(a.expired().await, End::Idle);
    }
}
