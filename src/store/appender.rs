//! The one appender task: takes whatever appends have queued while the last commit ran and
//! commits them together (group commit), then answers each caller.

use tokio::sync::{mpsc, oneshot, watch};

use super::plan::{AppendRequest, Appended};
use super::{GROUP_EVENTS_MAX, StoreError, StoreOptions, postgres, sqlite};

/// How many times in a row the appender yields to let callers queue more before committing.
const GATHER_QUIET_YIELDS_MAX: u32 = 2;

/// One caller's append and where to send its answer.
pub struct Job {
    pub request: AppendRequest,
    pub reply: oneshot::Sender<Result<Appended, StoreError>>,
}

/// The write side of a backend.
pub enum Writer {
    Sqlite(sqlite::SqliteLog),
    Postgres(postgres::PostgresLog),
}

impl Writer {
    /// Commits a group in one transaction; returns one answer per request and the new head.
    async fn commit(
        &self,
        requests: Vec<AppendRequest>,
    ) -> Result<(Vec<Result<Appended, StoreError>>, u64), StoreError> {
        match self {
            Writer::Sqlite(log) => log.commit_group(requests).await,
            Writer::Postgres(log) => {
                let requests: Vec<&AppendRequest> = requests.iter().collect();
                log.commit_group(&requests).await
            }
        }
    }
}

pub async fn run(
    writer: Writer,
    mut jobs: mpsc::Receiver<Job>,
    head: watch::Sender<u64>,
    options: StoreOptions,
) {
    while let Some(first) = jobs.recv().await {
        let mut group = vec![first];
        if options.group_commit {
            gather(&mut jobs, &mut group).await;
        }
        let (requests, replies): (Vec<_>, Vec<_>) = group
            .into_iter()
            .map(|job| (job.request, job.reply))
            .unzip();
        let started = std::time::Instant::now();
        match writer.commit(requests).await {
            Ok((answers, head_position)) => {
                let micros = started.elapsed().as_micros() as u64;
                tracing::debug!(
                    requests = replies.len(),
                    head_position,
                    micros,
                    "group committed"
                );
                assert_eq!(answers.len(), replies.len(), "one answer per request");
                head.send_if_modified(|known| {
                    let advanced = head_position > *known;
                    *known = (*known).max(head_position);
                    advanced
                });
                for (reply, answer) in replies.into_iter().zip(answers) {
                    let _ = reply.send(answer);
                }
            }
            Err(error) => {
                tracing::error!(%error, requests = replies.len(), "group commit failed");
                for reply in replies {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
    }
}

/// Adds queued jobs to the group, up to the group's event limit. Callers answered by the last
/// commit are usually still preparing their next append, so the appender yields while jobs keep
/// arriving: without that, the first of them would be committed alone and groups would
/// alternate between one append and all the rest.
async fn gather(jobs: &mut mpsc::Receiver<Job>, group: &mut Vec<Job>) {
    let mut events: usize = group.iter().map(|job| job.request.events.len()).sum();
    let mut quiet_yields = 0;
    while events < GROUP_EVENTS_MAX && quiet_yields < GATHER_QUIET_YIELDS_MAX {
        match jobs.try_recv() {
            Ok(job) => {
                events += job.request.events.len();
                group.push(job);
                quiet_yields = 0;
            }
            Err(_) => {
                quiet_yields += 1;
                tokio::task::yield_now().await;
            }
        }
    }
}
