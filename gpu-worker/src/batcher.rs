//! Dynamic batching as text-embeddings-inference does it: tokenized inputs wait in one FIFO
//! queue; a batch is cut from its head under a token budget that counts padding (every
//! sequence in a batch is padded to the longest, so the cost is `longest × count`), and it
//! leaves either when it is full or when its oldest input has waited `max_wait`. A second
//! budget bounds the attention scores (`count × longest²`): on the CPU, a batch of long
//! inputs whose attention tensors outgrow the caches runs slower per token than two smaller
//! batches (benches/README.md, "Bulk ingest through the worker"). A bounded
//! queue refuses work it cannot hold (the HTTP layer turns that into 429).
//!
//! [`BatchQueue`] is the policy with no threads or clocks of its own (tested below);
//! [`Batcher`] wraps it for the inference threads, which block in [`Batcher::next_batch`].

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// When a batch leaves the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchPolicy {
    /// Most padded tokens in one batch (`longest × count`).
    pub max_batch_tokens: usize,
    /// Most attention scores per head in one batch (`count × longest²`).
    pub max_batch_attention: usize,
    /// Most inputs in one batch.
    pub max_batch_size: usize,
    /// Longest time the oldest input waits for the batch to fill.
    pub max_wait: Duration,
}

/// Tokens a batch costs once every sequence is padded to the longest.
pub fn padded_tokens(longest: usize, count: usize) -> usize {
    longest * count
}

/// Attention scores per head of a batch: each padded sequence attends to all of itself.
pub fn attention_scores(longest: usize, count: usize) -> usize {
    count.saturating_mul(longest.saturating_mul(longest))
}

impl BatchPolicy {
    /// Whether `count` inputs padded to `longest` stay within both budgets.
    fn fits(&self, longest: usize, count: usize) -> bool {
        padded_tokens(longest, count) <= self.max_batch_tokens
            && attention_scores(longest, count) <= self.max_batch_attention
    }
}

/// One input waiting in the queue.
#[derive(Debug)]
pub struct Queued<T> {
    /// Its length in tokens, `[CLS]`/`[SEP]` included.
    pub tokens: usize,
    pub enqueued: Instant,
    pub item: T,
}

/// The queue could not take the inputs; nothing of them was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull {
    /// Inputs waiting when the request was refused.
    pub depth: usize,
    pub capacity: usize,
}

/// What the queue has for an idle runner.
#[derive(Debug)]
pub enum Next<T> {
    Batch(Vec<Queued<T>>),
    /// Inputs are waiting but the batch is neither full nor old enough before this instant.
    WaitUntil(Instant),
    Empty,
}

/// The FIFO queue and batch formation, with the time passed in.
#[derive(Debug)]
pub struct BatchQueue<T> {
    entries: VecDeque<Queued<T>>,
    tokens: usize,
    capacity: usize,
}

