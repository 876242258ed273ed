//! sled engine: one tree, tables as one-byte key prefixes, so a `Batch` is atomic across
//! tables; `flush()` after every write (which uses sync_file_range on Linux, see README.md).

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use super::{Engine, Op, Table, Visit};
use crate::error::{is_disk_full, StoreError};

fn err(table: Table, op: &'static str) -> impl FnOnce(sled::Error) -> StoreError {
    move |e| {
        if let sled::Error::Io(io) = &e {
            if is_disk_full(io) {
                return StoreError::Full;
            }
        }
        StoreError::Engine {
            engine: "sled",
            table: table.name(),
            op,
            source: Arc::new(e),
        }
    }
}

fn prefixed(table: Table, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + key.len());
    k.push(table.prefix());
    k.extend_from_slice(key);
    k
}

pub(crate) struct SledEngine {
    db: sled::Db,
}

impl SledEngine {
    pub fn open(dir: &Path, cache_bytes: usize) -> Result<SledEngine, StoreError> {
        let config = sled::Config::new()
            .path(dir.join(super::SLED_DIR))
            .cache_capacity(cache_bytes as u64)
            .mode(sled::Mode::LowSpace)
            .use_compression(false)
            // Every write is followed by an explicit flush; no background flusher thread.
            .flush_every_ms(None);
        // sled's background threads may hold the file lock for a moment after a previous
        // handle in this process was dropped: retry briefly before giving up.
        let mut attempts = 0;
        loop {
            match config.open() {
                Ok(db) => return Ok(SledEngine { db }),
                Err(sled::Error::Io(e))
                    if attempts < 50 && e.to_string().contains("could not acquire lock") =>
                {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => return Err(err(Table::Queue, "open database")(e)),
            }
        }
    }
}

impl Engine for SledEngine {
    fn write(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for op in ops {
            match op {
                Op::Put(t, k, v) => batch.insert(prefixed(t, &k), v),
                Op::Del(t, k) => batch.remove(prefixed(t, &k)),
            }
        }
        self.db
            .apply_batch(batch)
            .map_err(err(Table::Queue, "apply batch"))?;
        self.db.flush().map_err(err(Table::Queue, "flush"))?;
        Ok(())
    }

    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let v = self
            .db
            .get(prefixed(table, key))
            .map_err(err(table, "get"))?;
        Ok(v.map(|v| v.to_vec()))
    }

    fn scan(&self, table: Table, after: Option<&[u8]>, visit: Visit<'_>) -> Result<(), StoreError> {
        let lower = match after {
            Some(a) => Bound::Excluded(prefixed(table, a)),
            None => Bound::Included(vec![table.prefix()]),
        };
        let upper = Bound::Excluded(vec![table.prefix().saturating_add(1)]);
        for item in self.db.range::<Vec<u8>, _>((lower, upper)) {
            let (k, v) = item.map_err(err(table, "range next"))?;
            let key = k.get(1..).unwrap_or_default();
            if !visit(key, &v)? {
                break;
            }
        }
        Ok(())
    }

    fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.db
            .size_on_disk()
            .map_err(err(Table::Queue, "size on disk"))
    }
}
