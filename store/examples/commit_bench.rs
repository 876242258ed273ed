//! Durable intake throughput through the group-commit writer: 2 KiB records, N concurrent
//! submitters, redb and (with the `sled` feature) sled. Run in release mode:
//!
//! ```text
//! cargo run --release -p hotline-store --features sled --example commit_bench -- [records] [concurrency] [dir]
//! ```
//!
//! `dir` should be on the disk the gateway will use (default: the system temp directory).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Instant;

use hotline_protocol::{Channel, RecordId};
use hotline_store::committer::Committer;
use hotline_store::{EngineKind, MasterKey, NewRecord, Store, StoreOptions};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let records: u64 = args.get(1).map_or(50_000, |s| s.parse().unwrap());
    let concurrency: u64 = args.get(2).map_or(64, |s| s.parse().unwrap());
    let base = args
        .get(3)
        .map_or_else(std::env::temp_dir, std::path::PathBuf::from);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    println!(
        "{records} records of 2 KiB, concurrency {concurrency}, in {}",
        base.display()
    );
    let mut kinds = vec![EngineKind::Redb];
    if cfg!(feature = "sled") {
        kinds.push(EngineKind::Sled);
    }
    for kind in kinds {
        for conc in [1, concurrency] {
            let n = if conc == 1 {
                records.min(2_000)
            } else {
                records
            };
            rt.block_on(run(kind, n, conc, &base));
        }
    }
}

async fn run(kind: EngineKind, records: u64, concurrency: u64, base: &std::path::Path) {
    let dir = tempfile::tempdir_in(base).unwrap();
    let opts = StoreOptions {
        max_bytes: 1 << 40,
        cache_bytes: std::env::var("CACHE_MIB").map_or(StoreOptions::default().cache_bytes, |v| {
            v.parse::<usize>().unwrap() << 20
        }),
        ..StoreOptions::default()
    };
    let store =
        Arc::new(Store::open(dir.path(), kind, &MasterKey::from_bytes([9; 32]), opts).unwrap());
    let handle = Committer::spawn(Arc::clone(&store), 4096, 512);
    let now = hotline_protocol::time::unix_now();
    let per_task = records / concurrency;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for task in 0..concurrency {
        let h = handle.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_task {
                let rec = NewRecord {
                    id: RecordId::from_bytes({
                        let mut raw = [0u8; 16];
                        raw[..8].copy_from_slice(&task.to_be_bytes());
                        raw[8..].copy_from_slice(&i.to_be_bytes());
                        raw
                    }),
                    receipt: format!("r-{task}-{i}"),
                    received_at: now,
                    channel: Channel::Api,
                    envelope: vec![0xA5; 2048],
                    idempotency_key: Some({
                        let mut k = [0u8; 16];
                        k[..8].copy_from_slice(&task.to_be_bytes());
                        k[8..].copy_from_slice(&i.to_be_bytes());
                        k
                    }),
                };
                loop {
                    match h.submit(rec.clone()) {
                        Ok(p) => {
                            p.await.unwrap();
                            break;
                        }
                        Err(_) => tokio::task::yield_now().await,
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed();
    let stats = handle.stats();
    handle.close().await;
    let done = per_task * concurrency;
    println!(
        "{:<5} concurrency {:>3}: {:>8.0} records/s ({done} in {:.2}s; {} commits, mean batch {:.1}, mean commit {:.2} ms; {:.1} MiB on disk)",
        kind.as_str(),
        concurrency,
        done as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64(),
        stats.batches,
        stats.records as f64 / stats.batches.max(1) as f64,
        stats.total_commit_micros as f64 / stats.batches.max(1) as f64 / 1000.0,
        store.size_bytes().unwrap() as f64 / (1 << 20) as f64,
    );
}
