//! redb engine: one file, copy-on-write B-trees, commits with `Durability::Immediate` (fsync).

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableDatabase, TableDefinition};

use super::{Engine, Op, Table, Visit};
use crate::error::{is_disk_full, StoreError};

type Def = TableDefinition<'static, &'static [u8], &'static [u8]>;

fn def(table: Table) -> Def {
    TableDefinition::new(table.name())
}

/// Converts any redb error, mapping "disk full" to [`StoreError::Full`].
fn err<E: Into<redb::Error>>(table: Table, op: &'static str) -> impl FnOnce(E) -> StoreError {
    move |e| {
        let e: redb::Error = e.into();
        if let redb::Error::Io(io) = &e {
            if is_disk_full(io) {
                return StoreError::Full;
            }
        }
        StoreError::Engine {
            engine: "redb",
            table: table.name(),
            op,
            source: Arc::new(e),
        }
    }
}

pub(crate) struct RedbEngine {
    db: Database,
    path: PathBuf,
}

impl RedbEngine {
    pub const FILE: &'static str = "queue.redb";

    pub fn open(dir: &Path, cache_bytes: usize) -> Result<RedbEngine, StoreError> {
        let path = dir.join(Self::FILE);
        let db = Database::builder()
            .set_cache_size(cache_bytes)
            .create(&path)
            .map_err(err(Table::Queue, "open database"))?;
        // Create every table once so read transactions never meet a missing one.
        let txn = db.begin_write().map_err(err(Table::Queue, "begin write"))?;
        for table in Table::ALL {
            txn.open_table(def(table))
                .map_err(err(table, "create table"))?;
        }
        txn.commit().map_err(err(Table::Queue, "commit"))?;
        Ok(RedbEngine { db, path })
    }
}

impl Engine for RedbEngine {
    fn write(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        // The default durability is Immediate: commit() returns after fsync.
        let txn = self
            .db
            .begin_write()
            .map_err(err(Table::Queue, "begin write"))?;
        {
            let mut tables = Vec::with_capacity(Table::ALL.len());
            for table in Table::ALL {
                if ops.iter().any(|op| op_table(op) == table) {
                    let handle = txn.open_table(def(table)).map_err(err(table, "open"))?;
                    tables.push((table, handle));
                }
            }
            for op in &ops {
                let table = op_table(op);
                let Some((_, handle)) = tables.iter_mut().find(|(t, _)| *t == table) else {
                    continue;
                };
                match op {
                    Op::Put(_, k, v) => {
                        handle
                            .insert(k.as_slice(), v.as_slice())
                            .map_err(err(table, "insert"))?;
                    }
                    Op::Del(_, k) => {
                        handle.remove(k.as_slice()).map_err(err(table, "remove"))?;
                    }
                }
            }
        }
        txn.commit().map_err(err(Table::Queue, "commit"))
    }

    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(err(table, "begin read"))?;
        let handle = txn.open_table(def(table)).map_err(err(table, "open"))?;
        let value = handle.get(key).map_err(err(table, "get"))?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    fn scan(&self, table: Table, after: Option<&[u8]>, visit: Visit<'_>) -> Result<(), StoreError> {
        let txn = self.db.begin_read().map_err(err(table, "begin read"))?;
        let handle = txn.open_table(def(table)).map_err(err(table, "open"))?;
        let lower: Bound<&[u8]> = match after {
            Some(a) => Bound::Excluded(a),
            None => Bound::Unbounded,
        };
        let range = handle
            .range::<&[u8]>((lower, Bound::Unbounded))
            .map_err(err(table, "range"))?;
        for item in range {
            let (k, v) = item.map_err(err(table, "range next"))?;
            if !visit(k.value(), v.value())? {
                break;
            }
        }
        Ok(())
    }

    fn size_on_disk(&self) -> Result<u64, StoreError> {
        std::fs::metadata(&self.path)
            .map(|m| m.len())
            .map_err(|e| StoreError::io("stat database", &self.path, e))
    }
}

fn op_table(op: &Op) -> Table {
    match op {
        Op::Put(t, _, _) | Op::Del(t, _) => *t,
    }
}
