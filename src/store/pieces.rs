//! A page of events as it is read: kept whole, or handed on in pieces as the payloads read
//! into each reach a size, so that a replay folds the start of a page while the rest decodes.
//! A page of payment runs holds some twenty megabytes where others hold half of one; read whole,
//! it kept both folds waiting some fifty milliseconds each month of a national year.

/// The payload bytes read into a piece before it is handed on: twice a page of ordinary
/// events, so that only pages of payment runs are cut.
pub(crate) const PIECE_PAYLOAD_BYTES: usize = 1 << 20;

/// Where a page's events go as they are read.
pub(crate) struct Pieces<'a, T> {
    piece: Vec<T>,
    payload_bytes: usize,
    /// Takes each full piece, and says whether to go on; none keeps the page whole.
    hand_on: Option<&'a mut dyn FnMut(Vec<T>) -> bool>,
    stopped: bool,
}

impl<'a, T> Pieces<'a, T> {
    /// A page kept whole, with room for `capacity` events.
    pub(crate) fn whole(capacity: usize) -> Pieces<'a, T> {
        Pieces {
            piece: Vec::with_capacity(capacity),
            payload_bytes: 0,
            hand_on: None,
            stopped: false,
        }
    }

    /// A page of up to `capacity` events handed on to `hand_on` a piece at a time; it stops the
    /// reading by answering false.
    pub(crate) fn handed_on(
        capacity: usize,
        hand_on: &'a mut dyn FnMut(Vec<T>) -> bool,
    ) -> Pieces<'a, T> {
        Pieces {
            hand_on: Some(hand_on),
            ..Pieces::whole(capacity)
        }
    }

    /// Adds an event read from a payload of `payload_bytes`.
    pub(crate) fn push(&mut self, event: T, payload_bytes: usize) {
        self.piece.push(event);
        self.payload_bytes += payload_bytes;
        if self.payload_bytes >= PIECE_PAYLOAD_BYTES && self.hand_on.is_some() {
            self.hand_on_piece();
        }
    }

    /// Whether the taker asked for no more.
    pub(crate) fn stopped(&self) -> bool {
        self.stopped
    }

    /// The page kept whole; or, when handed on, hands on the last piece and gives nothing.
    pub(crate) fn finish(mut self) -> Vec<T> {
        if self.hand_on.is_some() && !self.piece.is_empty() {
            self.hand_on_piece();
        }
        self.piece
    }

    /// Hands on the piece, and makes room for the next as large as it: a page's large
    /// payloads come together, and a piece grown from nothing was copied at every doubling.
    fn hand_on_piece(&mut self) {
        let hand_on = self.hand_on.as_mut().expect("only when handed on");
        self.payload_bytes = 0;
        let next = Vec::with_capacity(self.piece.len());
        let piece = std::mem::replace(&mut self.piece, next);
        if !self.stopped {
            self.stopped = !hand_on(piece);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pieces handed on for events of the given payload sizes, each numbered by its place,
    /// by a taker that answers `go_on`.
    fn handed_on(payload_bytes: &[usize], go_on: bool) -> Vec<Vec<usize>> {
        let mut taken = Vec::new();
        let mut take = |piece: Vec<usize>| {
            taken.push(piece);
            go_on
        };
        let mut pieces = Pieces::handed_on(payload_bytes.len(), &mut take);
        for (n, &bytes) in payload_bytes.iter().enumerate() {
            pieces.push(n, bytes);
        }
        assert!(pieces.finish().is_empty());
        taken
    }

    #[test]
    fn a_page_kept_whole_is_never_cut() {
        let mut pieces = Pieces::whole(3);
        for n in 0..3 {
            pieces.push(n, PIECE_PAYLOAD_BYTES);
        }
        assert_eq!(pieces.finish(), [0, 1, 2]);
    }

    #[test]
    fn a_page_handed_on_is_cut_where_its_payloads_reach_the_size() {
        let (whole, half) = (PIECE_PAYLOAD_BYTES, PIECE_PAYLOAD_BYTES / 2);
        let taken = handed_on(&[10, half, half, 1, whole, 3], true);
        assert_eq!(taken, [vec![0, 1, 2], vec![3, 4], vec![5]]);
    }

    #[test]
    fn a_taker_that_stops_is_handed_nothing_more() {
        let whole = PIECE_PAYLOAD_BYTES;
        assert_eq!(handed_on(&[whole, whole, whole], false), [vec![0]]);
    }
}
