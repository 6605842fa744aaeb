//! Group commit: every write of the table and the queues goes through one committer thread,
//! which runs the writes waiting at that moment in one redb write transaction and commits them
//! with one fsync.
//!
//! redb has a single writer and fsyncs each commit (`Durability::Immediate`), so with one
//! transaction per write the local runtime managed about 1,300 durable writes a second on this
//! machine, whatever the concurrency, and an order end to end takes about 18 of them. Batching
//! keeps each write's guarantees: a caller hears back only once the transaction holding its
//! write is durable, each write sees the writes before it (they run in order in one
//! transaction), and a write that is refused (a failed condition, a stale receipt) changes
//! nothing, because a write checks everything before it changes anything.
//!
//! If a write fails in storage after it began changing the transaction, the transaction is
//! aborted: that write and the others already staged in it get the storage error (nothing of
//! theirs lands, as with any failed commit), and the writes not yet run go into the next
//! transaction.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use redb::{Database, WriteTransaction};
use tokio::sync::oneshot;

/// At most this many writes share a transaction, so one commit's latency stays bounded.
const MAX_BATCH: usize = 256;

/// What a write made of its part of the transaction.
pub(crate) enum Staged<T, E> {
    /// Its result, which holds once the transaction commits: either it wrote all it meant to,
    /// or it was refused before it changed anything.
    Kept(Result<T, E>),
    /// It failed after changing the transaction: the transaction must not commit.
    Broken(E),
}

/// What a caller hears when its transaction did not commit.
#[derive(Debug)]
pub(crate) struct Uncommitted(pub String);

type Reply = Box<dyn FnOnce(Result<(), &str>) + Send>;
/// [`Staged`] with its result type erased, as the committer thread sees a write: keep the
/// transaction and answer after the commit, or abort it.
enum Step {
    Kept(Reply),
    Broken(Reply),
}
type Job = Box<dyn FnOnce(&WriteTransaction) -> Step + Send>;

/// The handle to the committer thread; clones share it. When the last handle goes, the thread
/// commits what is still waiting and ends, and the drop waits for it, so the database is closed
/// cleanly (and free to open again) once the store is gone.
#[derive(Clone)]
pub(crate) struct Committer {
    inner: Arc<Thread>,
}

struct Thread {
    jobs: Option<mpsc::Sender<Job>>,
    handle: Option<std::thread::JoinHandle<()>>,
    /// Transactions run so far (operations and tests: writes / commits is the batching).
    transactions: Arc<AtomicU64>,
}

impl Drop for Thread {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop once it has run every waiting write.
        drop(self.jobs.take());
        if let Some(handle) = self.handle.take() {
            // A write's closure never holds a handle, but if one did, its last drop would run on
            // the committer thread itself, which must not wait for itself.
            if handle.thread().id() != std::thread::current().id() {
                let _ = handle.join();
            }
        }
    }
}

impl Committer {
    pub(crate) fn start(db: Arc<Database>) -> std::io::Result<Self> {
        let (jobs, waiting) = mpsc::channel::<Job>();
        let transactions = Arc::new(AtomicU64::new(0));
        let counted = transactions.clone();
        let handle = std::thread::Builder::new()
            .name("redb-committer".into())
            .spawn(move || {
                // Writes that panic are caught one by one (`commit`); a panic here is redb's own
                // (a commit or an abort failing on a damaged file). No write could commit any
                // more while reads and requests went on, so the process stops instead.
                if catch_unwind(AssertUnwindSafe(|| run(&db, &waiting, &counted))).is_err() {
                    tracing::error!("the redb committer thread panicked; stopping the process");
                    std::process::abort();
                }
            })?;
        Ok(Self {
            inner: Arc::new(Thread {
                jobs: Some(jobs),
                handle: Some(handle),
                transactions,
            }),
        })
    }

    /// How many transactions the committer has run.
    pub(crate) fn transactions(&self) -> u64 {
        self.inner.transactions.load(Ordering::Relaxed)
    }

