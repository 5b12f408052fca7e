//! The event queue: events ordered by (time, tie-break key, insertion number).
//!
//! The tie-break key of an event is drawn from the scheduler's seeded stream, so that events due
//! at the same instant run in an order that depends on the seed and nothing else (never on hash
//! order, addresses or message contents); the insertion number settles equal keys, which the
//! simulator gives on purpose to events that must keep their send order.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap};

/// When an event is due and how it sorts against others due at the same time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Due {
    pub(crate) micros: u64,
    pub(crate) key: u64,
}

/// What the buckets order: small, so that sorting moves 24 bytes, not whole events.
///
/// An entry does not carry its time: every entry of a bucket is due at the bucket's time, so
/// entries side by side differ only in key and insertion number, and comparing them takes two
/// words.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Entry {
    key: u64,
    seq: u64,
    /// A slab index, or (with [`DIRECT`] set) a value carried in the entry itself, or (with
    /// [`LIGHT`] set) an index into the slab of light events.
    target: u64,
}

/// Marks an entry that carries its value instead of pointing into the slab.
const DIRECT: u64 = 1 << 63;

/// Marks an entry that points into the slab of light events (see [`EventQueue::push_light`]).
const LIGHT: u64 = 1 << 62;

/// What [`EventQueue::pop`] gives back: small, so that a pop's common cases pass it in
/// registers, where a whole event would be copied through memory on every pop.
pub(crate) enum Popped<L> {
    /// An event pushed with [`EventQueue::push`], still in its slot: take it with
    /// [`EventQueue::take_event`].
    Event(usize),
    /// A value pushed with [`EventQueue::push_direct`].
    Direct(u64),
    /// A light event pushed with [`EventQueue::push_light`].
    Light(L),
}

impl Entry {
    /// What the entry sorts by within one instant.
    #[inline(always)]
    fn order(&self) -> (u64, u64) {
        (self.key, self.seq)
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    /// By [`Entry::order`]: two entries never share an insertion number.
    fn cmp(&self, other: &Self) -> Ordering {
        self.order().cmp(&other.order())
    }
}

/// The most entries [`EventQueue`]'s sorted vector of fresh events holds; more go to a heap, so
/// that a burst of sends within one handler (a fan-in of a million messages) costs a logarithm
/// per event, not a copy of all the others.
const FRESH_MAX: usize = 256;

/// A min-queue of events over a slab of the events themselves.
///
/// Simulations schedule in bursts: a hundred timers due at one instant, messages within a machine
/// due at the current instant. So the queue is a calendar: events due later are kept in buckets
/// by their exact time, and a bucket is sorted once, when its time comes. An event pushed for the
/// current instant while it runs goes into a second sorted vector, of those pushed since the
/// instant began and not run yet (a few dozen at most, where the bucket may hold hundreds), in
/// its place: its insertion number is the greatest yet, so it goes after every entry of its key
/// or less, and only the entries due before it move, one place each as it moves up past them
/// from the end (a few on average, cheaper than a heap's sifting or a binary search's chain of
/// loads). Past [`FRESH_MAX`] such entries (a handler that sends thousands of messages within
/// its machine) the rest go to a heap. A pop takes the least of the two vectors' last entries
/// and the heap's first, so the order is exactly (time, key, insertion).
pub(crate) struct EventQueue<E, L = ()> {
    /// Later events, by time; each bucket unsorted until its time comes.
    later: BTreeMap<u64, Vec<Entry>>,
    /// The bucket pushes went to last, kept out of `later` while pushes keep coming for its time
    /// (a burst of timers set at one instant for one instant), so that the burst costs one map
    /// look-up, not one each.
    staged: Option<(u64, Vec<Entry>)>,
    /// The bucket of the current instant, sorted so that its next entry is last.
    current: Vec<Entry>,
    /// Events pushed for the current instant while it runs, sorted the same way (one pushed for
    /// an earlier time is due now: time never goes back).
    fresh: Vec<Entry>,
    /// Events pushed for the current instant while `fresh` is full, least first.
    overflow: BinaryHeap<Reverse<Entry>>,
    /// The current instant: the time of the last pop.
    now: u64,
    /// Emptied buckets, kept for reuse.
    spare: Vec<Vec<Entry>>,
    /// Scratch space for ordering a bucket (see [`order_bucket`]), kept for reuse.
    scratch: Vec<Entry>,
    bins: Vec<u32>,
    events: Vec<Option<E>>,
    free: Vec<usize>,
    /// Light events: plain data, with nothing to drop, so that one is written into its slot
    /// field by field and read back the same way (no drop of the slot's old value, no copy of a
    /// whole event through the stack).
    lights: Vec<L>,
    free_lights: Vec<usize>,
    next_seq: u64,
    len: usize,
}

impl<E, L: Copy> EventQueue<E, L> {
    pub(crate) fn new() -> Self {
        EventQueue {
            later: BTreeMap::new(),
            staged: None,
            current: Vec::new(),
            fresh: Vec::new(),
            overflow: BinaryHeap::new(),
            now: 0,
            spare: Vec::new(),
            scratch: Vec::new(),
            bins: Vec::new(),
            events: Vec::new(),
            free: Vec::new(),
            lights: Vec::new(),
            free_lights: Vec::new(),
            next_seq: 0,
            len: 0,
        }
    }

