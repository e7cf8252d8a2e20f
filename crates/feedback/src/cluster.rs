//! Question clustering: agglomerative, average linkage, on cosine distance, cut at a
//! distance threshold.
//!
//! Why this algorithm: the number of topics is not known in advance (k-means would need k),
//! a threshold on cosine distance has a meaning a reader can check ("questions closer than
//! 0.35 belong together"), and average linkage avoids single linkage's chaining of loosely
//! related questions into one blob. It runs with the nearest-neighbour-chain algorithm in
//! O(n²) time and memory (average linkage is reducible, so the chain finds the same
//! dendrogram as the naive O(n³) loop); callers cap n (see [`MAX_POINTS`]).

/// The most points clustered at once (a 2 000 × 2 000 f32 matrix is 16 MB).
pub const MAX_POINTS: usize = 2_000;
/// The default cut: questions whose average cosine distance is at most this merge.
pub const DEFAULT_THRESHOLD: f32 = 0.35;

/// One flat cluster: indices into the input, and the medoid (the member with the highest
/// mean cosine similarity to the others; the representative question).
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    pub members: Vec<usize>,
    pub medoid: usize,
}

fn cosine_distance(a: &[f32], b: &[f32]) -> f32 {
    let (mut dot, mut na, mut nb) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        return 1.0;
    }
    (1.0 - dot / (na.sqrt() * nb.sqrt())).clamp(0.0, 2.0)
}

/// Clusters `points` (equal-length embeddings) at `threshold`. Clusters come largest first,
/// members in input order; ties keep the order of their first member.
pub fn cluster(points: &[Vec<f32>], threshold: f32) -> Vec<Cluster> {
    let n = points.len();
    if n == 0 {
        return Vec::new();
    }
    let dist: Vec<Vec<f32>> = (0..n)
        .map(|i| {
            (0..n)
                .map(|j| {
                    if i == j {
                        0.0
                    } else {
                        cosine_distance(&points[i], &points[j])
                    }
                })
                .collect()
        })
        .collect();
    let merges = nn_chain(dist.clone());
    let mut sets = UnionFind::new(n);
    for (a, b, h) in merges {
        // A reducible linkage's dendrogram is monotone: every merge at or below the cut only
        // joins clusters formed at or below it, so union-find over them is the flat cut.
        if h <= threshold {
            sets.union(a, b);
        }
    }
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut slot = vec![usize::MAX; n];
    for i in 0..n {
        let root = sets.find(i);
        if slot[root] == usize::MAX {
            slot[root] = groups.len();
            groups.push(Vec::new());
        }
        groups[slot[root]].push(i);
    }
    groups.sort_by(|a, b| b.len().cmp(&a.len()).then(a[0].cmp(&b[0])));
    groups
        .into_iter()
        .map(|members| Cluster {
            medoid: medoid(&members, &dist),
            members,
        })
        .collect()
}

fn medoid(members: &[usize], dist: &[Vec<f32>]) -> usize {
    let total = |i: usize| members.iter().map(|&j| dist[i][j]).sum::<f32>();
    *members
        .iter()
        .min_by(|&&a, &&b| total(a).total_cmp(&total(b)))
        .expect("clusters are not empty")
}

/// The nearest-neighbour chain: merges `(a, b, height)` where the merged cluster keeps
/// index `a`. Distances are updated with the Lance–Williams formula for average linkage.
fn nn_chain(mut dist: Vec<Vec<f32>>) -> Vec<(usize, usize, f32)> {
    let n = dist.len();
    let mut size = vec![1usize; n];
    let mut active = vec![true; n];
    let mut chain: Vec<usize> = Vec::with_capacity(n);
    let mut merges = Vec::with_capacity(n.saturating_sub(1));
    let mut remaining = n;
    while remaining > 1 {
        if chain.is_empty() {
            chain.push(
                active
                    .iter()
                    .position(|&a| a)
                    .expect("two or more clusters remain"),
            );
        }
        let (a, b) = loop {
            let a = *chain.last().expect("chain is not empty");
            let prev = chain.len().checked_sub(2).map(|i| chain[i]);
            // Start from the previous element so ties resolve towards it: the chain then
            // always ends in a reciprocal pair instead of cycling.
            let mut best = prev;
            let mut best_d = prev.map_or(f32::INFINITY, |p| dist[a][p]);
            for (c, &is_active) in active.iter().enumerate() {
                if is_active && c != a && dist[a][c] < best_d {
                    best = Some(c);
                    best_d = dist[a][c];
                }
            }
            let b = best.expect("another active cluster exists");
            if Some(b) == prev {
                chain.truncate(chain.len() - 2);
                break (a.min(b), a.max(b));
            }
            chain.push(b);
        };
        merges.push((a, b, dist[a][b]));
        let (sa, sb) = (size[a] as f32, size[b] as f32);
        for c in 0..n {
            if active[c] && c != a && c != b {
                let d = (sa * dist[a][c] + sb * dist[b][c]) / (sa + sb);
                dist[a][c] = d;
                dist[c][a] = d;
            }
        }
        active[b] = false;
        size[a] += size[b];
        remaining -= 1;
    }
    merges
}