    /// Runs `work` in the next transaction and answers once it committed (or did not).
    pub(crate) async fn write<T, E>(
        &self,
        work: impl FnOnce(&WriteTransaction) -> Staged<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<Uncommitted> + Send + 'static,
    {
        let (job, rx) = job(work);
        let jobs = self
            .inner
            .jobs
            .as_ref()
            .expect("open until the last handle drops");
        jobs.send(job)
            .map_err(|_| E::from(Uncommitted("the committer has stopped".into())))?;
        rx.await.map_err(|_| {
            E::from(Uncommitted(
                "the write was dropped before it committed".into(),
            ))
        })?
    }
}

/// A write as the committer runs it, and where its answer arrives.
fn job<T, E>(
    work: impl FnOnce(&WriteTransaction) -> Staged<T, E> + Send + 'static,
) -> (Job, oneshot::Receiver<Result<T, E>>)
where
    T: Send + 'static,
    E: From<Uncommitted> + Send + 'static,
{
    let (tx, rx) = oneshot::channel::<Result<T, E>>();
    let job: Job = Box::new(move |txn| match work(txn) {
        Staged::Kept(result) => Step::Kept(Box::new(move |committed: Result<(), &str>| {
            let _ = tx.send(match committed {
                Ok(()) => result,
                Err(why) => Err(Uncommitted(why.to_owned()).into()),
            });
        })),
        // Its own error, whatever became of the transaction (it never commits).
        Staged::Broken(error) => Step::Broken(Box::new(move |_| {
            let _ = tx.send(Err(error));
        })),
    });
    (job, rx)
}

fn run(db: &Database, waiting: &mpsc::Receiver<Job>, transactions: &AtomicU64) {
    let mut carried: Vec<Job> = Vec::new();
    loop {
        let mut batch = std::mem::take(&mut carried);
        if batch.is_empty() {
            match waiting.recv() {
                Ok(job) => batch.push(job),
                Err(_) => return,
            }
        }
        while batch.len() < MAX_BATCH {
            match waiting.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // Counted before its callers hear back, so whoever heard back sees it counted.
        transactions.fetch_add(1, Ordering::Relaxed);
        carried = commit(db, batch);
    }
}

/// Runs `batch` in one transaction and answers each write; returns the writes not run because
/// an earlier one broke the transaction.
fn commit(db: &Database, batch: Vec<Job>) -> Vec<Job> {
    let txn = match db.begin_write() {
        Ok(txn) => txn,
        Err(e) => {
            // Dropping the jobs answers each caller that its write did not commit.
            tracing::error!(error = %e, writes = batch.len(), "could not begin a write transaction");
            return Vec::new();
        }
    };
    let mut replies = Vec::with_capacity(batch.len());
    let mut jobs = batch.into_iter();
    let mut broken = None;
    for job in jobs.by_ref() {
        match catch_unwind(AssertUnwindSafe(|| job(&txn))) {
            Ok(Step::Kept(reply)) => replies.push(reply),
            Ok(Step::Broken(reply)) => {
                replies.push(reply);
                broken = Some("a write failed in storage; its transaction was aborted");
                break;
            }
            Err(_) => {
                broken = Some("a write panicked; its transaction was aborted");
                break;
            }
        }
    }
    let committed = match broken {
        Some(why) => {
            tracing::error!(writes = replies.len(), why, "write transaction aborted");
            drop(txn);
            Err(why.to_owned())
        }
        None => txn.commit().map_err(|e| {
            tracing::error!(error = %e, writes = replies.len(), "commit failed");
            format!("commit failed: {e}")
        }),
    };
    for reply in replies {
        reply(committed.as_ref().map(|_| ()).map_err(String::as_str));
    }
    jobs.collect()
}

#[cfg(test)]
mod tests {
    use redb::{ReadableDatabase, ReadableTable, TableDefinition};

    use super::*;

    const T: TableDefinition<&str, u64> = TableDefinition::new("t");

    #[derive(Debug, PartialEq)]
    enum E {
        Refused,
        Storage,
        Uncommitted,
    }
    impl From<Uncommitted> for E {
        fn from(_: Uncommitted) -> Self {
            E::Uncommitted
        }
    }

    fn put(
        key: &'static str,
        outcome: Option<E>,
    ) -> impl FnOnce(&WriteTransaction) -> Staged<(), E> {
        move |txn| {
            let written = txn
                .open_table(T)
                .and_then(|mut t| t.insert(key, 1).map(|_| ()).map_err(Into::into));
            assert!(written.is_ok());
            match outcome {
                None => Staged::Kept(Ok(())),
                Some(E::Storage) => Staged::Broken(E::Storage),
                Some(e) => Staged::Kept(Err(e)),
            }
        }
    }

    fn stored(db: &Database, key: &str) -> bool {
        let txn = db.begin_read().unwrap();
        txn.open_table(T)
            .map(|t| t.get(key).unwrap().is_some())
            .unwrap_or(false)
    }

    #[test]
    fn a_broken_write_aborts_its_batch_and_the_writes_after_it_run_in_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("t.redb")).unwrap();
        let (first, mut first_rx) = job(put("a", None));
        let (refused, mut refused_rx) =
            job(|_txn: &WriteTransaction| Staged::<(), E>::Kept(Err(E::Refused)));
        let (broken, mut broken_rx) = job(put("b", Some(E::Storage)));
        let (after, mut after_rx) = job(put("c", None));

        let carried = commit(&db, vec![first, refused, broken, after]);
        assert_eq!(
            carried.len(),
            1,
            "the write after the broken one is carried"
        );
        assert_eq!(first_rx.try_recv().unwrap(), Err(E::Uncommitted));
        assert_eq!(refused_rx.try_recv().unwrap(), Err(E::Uncommitted));
        assert_eq!(broken_rx.try_recv().unwrap(), Err(E::Storage));
        assert!(after_rx.try_recv().is_err(), "not answered yet");
        assert!(
            !stored(&db, "a") && !stored(&db, "b"),
            "nothing of the aborted batch landed"
        );

        assert!(commit(&db, carried).is_empty());
        assert_eq!(after_rx.try_recv().unwrap(), Ok(()));
        assert!(stored(&db, "c"));
    }

