//! Postgres's English stop words (`tsearch_data/english.stop`, the Snowball list), which
//! its `english` text search configuration drops: a query made only of these has no text
//! side at all, and the search answer says so instead of returning a silent empty list.

/// `english.stop` as shipped with PostgreSQL 15–17.
pub const ENGLISH_STOP_WORDS: [&str; 127] = [
    "i",
    "me",
    "my",
    "myself",
    "we",
    "our",
    "ours",
    "ourselves",
    "you",
    "your",
    "yours",
    "yourself",
    "yourselves",
    "he",
    "him",
    "his",
    "himself",
    "she",
    "her",
    "hers",
    "herself",
    "it",
    "its",
    "itself",
    "they",
    "them",
    "their",
    "theirs",
    "themselves",
    "what",
    "which",
    "who",
    "whom",
    "this",
    "that",
    "these",
    "those",
    "am",
    "is",
    "are",
    "was",
    "were",
    "be",
    "been",
    "being",
    "have",
    "has",
    "had",
    "having",
    "do",
    "does",
    "did",
    "doing",
    "a",
    "an",
    "the",
    "and",
    "but",
    "if",
    "or",
    "because",
    "as",
    "until",
    "while",
    "of",
    "at",
    "by",
    "for",
    "with",
    "about",
    "against",
    "between",
    "into",
    "through",
    "during",
    "before",
    "after",
    "above",
    "below",
    "to",
    "from",
    "up",
    "down",
    "in",
    "out",
    "on",
    "off",
    "over",
    "under",
    "again",
    "further",
    "then",
    "once",
    "here",
    "there",
    "when",
    "where",
    "why",
    "how",
    "all",
    "any",
    "both",
    "each",
    "few",
    "more",
    "most",
    "other",
    "some",
    "such",
    "no",
    "nor",
    "not",
    "only",
    "own",
    "same",
    "so",
    "than",
    "too",
    "very",
    "s",
    "t",
    "can",
    "will",
    "just",
    "don",
    "should",
    "now",
];

pub fn is_stop_word(word: &str) -> bool {
    ENGLISH_STOP_WORDS.contains(&word)
}

/// Whether the query has words and every one is a stop word (words as
/// [`crate::tsquery_terms`] splits them: runs of letters and digits, lower-cased).
pub fn only_stop_words(query: &str) -> bool {
    let mut words = query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .peekable();
    words.peek().is_some() && words.all(|w| is_stop_word(&w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_stop_words_needs_words_and_no_content_word() {
        assert!(only_stop_words("What is it?"));
        assert!(only_stop_words("THE and OR, of which: don't"));
        assert!(!only_stop_words("what is CVaR"));
        assert!(!only_stop_words("is 2024"));
        assert!(!only_stop_words("!!! ..."));
        assert!(!only_stop_words(""));
    }

    #[test]
    fn the_list_has_no_duplicates_and_is_lower_case() {
        let mut sorted = ENGLISH_STOP_WORDS.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ENGLISH_STOP_WORDS.len());
        assert!(
            ENGLISH_STOP_WORDS
                .iter()
                .all(|w| w.chars().all(|c| c.is_ascii_lowercase()))
        );
    }
}