impl<T> BatchQueue<T> {
    /// A queue holding at most `capacity` inputs.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: VecDeque::new(),
            tokens: 0,
            capacity: capacity.max(1),
        }
    }

    pub fn depth(&self) -> usize {
        self.entries.len()
    }

    /// Tokens of all waiting inputs (unpadded).
    pub fn tokens(&self) -> usize {
        self.tokens
    }

    /// Queues all of `items` (`(tokens, item)`, kept in order) or none of them.
    pub fn push_all(&mut self, items: Vec<(usize, T)>, now: Instant) -> Result<(), QueueFull> {
        if self.entries.len() + items.len() > self.capacity {
            return Err(QueueFull {
                depth: self.entries.len(),
                capacity: self.capacity,
            });
        }
        for (tokens, item) in items {
            self.tokens += tokens;
            self.entries.push_back(Queued {
                tokens,
                enqueued: now,
                item,
            });
        }
        Ok(())
    }

    /// How many inputs from the head fit one batch, and whether the batch is full (the next
    /// input would break the budget, or the size limit is reached).
    fn head_batch(&self, policy: &BatchPolicy) -> (usize, bool) {
        let mut longest = 0;
        let mut count = 0;
        for entry in &self.entries {
            if count == policy.max_batch_size {
                return (count, true);
            }
            let candidate = longest.max(entry.tokens);
            // The first input always goes, even alone over budget: it must run somehow.
            if count > 0 && !policy.fits(candidate, count + 1) {
                return (count, true);
            }
            longest = candidate;
            count += 1;
        }
        let full = count == policy.max_batch_size
            || padded_tokens(longest, count) >= policy.max_batch_tokens
            || attention_scores(longest, count) >= policy.max_batch_attention;
        (count, full)
    }

    /// Cuts the next batch if one is due at `now`.
    pub fn next(&mut self, policy: &BatchPolicy, now: Instant) -> Next<T> {
        let Some(oldest) = self.entries.front() else {
            return Next::Empty;
        };
        let due = oldest.enqueued + policy.max_wait;
        let (count, full) = self.head_batch(policy);
        if !full && now < due {
            return Next::WaitUntil(due);
        }
        let batch: Vec<Queued<T>> = self.entries.drain(..count).collect();
        self.tokens -= batch.iter().map(|e| e.tokens).sum::<usize>();
        Next::Batch(batch)
    }
}

/// The queue shared by request handlers (producers) and inference threads (consumers).
#[derive(Debug)]
pub struct Batcher<T> {
    policy: BatchPolicy,
    state: Mutex<State<T>>,
    ready: Condvar,
}

#[derive(Debug)]
struct State<T> {
    queue: BatchQueue<T>,
    closed: bool,
}

impl<T> Batcher<T> {
    pub fn new(policy: BatchPolicy, capacity: usize) -> Self {
        Self {
            policy,
            state: Mutex::new(State {
                queue: BatchQueue::new(capacity),
                closed: false,
            }),
            ready: Condvar::new(),
        }
    }