    #[test]
    fn writes_of_one_batch_commit_together_and_a_refusal_answers_after_the_commit() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("t.redb")).unwrap();
        let (a, mut a_rx) = job(put("a", None));
        let (refused, mut refused_rx) =
            job(|_txn: &WriteTransaction| Staged::<(), E>::Kept(Err(E::Refused)));
        let (b, mut b_rx) = job(put("b", None));
        assert!(commit(&db, vec![a, refused, b]).is_empty());
        assert_eq!(a_rx.try_recv().unwrap(), Ok(()));
        assert_eq!(refused_rx.try_recv().unwrap(), Err(E::Refused));
        assert_eq!(b_rx.try_recv().unwrap(), Ok(()));
        assert!(stored(&db, "a") && stored(&db, "b"));
    }

    /// While a transaction runs, the writes that arrive wait and then share the next one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_waiting_for_the_committer_share_one_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Database::create(dir.path().join("t.redb")).unwrap());
        let committer = Committer::start(db).unwrap();
        let (release, held) = mpsc::channel::<()>();
        let (running, started) = oneshot::channel::<()>();
        let first = {
            let committer = committer.clone();
            tokio::spawn(async move {
                committer
                    .write(move |txn| {
                        running.send(()).unwrap();
                        held.recv().unwrap();
                        put("first", None)(txn)
                    })
                    .await
            })
        };
        started.await.unwrap();
        // Fifty writes reach the committer's channel while the first holds the transaction.
        let channel = committer.inner.jobs.as_ref().unwrap();
        let waiting: Vec<_> = (0..50)
            .map(|_| {
                let (write, answer) = job(put("n", None));
                channel.send(write).unwrap();
                answer
            })
            .collect();
        release.send(()).unwrap();
        first.await.unwrap().unwrap();
        for answer in waiting {
            answer.await.unwrap().unwrap();
        }
        assert_eq!(
            committer.transactions(),
            2,
            "the first alone, then the 50 together"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_through_the_committer_all_land_and_see_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Database::create(dir.path().join("t.redb")).unwrap());
        let committer = Committer::start(db.clone()).unwrap();
        let writes = (0..200).map(|_| {
            let committer = committer.clone();
            tokio::spawn(async move {
                committer
                    .write(|txn| {
                        let mut t = txn.open_table(T).unwrap();
                        let n = t.get("n").unwrap().map(|v| v.value()).unwrap_or(0);
                        t.insert("n", n + 1).unwrap();
                        Staged::<u64, E>::Kept(Ok(n))
                    })
                    .await
                    .unwrap()
            })
        });
        let mut seen: Vec<u64> = Vec::new();
        for write in writes.collect::<Vec<_>>() {
            seen.push(write.await.unwrap());
        }
        seen.sort_unstable();
        assert_eq!(
            seen,
            (0..200).collect::<Vec<_>>(),
            "each write saw the ones before it"
        );
        let txn = db.begin_read().unwrap();
        assert_eq!(
            txn.open_table(T)
                .unwrap()
                .get("n")
                .unwrap()
                .unwrap()
                .value(),
            200
        );
    }
}
