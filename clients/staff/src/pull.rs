//! `pull`: page through the staff list, keep each report durably, and ack
//! only what was kept.
//!
//! Safe to run again at any time, and on several machines at once: a report
//! already in the archive is acked without being written again, and a report
//! that did not open stays on the gateway.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use hotline_https::Transport;
use hotline_protocol::{
    AckAnswer, AckRequest, DeadList, HpkeSecretKey, RecordId, StaffItem, StaffList,
};
use hyper::Method;

use crate::archive::{Archive, Kept, Meta};
use crate::StaffError;

/// What `pull` needs.
#[derive(Debug)]
pub struct PullOptions {
    /// Gateway base URL (`https://host:port`).
    pub url: String,
    /// The staff bearer token.
    pub token: String,
    /// The hotline private key.
    pub key: HpkeSecretKey,
    /// Where reports go.
    pub out: PathBuf,
    /// Certificate to trust instead of the web PKI.
    pub ca: Option<PathBuf>,
    /// Records per page (1 to 1000).
    pub page: usize,
    /// Take dead-lettered records (`GET /v1/staff/dead`) instead of queued ones;
    /// each one's reason is printed and kept in its file (`dead_reason`).
    pub dead: bool,
}

/// What a pull did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PullSummary {
    /// Reports opened and written now.
    pub written: u64,
    /// Reports that were already in the archive (acked again).
    pub already: u64,
    /// Records that did not open (kept in `undecryptable/`, not acked).
    pub undecryptable: u64,
    /// Records the gateway deleted on our ack.
    pub acked: u64,
}

/// One record of a page: the staff item and, from dead-letter, why the
/// backend refused it.
type PageItem = (StaffItem, Option<String>);

/// The largest page the gateway serves: as many items as a staff list may hold.
const MAX_PAGE: usize = hotline_protocol::cbor::Limits::STAFF_LIST.max_array;

/// Runs one pull to the end of the queue (or, with `dead`, of dead-letter).
/// Progress goes to stdout, one line per record (`stored ID`, `duplicate
/// ID`), and problems to stderr.
pub async fn pull(opts: &PullOptions) -> Result<PullSummary, StaffError> {
    let transport = Transport::new(&opts.url, opts.ca.as_deref())?.timeout(Duration::from_secs(60));
    let archive = Archive::open(&opts.out)?;
    let auth = format!("Bearer {}", opts.token.trim());
    let page = opts.page.clamp(1, MAX_PAGE);
    let mut summary = PullSummary::default();
    let mut after = 0u64;
    // Dead records that did not open: they stay listed (by id, no cursor),
    // so each request asks for that many more to see past them.
    let mut stuck: HashSet<RecordId> = HashSet::new();
    loop {
        let limit = if opts.dead {
            (page + stuck.len()).min(MAX_PAGE)
        } else {
            page
        };
        let (items, next): (Vec<PageItem>, Option<String>) = if opts.dead {
            let body = get(&transport, &auth, &format!("/v1/staff/dead?limit={limit}")).await?;
            let list = DeadList::decode(&body)?;
            let items = list
                .reports
                .into_iter()
                .map(|d| (d.item, Some(d.reason)))
                .collect();
            (items, None)
        } else {
            let path = format!("/v1/staff/reports?after={after}&limit={page}");
            let list = StaffList::decode(&get(&transport, &auth, &path).await?)?;
            let items = list.reports.into_iter().map(|i| (i, None)).collect();
            (items, list.next)
        };
        let full_page = items.len() >= limit;
        let items: Vec<PageItem> = items
            .into_iter()
            .filter(|(item, _)| !stuck.contains(&item.id))
            .collect();
        let new_on_page = items.len();
        let (to_ack, not_acked) = keep_all(opts, &archive, items, &mut summary).await?;
        let acked_now = if to_ack.is_empty() {
            0
        } else {
            ack(&transport, &auth, &to_ack).await?
        };
        summary.acked += acked_now;
        if opts.dead {
            // Dead records have no cursor: acked ones leave the list, and
            // the next request asks past the stuck ones. Stop when this page
            // was the last or brought nothing new: every round that goes on
            // acks a record or learns a new stuck one, so this ends. (It
            // used to stop on the running total of acks, and looped forever
            // once a full page did not open.)
            stuck.extend(not_acked);
            if !full_page || new_on_page == 0 {
                return Ok(summary);
            }
            continue;
        }
        match next {
            Some(next) => {
                after = next.parse().map_err(|_| {
                    StaffError::Usage(format!("the gateway sent a bad cursor {next:?}"))
                })?;
            }
            None => return Ok(summary),
        }
    }
}

/// `GET path` with the staff token; the body of a 200.
async fn get(transport: &Transport, auth: &str, path: &str) -> Result<bytes::Bytes, StaffError> {
    let answer = transport
        .send(Method::GET, path, &[("authorization", auth)], Vec::new())
        .await?;
    if answer.status != 200 {
        return Err(StaffError::gateway(&answer));
    }
    Ok(answer.body)
}

/// Keeps every record of a page durably; returns the ids that may be acked
/// and those that may not (they did not open).
async fn keep_all(
    opts: &PullOptions,
    archive: &Archive,
    items: Vec<PageItem>,
    summary: &mut PullSummary,
) -> Result<(Vec<RecordId>, Vec<RecordId>), StaffError> {
    let (mut to_ack, mut not_acked) = (Vec::new(), Vec::new());
    for (item, dead_reason) in items {
        if let Some(reason) = &dead_reason {
            println!("dead-lettered {}: {reason}", item.id);
        }
        let meta = Meta {
            id: item.id.clone(),
            received_at: Some(item.received_at),
            channel: Some(item.channel),
            dead_reason,
        };
        let kept = {
            let archive = archive.clone();
            let key = opts.key.clone();
            tokio::task::spawn_blocking(move || archive.keep(&meta, &item.envelope, &key))
                .await
                .map_err(|e| StaffError::Usage(format!("write task failed: {e}")))??
        };
        match &kept {
            Kept::Written => {
                summary.written += 1;
                println!("stored {}", item.id);
            }
            Kept::AlreadyPresent => {
                summary.already += 1;
                println!("duplicate {}", item.id);
            }
            Kept::Undecryptable(why) => {
                summary.undecryptable += 1;
                eprintln!(
                    "undecryptable {}: {why}; kept in {}/undecryptable/{}.cbor and NOT acked",
                    item.id,
                    opts.out.display(),
                    item.id
                );
            }
        }
        if kept.may_ack() {
            to_ack.push(item.id);
        } else {
            not_acked.push(item.id);
        }
    }
    Ok((to_ack, not_acked))
}

/// `POST /v1/staff/ack`; returns how many records the gateway deleted.
pub async fn ack(transport: &Transport, auth: &str, ids: &[RecordId]) -> Result<u64, StaffError> {
    let body = AckRequest::new(ids).encode();
    let answer = transport
        .send(
            Method::POST,
            "/v1/staff/ack",
            &[
                ("authorization", auth),
                ("content-type", hotline_protocol::MEDIA_TYPE),
            ],
            body,
        )
        .await?;
    if answer.status != 200 {
        return Err(StaffError::gateway(&answer));
    }
    Ok(AckAnswer::decode(&answer.body)?.acked)
}