    pub fn policy(&self) -> &BatchPolicy {
        &self.policy
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues every item or none; returns the queue's depth and tokens afterwards.
    pub fn submit(&self, items: Vec<(usize, T)>) -> Result<(usize, usize), QueueFull> {
        let mut state = self.lock();
        state.queue.push_all(items, Instant::now())?;
        let depth = (state.queue.depth(), state.queue.tokens());
        drop(state);
        self.ready.notify_all();
        Ok(depth)
    }

    /// Depth and tokens of the queue now.
    pub fn depth(&self) -> (usize, usize) {
        let state = self.lock();
        (state.queue.depth(), state.queue.tokens())
    }

    /// Blocks until a batch is due; `None` once [`close`](Self::close)d and empty.
    pub fn next_batch(&self) -> Option<Vec<Queued<T>>> {
        let mut state = self.lock();
        loop {
            let now = Instant::now();
            match state.queue.next(&self.policy, now) {
                Next::Batch(batch) => {
                    // Another runner may take the rest of the queue at once.
                    if state.queue.depth() > 0 {
                        self.ready.notify_one();
                    }
                    return Some(batch);
                }
                Next::WaitUntil(due) => {
                    state = self
                        .ready
                        .wait_timeout(state, due.saturating_duration_since(now))
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
                Next::Empty if state.closed => return None,
                Next::Empty => {
                    state = self.ready.wait(state).unwrap_or_else(|p| p.into_inner());
                }
            }
        }
    }

    /// Lets runners finish what is queued and then stop.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn policy(tokens: usize, size: usize, wait_ms: u64) -> BatchPolicy {
        BatchPolicy {
            max_batch_tokens: tokens,
            max_batch_attention: usize::MAX,
            max_batch_size: size,
            max_wait: Duration::from_millis(wait_ms),
        }
    }

    fn queue(lengths: &[usize], now: Instant) -> BatchQueue<usize> {
        let mut q = BatchQueue::new(1000);
        q.push_all(
            lengths
                .iter()
                .copied()
                .enumerate()
                .map(|(i, l)| (l, i))
                .collect(),
            now,
        )
        .unwrap();
        q
    }

    fn items(next: Next<usize>) -> Vec<usize> {
        match next {
            Next::Batch(b) => b.into_iter().map(|e| e.item).collect(),
            other => panic!("expected a batch, got {other:?}"),
        }
    }

    #[test]
    fn budget_counts_padding_to_the_longest() {
        let t0 = Instant::now();
        // Four inputs of 10 tokens cost 40; a 100-token one makes five cost 500, over 256.
        let mut q = queue(&[10, 10, 10, 10, 100, 10], t0);
        let p = policy(256, 64, 5);
        assert_eq!(
            items(q.next(&p, t0)),
            vec![0, 1, 2, 3],
            "full: the next input breaks the budget"
        );
        // Alone, 100 tokens fit; with the 10 after it 2 × 100 = 200 still fits; nothing more.
        assert_eq!(q.depth(), 2);
        assert_eq!(q.tokens(), 110);
        assert!(
            matches!(q.next(&p, t0), Next::WaitUntil(_)),
            "not full, not old: waits"
        );
        assert_eq!(items(q.next(&p, t0 + Duration::from_millis(5))), vec![4, 5]);
        assert!(matches!(q.next(&p, t0), Next::Empty));
        assert_eq!(q.tokens(), 0);
    }

    #[test]
    fn long_inputs_are_bounded_by_their_attention_scores() {
        let t0 = Instant::now();
        let p = BatchPolicy {
            max_batch_attention: 2 * 256 * 256,
            ..policy(2048, 8, 0)
        };
        // Short inputs: 8 × 20² is far under the bound; the size limit cuts the batch.
        let mut q = queue(&[20; 9], t0);
        assert_eq!(items(q.next(&p, t0)).len(), 8);
        // Inputs of 250 tokens: two fit (2 × 62,500), a third would not, though
        // 3 × 250 = 750 padded tokens is well within 2,048.
        let mut q = queue(&[250, 250, 250], t0);
        assert_eq!(items(q.next(&p, t0)), vec![0, 1]);
        assert_eq!(items(q.next(&p, t0)), vec![2]);
        // 128 tokens: 8 × 128² is exactly the bound.
        let mut q = queue(&[128; 8], t0);
        assert_eq!(items(q.next(&p, t0)).len(), 8);
    }

    #[test]
    fn padding_aware_means_longest_times_count_not_the_sum() {
        let t0 = Instant::now();
        // Sum of tokens 12 + 12 + 200 = 224 fits 256, but padded it is 3 × 200 = 600.
        let mut q = queue(&[12, 12, 200], t0);
        assert_eq!(items(q.next(&policy(256, 64, 0), t0)), vec![0, 1]);
        assert_eq!(items(q.next(&policy(256, 64, 0), t0)), vec![2]);
    }

    #[test]
    fn size_limit_cuts_batches() {
        let t0 = Instant::now();
        let mut q = queue(&[5; 10], t0);
        let p = policy(100_000, 4, 1000);
        assert_eq!(items(q.next(&p, t0)), vec![0, 1, 2, 3]);
        assert_eq!(items(q.next(&p, t0)), vec![4, 5, 6, 7]);
        assert_eq!(
            match q.next(&p, t0) {
                Next::WaitUntil(at) => at,
                other => panic!("{other:?}"),
            },
            t0 + Duration::from_millis(1000)
        );
    }

    #[test]
    fn an_input_over_budget_still_runs_alone() {
        let t0 = Instant::now();
        let mut q = queue(&[256, 256], t0);
        let p = policy(200, 64, 0);
        assert_eq!(items(q.next(&p, t0)), vec![0]);
        assert_eq!(items(q.next(&p, t0)), vec![1]);
    }

    #[test]
    fn max_wait_releases_a_partial_batch_from_the_oldest_input() {
        let t0 = Instant::now();
        let mut q = BatchQueue::new(10);
        q.push_all(vec![(10, 'a')], t0).unwrap();
        q.push_all(vec![(10, 'b')], t0 + Duration::from_millis(3))
            .unwrap();
        let p = policy(1000, 64, 5);
        match q.next(&p, t0 + Duration::from_millis(4)) {
            Next::WaitUntil(at) => assert_eq!(at, t0 + Duration::from_millis(5)),
            other => panic!("{other:?}"),
        }
        // Due by the oldest input: the younger one rides along.
        match q.next(&p, t0 + Duration::from_millis(5)) {
            Next::Batch(b) => assert_eq!(b.iter().map(|e| e.item).collect::<String>(), "ab"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn order_is_first_in_first_out_across_requests() {
        let t0 = Instant::now();
        let mut q = BatchQueue::new(100);
        q.push_all(vec![(3, 0), (3, 1), (3, 2)], t0).unwrap();
        q.push_all(vec![(3, 3)], t0).unwrap();
        q.push_all(vec![(3, 4), (3, 5)], t0).unwrap();
        let p = policy(9, 64, 0);
        let mut seen = Vec::new();
        while let Next::Batch(b) = q.next(&p, t0) {
            assert!(b.len() <= 3);
            seen.extend(b.into_iter().map(|e| e.item));
        }
        assert_eq!(seen, vec![0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn a_full_queue_refuses_the_whole_request() {
        let t0 = Instant::now();
        let mut q = BatchQueue::new(4);
        q.push_all(vec![(1, 0), (1, 1), (1, 2)], t0).unwrap();
        let err = q.push_all(vec![(1, 3), (1, 4)], t0).unwrap_err();
        assert_eq!(
            err,
            QueueFull {
                depth: 3,
                capacity: 4
            }
        );
        assert_eq!(q.depth(), 3, "nothing of the refused request was queued");
        q.push_all(vec![(1, 3)], t0).unwrap();
    }

    #[test]
    fn runners_get_every_item_once_and_stop_when_closed() {
        let batcher = Arc::new(Batcher::new(policy(64, 8, 1), 10_000));
        let runners: Vec<_> = (0..3)
            .map(|_| {
                let b = batcher.clone();
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    while let Some(batch) = b.next_batch() {
                        assert!(batch.len() <= 8);
                        let longest = batch.iter().map(|e| e.tokens).max().unwrap();
                        assert!(batch.len() == 1 || padded_tokens(longest, batch.len()) <= 64);
                        got.extend(batch.into_iter().map(|e| e.item));
                    }
                    got
                })
            })
            .collect();
        for request in 0..100 {
            let items = (0..5)
                .map(|i| (1 + (request * 7 + i) % 30, request * 5 + i))
                .collect();
            batcher.submit(items).unwrap();
        }
        batcher.close();
        let mut all: Vec<usize> = runners
            .into_iter()
            .flat_map(|r| r.join().unwrap())
            .collect();
        all.sort();
        assert_eq!(all, (0..500).collect::<Vec<_>>());
        assert_eq!(batcher.depth(), (0, 0));
    }

    #[test]
    fn a_waiting_runner_wakes_after_max_wait() {
        let batcher = Arc::new(Batcher::new(policy(10_000, 64, 30), 100));
        let b = batcher.clone();
        let runner = std::thread::spawn(move || {
            let batch = b.next_batch().unwrap();
            (batch.len(), Instant::now())
        });
        std::thread::sleep(Duration::from_millis(20));
        let submitted = Instant::now();
        batcher.submit(vec![(5, 1), (5, 2)]).unwrap();
        let (n, at) = runner.join().unwrap();
        assert_eq!(n, 2);
        let waited = at - submitted;
        assert!(
            waited >= Duration::from_millis(29),
            "left after {waited:?}, before max_wait"
        );
        assert!(waited < Duration::from_secs(2), "left after {waited:?}");
    }
}
