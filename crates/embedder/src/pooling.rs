//! From per-token hidden states to one unit vector: sentence-transformers' `Pooling`
//! (mean over the attention mask) and `Normalize` (L2) modules.

/// Mean of the rows of `hidden` (row-major, `mask.len()` rows of `dim` values) whose mask is
/// set. With no row set (never the case for the model: `[CLS]` and `[SEP]` are always there)
/// the result is zeros, as sentence-transformers' clamp of the count to 1e-9 gives.
pub fn mean_pool(hidden: &[f32], dim: usize, mask: &[bool]) -> Vec<f32> {
    let mut sum = vec![0f32; dim];
    let mut count = 0usize;
    for (row, _) in hidden
        .chunks_exact(dim)
        .zip(mask)
        .filter(|(_, keep)| **keep)
    {
        for (s, h) in sum.iter_mut().zip(row) {
            *s += h;
        }
        count += 1;
    }
    if count > 0 {
        let n = count as f32;
        for s in &mut sum {
            *s /= n;
        }
    }
    sum
}

/// Scales `v` to unit length, like `torch.nn.functional.normalize` (norm clamped to 1e-12,
/// so a zero vector stays zero instead of becoming NaN).
pub fn l2_normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    for x in v {
        *x /= norm;
    }
}

/// Cosine similarity, accumulated in f64 so tests can tell 0.99999 from 1. Zero when either
/// vector is zero or the lengths differ.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return 0.0;
    }
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    (dot / (na.sqrt() * nb.sqrt())) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_pool_skips_masked_rows() {
        // Three tokens of dimension 2; the last is padding with large values that must not leak.
        let hidden = [1.0, 2.0, 3.0, 6.0, 100.0, -100.0];
        assert_eq!(mean_pool(&hidden, 2, &[true, true, false]), vec![2.0, 4.0]);
        assert_eq!(mean_pool(&hidden, 2, &[false, true, false]), vec![3.0, 6.0]);
        assert_eq!(
            mean_pool(&hidden, 2, &[true, true, true]),
            vec![104.0 / 3.0, -92.0 / 3.0]
        );
    }

    #[test]
    fn mean_pool_with_nothing_to_pool_is_zero() {
        assert_eq!(mean_pool(&[5.0, 5.0], 2, &[false]), vec![0.0, 0.0]);
        assert_eq!(mean_pool(&[], 3, &[]), vec![0.0; 3]);
    }

    #[test]
    fn normalised_vectors_have_unit_length() {
        let mut v = vec![3.0, 4.0];
        l2_normalize(&mut v);
        assert_eq!(v, vec![0.6, 0.8]);
        let mut tiny = vec![1e-30f32; 384];
        l2_normalize(&mut tiny);
        assert!(tiny.iter().all(|x| x.is_finite()));
        let mut zero = vec![0.0; 4];
        l2_normalize(&mut zero);
        assert_eq!(zero, vec![0.0; 4]);
    }

    #[test]
    fn cosine_of_known_vectors() {
        assert!((cosine(&[1.0, 0.0], &[1.0, 0.0]) - 1.0).abs() < 1e-7);
        assert!(cosine(&[1.0, 0.0], &[0.0, 2.0]).abs() < 1e-7);
        assert!((cosine(&[1.0, 1.0], &[-2.0, -2.0]) + 1.0).abs() < 1e-7);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
        assert_eq!(cosine(&[1.0], &[1.0, 0.0]), 0.0);
    }
}
