//! The writer's memory of stream versions: looking each group's streams up in a log of tens of
//! gigabytes reads index pages scattered across the file, and an import touches the same
//! journeys' streams batch after batch.
//!
//! The memory holds only while this writer is the log's only one. Every group reads the log's
//! head under the write lock first; if it is not the head this writer left, someone else
//! appended, and everything remembered is forgotten.

use foldhash::{HashMap, HashMapExt};

use super::event::RecordedEvent;

/// Streams remembered at most; past this the memory starts again, so that a national import
/// does not keep every stream it ever wrote.
const STREAMS_MAX: usize = 1_000_000;

/// Stream versions as of `head_position`.
#[derive(Debug, Default)]
pub(super) struct StreamHeads {
    head_position: Option<u64>,
    versions: HashMap<String, u64>,
}

impl StreamHeads {
    /// The remembered versions of `streams` (0 for a stream known to be empty), and the streams
    /// that must be looked up. Forgets everything first unless the log is still at the head this
    /// writer left.
    pub(super) fn recall(
        &mut self,
        head_position: u64,
        streams: Vec<String>,
    ) -> (HashMap<String, u64>, Vec<String>) {
        if self.head_position != Some(head_position) {
            self.forget();
        }
        let mut known = HashMap::with_capacity(streams.len());
        let mut unknown = Vec::new();
        for stream in streams {
            match self.versions.get(&stream) {
                Some(version) => {
                    known.insert(stream, *version);
                }
                None => unknown.push(stream),
            }
        }
        (known, unknown)
    }

    /// Remembers a group's committed state: the versions it looked up in the file (0 for an
    /// empty stream), then the rows it wrote, leaving the log at `head_position`.
    pub(super) fn remember(
        &mut self,
        looked_up: Vec<(String, u64)>,
        written: &[RecordedEvent],
        head_position: u64,
    ) {
        if self.versions.len() + looked_up.len() > STREAMS_MAX {
            self.versions.clear();
        }
        self.versions.extend(looked_up);
        for row in written {
            let version = self.versions.entry(row.stream.clone()).or_default();
            assert!(*version < row.stream_version, "stream versions only grow");
            *version = row.stream_version;
        }
        self.head_position = Some(head_position);
    }

    /// Forgets everything: after a failed commit, or when another writer moved the log.
    pub(super) fn forget(&mut self) {
        self.versions.clear();
        self.head_position = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn streams(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    #[test]
    fn versions_are_remembered_only_while_the_log_stays_where_this_writer_left_it() {
        let mut heads = StreamHeads::default();
        let (known, unknown) = heads.recall(7, streams(&["referral-a", "referral-b"]));
        assert!(known.is_empty());
        assert_eq!(unknown, ["referral-a", "referral-b"]);
        let looked_up = vec![("referral-a".to_owned(), 3), ("referral-b".to_owned(), 0)];
        heads.remember(looked_up, &[], 7);

        let (known, unknown) =
            heads.recall(7, streams(&["referral-a", "referral-b", "referral-c"]));
        let expected =
            HashMap::from_iter([("referral-a".to_owned(), 3), ("referral-b".to_owned(), 0)]);
        assert_eq!(
            known, expected,
            "a stream looked up and found empty is remembered as 0"
        );
        assert_eq!(unknown, ["referral-c"]);

        // Another writer appended: position 8 is not where this writer left the log.
        let (known, unknown) = heads.recall(8, streams(&["referral-a"]));
        assert!(known.is_empty());
        assert_eq!(unknown, ["referral-a"]);
    }
}
