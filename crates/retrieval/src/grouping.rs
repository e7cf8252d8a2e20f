//! `group_by: "document"`: one result per document, at the rank of its best chunk.

use crate::fusion::FusedHit;

/// A document's best chunk and how many of its chunks were among the candidates.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentGroup<Id, Doc> {
    pub document: Doc,
    pub best: FusedHit<Id>,
    pub matched_chunks: usize,
}

/// Groups fused hits (best first) by document, keeping the first `k` documents in the
/// order of their best chunk. Hits whose document is unknown (deleted meanwhile) are
/// skipped.
pub fn group_by_document<Id: Clone, Doc: PartialEq + Clone>(
    hits: &[FusedHit<Id>],
    document_of: impl Fn(&Id) -> Option<Doc>,
    k: usize,
) -> Vec<DocumentGroup<Id, Doc>> {
    let mut groups: Vec<DocumentGroup<Id, Doc>> = Vec::new();
    for hit in hits {
        let Some(doc) = document_of(&hit.id) else {
            continue;
        };
        match groups.iter_mut().find(|g| g.document == doc) {
            Some(group) => group.matched_chunks += 1,
            None => groups.push(DocumentGroup {
                document: doc,
                best: hit.clone(),
                matched_chunks: 1,
            }),
        }
    }
    groups.truncate(k);
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fusion::{RankedList, reciprocal_rank_fusion};

    #[test]
    fn one_group_per_document_at_its_best_chunk() {
        // chunk ids 1..=6; document = id / 10 style lookup
        let docs = |id: &u32| match id {
            1 | 2 | 5 => Some("a"),
            3 => Some("b"),
            4 => Some("c"),
            _ => None,
        };
        let list = RankedList::new(
            "v",
            vec![(2, 0.9), (3, 0.8), (6, 0.75), (1, 0.7), (4, 0.6), (5, 0.5)],
        );
        let fused = reciprocal_rank_fusion(&[list], 60.0);
        let groups = group_by_document(&fused, docs, 10);
        let got: Vec<(&str, u32, usize)> = groups
            .iter()
            .map(|g| (g.document, g.best.id, g.matched_chunks))
            .collect();
        assert_eq!(got, [("a", 2, 3), ("b", 3, 1), ("c", 4, 1)]);
        assert_eq!(group_by_document(&fused, docs, 2).len(), 2);
        assert!(group_by_document(&fused[..0], docs, 2).is_empty());
    }
}
