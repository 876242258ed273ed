//! The staff endpoints the hotline uses to take reports out: the list, the
//! dead-letter list and the ack that deletes. All need a staff bearer token.

use hotline_protocol::{
    AckAnswer, AckRequest, DeadItem, DeadList, Limits, Reason, StaffItem, StaffList,
};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};

use crate::app::App;
use crate::error::ApiError;
use crate::http::{self, Resp};

/// Default page of the staff lists.
const STAFF_PAGE: usize = 100;
/// Largest page of the staff lists: the most items the staff tool decodes
/// in one answer.
const STAFF_PAGE_MAX: usize = Limits::STAFF_LIST.max_array;

/// `GET /v1/staff/reports?after=CURSOR&limit=N`: queued records in order.
pub async fn list(app: &App, req: &Request<Incoming>) -> Result<Resp, ApiError> {
    if !app.staff.allows(req.headers()) {
        return Err(ApiError::unauthenticated());
    }
    let (mut after, mut limit) = (0u64, STAFF_PAGE);
    for (k, v) in http::query_pairs(req.uri().query().unwrap_or("")) {
        match k {
            "after" => {
                after = v.parse().map_err(|_| {
                    ApiError::new(Reason::BadCursor, "after must be a cursor from `next`")
                })?
            }
            "limit" => limit = page_limit(v)?,
            _ => {}
        }
    }
    let records = app
        .with_store("list task failed", move |store| {
            store.read_after(after, limit)
        })
        .await?;
    let next = (records.len() == limit)
        .then(|| records.last().map(|r| r.seq.to_string()))
        .flatten();
    let list = StaffList {
        reports: records
            .into_iter()
            .map(|r| StaffItem {
                id: r.id,
                received_at: r.received_at,
                channel: r.channel,
                envelope: r.envelope,
            })
            .collect(),
        next,
    };
    Ok(http::cbor(StatusCode::OK, list.encode()))
}

/// `GET /v1/staff/dead?limit=N`: records the backend refused for good,
/// with the reason; the staff list's item shape plus `"reason"`. No
/// cursor: ack the records (which deletes them) to see the next ones.
pub async fn dead(app: &App, req: &Request<Incoming>) -> Result<Resp, ApiError> {
    if !app.staff.allows(req.headers()) {
        return Err(ApiError::unauthenticated());
    }
    let mut limit = STAFF_PAGE;
    for (k, v) in http::query_pairs(req.uri().query().unwrap_or("")) {
        if k == "limit" {
            limit = page_limit(v)?;
        }
    }
    let dead = app
        .with_store("dead-letter task failed", move |store| {
            store.list_dead(limit)
        })
        .await?;
    let list = DeadList {
        reports: dead
            .into_iter()
            .map(|d| DeadItem {
                item: StaffItem {
                    id: d.record.id,
                    received_at: d.record.received_at,
                    channel: d.record.channel,
                    envelope: d.record.envelope,
                },
                reason: d.reason,
            })
            .collect(),
    };
    Ok(http::cbor(StatusCode::OK, list.encode()))
}

/// `POST /v1/staff/ack`: deletes the listed records, all or none checked
/// first, and says how many were there.
pub async fn ack(app: &App, req: Request<Incoming>) -> Result<Resp, ApiError> {
    if !app.staff.allows(req.headers()) {
        return Err(ApiError::unauthenticated());
    }
    http::require_cbor(req.headers())?;
    let body = http::read_body(req, AckRequest::MAX_LEN, app.limits.body_timeout).await?;
    let ack = AckRequest::decode(&body)?;
    let ids = ack.record_ids().map_err(|bad| {
        ApiError::new(
            Reason::UnknownIds,
            format!("{bad:?} is not a record id (32 hex digits); nothing was deleted"),
        )
    })?;
    let acked = app
        .with_store("ack task failed", move |store| store.delete(&ids))
        .await?;
    Ok(http::cbor(StatusCode::OK, AckAnswer { acked }.encode()))
}

/// A page size from `limit=`: 1 to [`STAFF_PAGE_MAX`].
fn page_limit(v: &str) -> Result<usize, ApiError> {
    v.parse::<usize>()
        .ok()
        .filter(|n| (1..=STAFF_PAGE_MAX).contains(n))
        .ok_or_else(|| {
            ApiError::new(
                Reason::BadLimit,
                format!("limit must be between 1 and {STAFF_PAGE_MAX}"),
            )
        })
}