struct UnionFind(Vec<usize>);

impl UnionFind {
    fn new(n: usize) -> Self {
        Self((0..n).collect())
    }

    fn find(&mut self, mut i: usize) -> usize {
        while self.0[i] != i {
            self.0[i] = self.0[self.0[i]];
            i = self.0[i];
        }
        i
    }

    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            self.0[ra.max(rb)] = ra.min(rb);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(angle_deg: f32) -> Vec<f32> {
        let r = angle_deg.to_radians();
        vec![r.cos(), r.sin()]
    }

    /// The naive O(n³) average-linkage loop: merge the closest pair while it is within the
    /// threshold. The NN-chain result must match it.
    fn naive(points: &[Vec<f32>], threshold: f32) -> Vec<Vec<usize>> {
        let mut clusters: Vec<Vec<usize>> = (0..points.len()).map(|i| vec![i]).collect();
        let avg = |a: &[usize], b: &[usize]| {
            a.iter()
                .flat_map(|&i| b.iter().map(move |&j| (i, j)))
                .map(|(i, j)| cosine_distance(&points[i], &points[j]))
                .sum::<f32>()
                / (a.len() * b.len()) as f32
        };
        loop {
            let mut best: Option<(usize, usize, f32)> = None;
            for i in 0..clusters.len() {
                for j in i + 1..clusters.len() {
                    let d = avg(&clusters[i], &clusters[j]);
                    if best.is_none_or(|(_, _, bd)| d < bd) {
                        best = Some((i, j, d));
                    }
                }
            }
            match best {
                Some((i, j, d)) if d <= threshold => {
                    let moved = clusters.remove(j);
                    clusters[i].extend(moved);
                    clusters[i].sort_unstable();
                }
                _ => break,
            }
        }
        let mut out: Vec<Vec<usize>> = clusters;
        out.sort();
        out
    }

    fn flat(clusters: &[Cluster]) -> Vec<Vec<usize>> {
        let mut out: Vec<Vec<usize>> = clusters.iter().map(|c| c.members.clone()).collect();
        out.sort();
        out
    }

    #[test]
    fn separates_topics_and_picks_the_middle_question() {
        // Two tight topics 90° apart; the middle of the first is its medoid.
        let points = vec![unit(0.0), unit(5.0), unit(10.0), unit(90.0), unit(95.0)];
        let c = cluster(&points, 0.1);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].members, vec![0, 1, 2]);
        assert_eq!(c[0].medoid, 1);
        assert_eq!(c[1].members, vec![3, 4]);
    }

    #[test]
    fn the_threshold_decides_granularity() {
        let points = vec![unit(0.0), unit(30.0), unit(60.0)];
        assert_eq!(cluster(&points, 0.01).len(), 3);
        assert_eq!(cluster(&points, 1.0).len(), 1);
        assert!(cluster(&[], 0.3).is_empty());
        assert_eq!(
            cluster(&[unit(1.0)], 0.3),
            vec![Cluster {
                members: vec![0],
                medoid: 0
            }]
        );
    }

    #[test]
    fn average_linkage_does_not_chain_like_single_linkage() {
        // Steps of 20° (distance 0.06): single linkage at 0.1 would join all seven; the
        // average distance from one end to the rest grows past the cut.
        let points: Vec<Vec<f32>> = (0..7).map(|i| unit(i as f32 * 20.0)).collect();
        let c = cluster(&points, 0.1);
        assert!(c.len() > 1, "{c:?}");
        assert_eq!(flat(&c), naive(&points, 0.1));
    }

    #[test]
    fn nn_chain_matches_the_naive_algorithm() {
        // Deterministic pseudo-random points in 8 dimensions, several thresholds.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % 10_000) as f32 / 10_000.0 - 0.5
        };
        for round in 0..5 {
            let points: Vec<Vec<f32>> = (0..25 + round * 5)
                .map(|_| (0..8).map(|_| next()).collect())
                .collect();
            for t in [0.3, 0.6, 0.9, 1.2] {
                assert_eq!(
                    flat(&cluster(&points, t)),
                    naive(&points, t),
                    "round {round} threshold {t}"
                );
            }
        }
    }

    #[test]
    fn a_zero_vector_stands_alone() {
        let points = vec![vec![0.0, 0.0], unit(0.0), unit(1.0)];
        let c = cluster(&points, 0.5);
        assert_eq!(flat(&c), vec![vec![0], vec![1, 2]]);
    }
}