    #[inline(always)]
    pub(crate) fn push(&mut self, due: Due, event: E) {
        let slot = put_in_slab(&mut self.events, &mut self.free, Some(event));
        self.insert(due, slot as u64);
    }

    /// Queues a light event: one that is plain data ([`Copy`]), kept in a slab of its own.
    #[inline(always)]
    pub(crate) fn push_light(&mut self, due: Due, light: L) {
        let slot = put_in_slab(&mut self.lights, &mut self.free_lights, light);
        self.insert(due, slot as u64 | LIGHT);
    }

    /// Queues a small value (below 2^62) that needs no slab: the entry carries it. Timers use
    /// it, so that a timer's firing touches no slab line that went cold while it waited.
    pub(crate) fn push_direct(&mut self, due: Due, value: u64) {
        debug_assert!(value < LIGHT, "direct values are below 2^62");
        self.insert(due, value | DIRECT);
    }

    /// Files an entry for `target` (a slab index, or a value or light index with its mark),
    /// due at `due`, under the next insertion number.
    #[inline(always)]
    fn insert(&mut self, due: Due, target: u64) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let entry = Entry { key: due.key, seq, target };
        self.len += 1;
        if due.micros <= self.now {
            // Greatest first: the entry goes after every entry that sorts above it, before the
            // rest (which all run before it). An entry that runs last goes to the front.
            // Its insertion number is above every other's, so it sorts above every entry of its
            // own key: comparing keys alone finds its place.
            if self.fresh.len() >= FRESH_MAX {
                return self.overflow.push(Reverse(entry));
            }
            self.fresh_insert(entry);
        } else {
            match &mut self.staged {
                Some((micros, bucket)) if *micros == due.micros => bucket.push(entry),
                _ => {
                    // The new bucket goes in place first and takes the entry there: pushed to
                    // on the stack, it was read back in other sizes than written, a stall on
                    // every message between machines.
                    self.unstage();
                    let bucket = self.spare.pop().unwrap_or_default();
                    self.staged.insert((due.micros, bucket)).1.push(entry);
                }
            }
        }
    }

    /// Puts `entry` in its place in `fresh`, found from the end, where the entries that run
    /// next are: it goes last and moves up past each entry of a key no greater than its own.
    /// Those are the entries that run before it, few on average (a fresh entry runs soon after
    /// it is pushed, and more than half of them run next, moving past none), where a binary
    /// search from the middle takes a chain of dependent loads every time.
    #[inline(always)]
    fn fresh_insert(&mut self, entry: Entry) {
        let fresh = &mut self.fresh;
        let mut at = fresh.len();
        fresh.push(entry);
        while at > 0 && fresh[at - 1].key <= entry.key {
            fresh[at] = fresh[at - 1];
            at -= 1;
        }
        fresh[at] = entry;
    }

    /// Moves the staged bucket into `later`.
    fn unstage(&mut self) {
        if let Some((micros, mut bucket)) = self.staged.take() {
            match self.later.get_mut(&micros) {
                Some(existing) => {
                    existing.append(&mut bucket);
                    self.spare.push(bucket);
                }
                None => {
                    self.later.insert(micros, bucket);
                }
            }
        }
    }

    /// The time of the next event, if any.
    pub(crate) fn peek_micros(&self) -> Option<u64> {
        if !self.current.is_empty() || !self.fresh.is_empty() || !self.overflow.is_empty() {
            return Some(self.now);
        }
        let later = self.later.keys().next().copied();
        let staged = self.staged.as_ref().map(|(micros, _)| *micros);
        match (later, staged) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Moves on to the next instant that has events, if it is due by `until` (inclusive),
    /// ordering its bucket; `false` if there is none.
    #[inline(never)]
    fn next_instant(&mut self, until: Option<u64>) -> bool {
        self.unstage();
        match self.later.first_key_value() {
            Some((&micros, _)) if until.map_or(true, |u| micros <= u) => {}
            _ => return false,
        }
        let Some((micros, mut bucket)) = self.later.pop_first() else { return false };
        self.now = micros;
        // One instant: order by key, then insertion, the next one last.
        order_bucket(&mut bucket, &mut self.scratch, &mut self.bins);
        self.spare.push(std::mem::replace(&mut self.current, bucket));
        true
    }

    /// The next event, whenever it is due.
    #[cfg(test)]
    pub(crate) fn pop(&mut self) -> Option<(Due, Popped<L>)> {
        self.pop_by(None)
    }

    /// [`EventQueue::pop`], if the next event is due by `until` (inclusive; the current instant
    /// always is).
    #[inline(always)]
    pub(crate) fn pop_by(&mut self, until: Option<u64>) -> Option<(Due, Popped<L>)> {
        if self.current.is_empty() && self.fresh.is_empty() && self.overflow.is_empty() && !self.next_instant(until) {
            return None;
        }
        let entry = if self.overflow.is_empty() {
            let take_fresh = match (self.current.last(), self.fresh.last()) {
                (Some(c), Some(f)) => f.order() < c.order(),
                (c, _) => c.is_none(),
            };
            if take_fresh {
                self.fresh.pop()?
            } else {
                self.current.pop()?
            }
        } else {
            self.pop_with_overflow()?
        };
        self.len -= 1;
        let due = Due { micros: self.now, key: entry.key };
        if entry.target & DIRECT != 0 {
            return Some((due, Popped::Direct(entry.target & !DIRECT)));
        }
        if entry.target & LIGHT != 0 {
            let slot = (entry.target & !LIGHT) as usize;
            self.free_lights.push(slot);
            return Some((due, Popped::Light(*self.lights.get(slot)?)));
        }
        Some((due, Popped::Event(entry.target as usize)))
    }

    /// The event in `slot`, as [`Popped::Event`] named it; its slot is free from now on.
    #[inline(always)]
    pub(crate) fn take_event(&mut self, slot: usize) -> Option<E> {
        let event = self.events.get_mut(slot)?.take()?;
        self.free.push(slot);
        Some(event)
    }

    /// The least of the current bucket's, the fresh vector's and the overflow's next entries.
    #[inline(never)]
    fn pop_with_overflow(&mut self) -> Option<Entry> {
        let least = [self.current.last(), self.fresh.last(), self.overflow.peek().map(|r| &r.0)]
            .into_iter()
            .enumerate()
            .filter_map(|(from, entry)| entry.map(|e| (e.order(), from)))
            .min()?;
        match least.1 {
            0 => self.current.pop(),
            1 => self.fresh.pop(),
            _ => self.overflow.pop().map(|r| r.0),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn clear(&mut self) -> Vec<E> {
        self.later.clear();
        self.staged = None;
        self.current.clear();
        self.fresh.clear();
        self.overflow.clear();
        self.free.clear();
        self.lights.clear();
        self.free_lights.clear();
        self.len = 0;
        self.events.drain(..).flatten().collect()
    }
}

/// Below this many entries a bucket is ordered by insertion sort alone.
const SMALL_BUCKET: usize = 16;

/// Orders `bucket` by (key, insertion number), greatest first, so that the next entry to run is
/// last.
///
/// Keys drawn from the scheduler's stream are spread evenly over 64 bits, so the entries are
/// first dealt into about as many bins as there are entries by their keys' top bits (a counting
/// sort, two passes); entries still out of order then share a bin, of one or two entries on
/// average, and an insertion sort finishes the job. That costs a few instructions per entry where
/// a comparison sort costs a few per comparison. Keys that are not spread (a burst on one link
/// between machines shares one key) make bins large, and the insertion sort then gives way to a
/// comparison sort: the order is the same either way.
fn order_bucket(bucket: &mut Vec<Entry>, scratch: &mut Vec<Entry>, bins: &mut Vec<u32>) {
    let n = bucket.len();
    if n <= SMALL_BUCKET {
        insertion_sort_descending(bucket);
        return;
    }
    // 2^bits bins, at least as many as entries (at most 2^16: a bigger bucket has bigger bins).
    let bits = (usize::BITS - (n - 1).leading_zeros()).min(16);
    let shift = 64 - bits;
    let top = (1usize << bits) - 1;
    // Bins are numbered from the greatest keys down, so that they come out greatest first.
    let bin = |e: &Entry| top - (e.key >> shift) as usize;
    bins.clear();
    bins.resize(top + 2, 0);
    for e in bucket.iter() {
        bins[bin(e) + 1] += 1;
    }
    for i in 1..bins.len() {
        bins[i] += bins[i - 1];
    }
    // Every place below `n` is written by the deal; only a scratch too short is filled first.
    if scratch.len() < n {
        scratch.resize(n, Entry { key: 0, seq: 0, target: 0 });
    }
    scratch.truncate(n);
    for e in bucket.iter() {
        let at = &mut bins[bin(e)];
        scratch[*at as usize] = *e;
        *at += 1;
    }
    // Entries out of order now sit within one bin: one insertion sort puts them right, in about
    // one step per entry, unless many keys share a bin, when it gives way to a comparison sort.
    if !insertion_sort_descending_bounded(scratch, 4 * n) {
        scratch.sort_unstable_by_key(|e| std::cmp::Reverse((e.key, e.seq)));
    }
    std::mem::swap(bucket, scratch);
}

/// Puts `value` in a free slot of `slab` (the last freed one) or a new one at its end, and gives
/// the slot's index.
#[inline(always)]
fn put_in_slab<T>(slab: &mut Vec<T>, free: &mut Vec<usize>, value: T) -> usize {
    match free.pop() {
        Some(slot) => {
            slab[slot] = value;
            slot
        }
        None => {
            slab.push(value);
            slab.len() - 1
        }
    }
}

/// Sorts a few entries by (key, insertion number), greatest first.
fn insertion_sort_descending(run: &mut [Entry]) {
    insertion_sort_descending_bounded(run, usize::MAX);
}

/// [`insertion_sort_descending`], giving up (`false`, the entries then in some order) once it
/// has moved entries `budget` places in all.
fn insertion_sort_descending_bounded(run: &mut [Entry], mut budget: usize) -> bool {
    for i in 1..run.len() {
        let e = run[i];
        let mut j = i;
        while j > 0 && (run[j - 1].key, run[j - 1].seq) < (e.key, e.seq) {
            run[j] = run[j - 1];
            j -= 1;
        }
        run[j] = e;
        budget = match budget.checked_sub(i - j) {
            Some(left) => left,
            None => return false,
        };
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    impl<E, L: Copy> EventQueue<E, L> {
        fn pop_event(&mut self) -> Option<(Due, E)> {
            match self.pop()? {
                (due, Popped::Event(slot)) => Some((due, self.take_event(slot)?)),
                (_, Popped::Direct(_) | Popped::Light(_)) => None,
            }
        }
    }

    impl EventQueue<u64, u64> {
        /// The next entry, whatever was pushed, as (time, key, value), if due by `until`.
        fn pop_value(&mut self, until: Option<u64>) -> Option<(u64, u64, u64)> {
            let (due, popped) = self.pop_by(until)?;
            let value = match popped {
                Popped::Event(slot) => self.take_event(slot)?,
                Popped::Direct(v) | Popped::Light(v) => v,
            };
            Some((due.micros, due.key, value))
        }
    }

    /// Buckets of every size up to past the point where bins are used, with keys spread, keys
    /// bunched into a few values, and keys all equal: the order is always (key, insertion). The
    /// scratch space is shared, as in a queue, and sizes go down as well as up, so a scratch
    /// longer than its bucket (left over from a bigger one) is used too.
    #[test]
    fn buckets_are_ordered_by_key_then_insertion_whatever_their_keys() {
        let mut rng = crate::rng::DetRng::from_seed(11);
        let (mut scratch, mut bins) = (Vec::new(), Vec::new());
        for n in (0..70).chain([257, 1000, 5000, 3000, 40, 17, 100]) {
            for keys in 0..4u64 {
                let mut bucket: Vec<Entry> = (0..n as u64)
                    .map(|seq| {
                        let key = match keys {
                            0 => rng.next_u64(),
                            1 => rng.below(3) << 62,
                            2 => 42,
                            _ => rng.next_u64() >> 60,
                        };
                        Entry { key, seq, target: seq }
                    })
                    .collect();
                let mut expected = bucket.clone();
                expected.sort_by_key(|e| std::cmp::Reverse((e.key, e.seq)));
                order_bucket(&mut bucket, &mut scratch, &mut bins);
                assert!(bucket == expected, "a bucket of {n} entries with keys of kind {keys} is out of order");
            }
        }
    }

    #[test]
    fn direct_values_interleave_with_events_in_order() {
        let mut q: EventQueue<_, u64> = EventQueue::new();
        q.push(Due { micros: 2, key: 0 }, "event");
        q.push_direct(Due { micros: 1, key: 0 }, 77);
        q.push_direct(Due { micros: 3, key: 0 }, 99);
        assert!(matches!(q.pop(), Some((_, Popped::Direct(77)))));
        assert_eq!(q.pop_event().map(|(_, e)| e), Some("event"));
        assert!(matches!(q.pop(), Some((_, Popped::Direct(99)))));
        assert!(q.pop().is_none());
        assert_eq!(q.events.len(), 1, "direct values took no slab slot");
    }

    #[test]
    fn light_events_interleave_with_the_others_and_reuse_their_slots() {
        let mut q: EventQueue<&str, (u32, u64)> = EventQueue::new();
        for round in 0..3u64 {
            let at = round * 10;
            q.push_light(Due { micros: at + 2, key: 5 }, (1, round));
            q.push(Due { micros: at + 2, key: 5 }, "event");
            q.push_direct(Due { micros: at + 1, key: 0 }, 77);
            q.push_light(Due { micros: at + 2, key: 4 }, (2, round));
            assert!(matches!(q.pop(), Some((_, Popped::Direct(77)))));
            assert!(matches!(q.pop(), Some((_, Popped::Light((2, r)))) if r == round));
            assert!(matches!(q.pop(), Some((_, Popped::Light((1, r)))) if r == round));
            assert_eq!(q.pop_event().map(|(_, e)| e), Some("event"));
            assert!(q.pop().is_none());
        }
        assert_eq!((q.lights.len(), q.events.len()), (2, 1), "slots were reused");
    }

    #[test]
    fn pops_by_time_then_key_then_insertion() {
        let mut q: EventQueue<_, u64> = EventQueue::new();
        q.push(Due { micros: 5, key: 1 }, "late");
        q.push(Due { micros: 1, key: 9 }, "early-high-key");
        q.push(Due { micros: 1, key: 2 }, "early-low-key-first");
        q.push(Due { micros: 1, key: 2 }, "early-low-key-second");
        let order: Vec<_> = std::iter::from_fn(|| q.pop_event().map(|(_, e)| e)).collect();
        assert_eq!(order, ["early-low-key-first", "early-low-key-second", "early-high-key", "late"]);
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn events_due_now_and_later_pop_in_one_order() {
        let mut q: EventQueue<_, u64> = EventQueue::new();
        let mut rng = crate::rng::DetRng::from_seed(5);
        let mut popped = Vec::new();
        // Pushes at the current instant and later ones interleave with pops, as in a run.
        for round in 0..200u64 {
            let now = q.now;
            let at = if round % 3 == 0 { now } else { now + rng.below(5) };
            q.push(Due { micros: at, key: rng.below(4) }, round);
            if round % 2 == 1 {
                popped.push(q.pop_event().map(|(due, _)| due).unwrap());
            }
        }
        while let Some((due, _)) = q.pop_event() {
            popped.push(due);
        }
        assert_eq!(popped.len(), 200);
        assert!(popped.windows(2).all(|w| w[0].micros <= w[1].micros), "time never goes back");
    }

    /// The queue against a sorted reference: pushes (for now, for earlier, for later, with keys
    /// spread or shared, slab events and direct values) interleave with pops (some bounded by a
    /// time), and every pop gives the least (time, key, insertion) pending, or nothing if that is
    /// past the bound, with an event pushed for a time already past due at the current instant.
    #[test]
    fn pops_match_a_sorted_reference_whatever_the_mix_of_pushes() {
        use std::collections::BTreeSet;
        for seed in 0..40u64 {
            let mut rng = crate::rng::DetRng::from_seed(seed);
            let mut q: EventQueue<_, u64> = EventQueue::new();
            let mut reference = BTreeSet::new();
            let (mut now, mut seq) = (0u64, 0u64);
            for _ in 0..2000 {
                if rng.below(5) < 3 {
                    let micros = match rng.below(4) {
                        0 => now,
                        1 => now.saturating_sub(rng.below(3)),
                        _ => now + 1 + rng.below(6),
                    };
                    let key = if seed % 2 == 0 { rng.next_u64() } else { rng.below(3) };
                    let due = Due { micros, key };
                    match rng.below(3) {
                        0 => q.push(due, seq),
                        1 => q.push_direct(due, seq),
                        _ => q.push_light(due, seq),
                    }
                    reference.insert((micros.max(now), key, seq));
                    seq += 1;
                } else {
                    // Bounded by a time not before the current instant, as a run is.
                    let until = (rng.below(2) == 0).then(|| now + rng.below(4));
                    let expected = match reference.first() {
                        Some(&(micros, ..)) if until.map_or(true, |u| micros <= u) => reference.pop_first(),
                        _ => None,
                    };
                    let popped = q.pop_value(until);
                    assert_eq!(popped, expected, "seed {seed}, until {until:?}");
                    if let Some((micros, ..)) = expected {
                        now = micros;
                    }
                }
                assert_eq!(q.len(), reference.len(), "seed {seed}");
                assert_eq!(q.peek_micros(), reference.first().map(|e| e.0), "seed {seed}");
            }
            while let Some(expected) = reference.pop_first() {
                let popped = q.pop_value(None);
                assert_eq!(popped, Some(expected), "seed {seed}");
            }
            assert!(q.pop().is_none());
        }
    }

    /// A handler that sends thousands of messages within its machine pushes them all for the
    /// current instant: past the sorted vector's room they go to the heap, and the pops still
    /// come in (key, insertion) order, those of the current bucket, the vector and the heap
    /// interleaved.
    #[test]
    fn a_burst_for_the_current_instant_beyond_the_fresh_vector_pops_in_order() {
        use std::collections::BTreeSet;
        for seed in 0..4u64 {
            let mut rng = crate::rng::DetRng::from_seed(seed);
            let mut q: EventQueue<_, u64> = EventQueue::new();
            let mut reference = BTreeSet::new();
            // A bucket at time 7, the instant of the burst.
            for seq in 0..100u64 {
                let key = rng.next_u64();
                q.push(Due { micros: 7, key }, seq);
                reference.insert((7, key, seq));
            }
            let check = |q: &mut EventQueue<u64, u64>, reference: &mut BTreeSet<(u64, u64, u64)>| {
                let popped = q.pop_value(None);
                assert_eq!(popped, reference.pop_first(), "seed {seed}");
            };
            check(&mut q, &mut reference);
            for seq in 100..(100 + 8 * FRESH_MAX as u64) {
                let key = if seq % 3 == 0 { rng.below(4) } else { rng.next_u64() };
                q.push(Due { micros: 7, key }, seq);
                reference.insert((7, key, seq));
                if seq % 7 == 0 {
                    check(&mut q, &mut reference);
                }
            }
            assert!(q.overflow.len() > FRESH_MAX, "the burst went past the vector");
            while !reference.is_empty() {
                check(&mut q, &mut reference);
            }
            assert!(q.pop().is_none());
        }
    }

    #[test]
    fn slots_are_reused_and_events_kept_apart() {
        let mut q: EventQueue<_, u64> = EventQueue::new();
        for round in 0..3u64 {
            for i in 0..4u64 {
                q.push(Due { micros: round * 10 + i, key: 0 }, (round, i));
            }
            for i in 0..4u64 {
                assert_eq!(q.pop_event().map(|(_, e)| e), Some((round, i)));
            }
        }
        assert_eq!(q.events.len(), 4, "the slab did not grow past the most pending at once");
        q.push(Due { micros: 0, key: 0 }, (9, 9));
        assert_eq!(q.clear(), vec![(9, 9)]);
    }
}
