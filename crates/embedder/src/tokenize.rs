//! WordPiece tokenization as sentence-transformers does it for all-MiniLM-L6-v2: the model's
//! own `tokenizer.json` (BERT uncased normaliser, `[CLS] … [SEP]`), no padding, truncation at
//! [`MAX_TOKENS`](crate::MAX_TOKENS) word pieces.
//!
//! The shipped `tokenizer.json` pads to 128 and truncates at 128; whatever the file says,
//! this module turns both off and truncates itself, so the numbers never depend on how the
//! file was configured.

use crate::MAX_TOKENS;
use crate::error::{EmbedError, Result};
use tokenizers::{PostProcessor, Tokenizer, TruncationDirection};

/// Token ids for one input, ready for the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenizedText {
    /// Word-piece ids, `[CLS]` and `[SEP]` included, at most [`MAX_TOKENS`].
    pub ids: Vec<i64>,
    /// Word pieces the whole input needs, special tokens included, before truncation.
    pub word_pieces: usize,
    /// Whether the input was cut to [`MAX_TOKENS`].
    pub truncated: bool,
}

/// The model's tokenizer with padding and truncation under this crate's control.
#[derive(Clone)]
pub struct WordPieceTokenizer {
    inner: Tokenizer,
    /// `[CLS]` and `[SEP]`: what the post-processor adds to one sequence.
    special_tokens: usize,
}

impl std::fmt::Debug for WordPieceTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WordPieceTokenizer")
            .field("vocab_size", &self.inner.get_vocab_size(true))
            .field("special_tokens", &self.special_tokens)
            .finish()
    }
}

impl WordPieceTokenizer {
    /// Parses a Hugging Face `tokenizer.json`.
    pub fn from_bytes(tokenizer_json: &[u8]) -> Result<Self> {
        let mut inner = Tokenizer::from_bytes(tokenizer_json)
            .map_err(|e| EmbedError::TokenizerConfig(e.to_string()))?;
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| EmbedError::TokenizerConfig(e.to_string()))?;
        let special_tokens = inner
            .get_post_processor()
            .map_or(0, |p| p.added_tokens(false));
        if special_tokens >= MAX_TOKENS {
            return Err(EmbedError::TokenizerConfig(format!(
                "its post-processor adds {special_tokens} tokens, leaving no room for text"
            )));
        }
        Ok(Self {
            inner,
            special_tokens,
        })
    }

    /// Tokenizes one input; `index` names it in errors.
    pub fn tokenize(&self, text: &str, index: usize) -> Result<TokenizedText> {
        let fail = |e: tokenizers::Error| EmbedError::Tokenize {
            index,
            message: e.to_string(),
        };
        // Word pieces only (no offsets needed), then the same right-truncation tokenizers
        // applies for a single sequence, then [CLS]/[SEP].
        let mut pieces = self.inner.encode_fast(text, false).map_err(fail)?;
        let word_pieces = pieces.len() + self.special_tokens;
        let room = MAX_TOKENS - self.special_tokens;
        let truncated = pieces.len() > room;
        if truncated {
            pieces.truncate(room, 0, TruncationDirection::Right);
            // The cut-off rest is dropped here rather than post-processed with the kept part.
            drop(pieces.take_overflowing());
        }
        let encoding = self.inner.post_process(pieces, None, true).map_err(fail)?;
        Ok(TokenizedText {
            ids: encoding.get_ids().iter().map(|&id| i64::from(id)).collect(),
            word_pieces,
            truncated,
        })
    }

    /// Word pieces `text` needs, `[CLS]` and `[SEP]` included, without truncation: what a
    /// chunker compares with [`MAX_TOKENS`] to keep every chunk whole.
    pub fn count_tokens(&self, text: &str) -> Result<usize> {
        let pieces = self
            .inner
            .encode_fast(text, false)
            .map_err(|e| EmbedError::Tokenize {
                index: 0,
                message: e.to_string(),
            })?;
        Ok(pieces.len() + self.special_tokens)
    }

    /// The tokenizer as `tokenizer.json` with padding off and truncation at [`MAX_TOKENS`],
    /// so other consumers of the file (a worker on another runtime) see what this crate does.
    pub fn to_json(&self) -> Result<String> {
        let mut configured = self.inner.clone();
        configured
            .with_truncation(Some(tokenizers::TruncationParams {
                max_length: MAX_TOKENS,
                ..Default::default()
            }))
            .map_err(|e| EmbedError::TokenizerConfig(e.to_string()))?;
        configured
            .to_string(false)
            .map_err(|e| EmbedError::TokenizerConfig(e.to_string()))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A tiny BERT-style tokenizer.json: uncased normaliser, whitespace+punctuation split,
    /// WordPiece over a handful of pieces, `[CLS] $A [SEP]` — and the shipped file's padding
    /// and truncation at 8, which must be ignored.
    pub(crate) fn tiny_tokenizer_json() -> String {
        let vocab = [
            "[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "sharpe", "ratio", "is", "high", "##er",
            "?", ".",
        ];
        let vocab = vocab
            .iter()
            .enumerate()
            .map(|(i, t)| format!("\"{t}\": {i}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            r###"{{
  "version": "1.0",
  "truncation": {{"max_length": 8, "strategy": "LongestFirst", "stride": 0}},
  "padding": {{"strategy": {{"Fixed": 8}}, "direction": "Right", "pad_to_multiple_of": null,
              "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"}},
  "added_tokens": [],
  "normalizer": {{"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                  "strip_accents": null, "lowercase": true}},
  "pre_tokenizer": {{"type": "BertPreTokenizer"}},
  "post_processor": {{"type": "TemplateProcessing",
    "single": [{{"SpecialToken": {{"id": "[CLS]", "type_id": 0}}}},
               {{"Sequence": {{"id": "A", "type_id": 0}}}},
               {{"SpecialToken": {{"id": "[SEP]", "type_id": 0}}}}],
    "pair": [{{"SpecialToken": {{"id": "[CLS]", "type_id": 0}}}},
             {{"Sequence": {{"id": "A", "type_id": 0}}}},
             {{"SpecialToken": {{"id": "[SEP]", "type_id": 0}}}},
             {{"Sequence": {{"id": "B", "type_id": 1}}}},
             {{"SpecialToken": {{"id": "[SEP]", "type_id": 1}}}}],
    "special_tokens": {{"[CLS]": {{"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]}},
                        "[SEP]": {{"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}}}}},
  "decoder": null,
  "model": {{"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
             "max_input_chars_per_word": 100, "vocab": {{{vocab}}}}}
}}"###
        )
    }

    fn tiny() -> WordPieceTokenizer {
        WordPieceTokenizer::from_bytes(tiny_tokenizer_json().as_bytes()).unwrap()
    }

    #[test]
    fn adds_cls_and_sep_without_padding() {
        let t = tiny().tokenize("The Sharpe ratio?", 0).unwrap();
        assert_eq!(t.ids, vec![2, 4, 5, 6, 10, 3]);
        assert_eq!(t.word_pieces, 6);
        assert!(!t.truncated);
    }

    #[test]
    fn empty_and_whitespace_inputs_are_cls_sep() {
        for text in ["", "   ", "\n\t"] {
            let t = tiny().tokenize(text, 0).unwrap();
            assert_eq!(t.ids, vec![2, 3], "{text:?}");
            assert!(!t.truncated);
        }
    }

    #[test]
    fn unknown_words_become_unk_and_pieces_split() {
        let t = tiny().tokenize("higher zebra", 0).unwrap();
        assert_eq!(t.ids, vec![2, 8, 9, 1, 3]);
    }

    #[test]
    fn truncates_at_max_tokens_and_says_so() {
        // 300 words: the file's own truncation at 8 must not apply, ours at 256 must.
        let long = "high ".repeat(300);
        let t = tiny().tokenize(&long, 3).unwrap();
        assert!(t.truncated);
        assert_eq!(t.word_pieces, 302);
        assert_eq!(t.ids.len(), MAX_TOKENS);
        assert_eq!(t.ids.first(), Some(&2));
        assert_eq!(t.ids.last(), Some(&3));
        assert!(t.ids[1..MAX_TOKENS - 1].iter().all(|&id| id == 8));
        assert_eq!(tiny().count_tokens(&long).unwrap(), 302);

        // Exactly at the limit: 254 words + 2 specials is not truncated; one more is.
        let at_limit = "high ".repeat(MAX_TOKENS - 2);
        let t = tiny().tokenize(&at_limit, 0).unwrap();
        assert!(!t.truncated);
        assert_eq!(t.ids.len(), MAX_TOKENS);
        let over = "high ".repeat(MAX_TOKENS - 1);
        assert!(tiny().tokenize(&over, 0).unwrap().truncated);
    }

    #[test]
    fn count_tokens_includes_special_tokens() {
        assert_eq!(tiny().count_tokens("").unwrap(), 2);
        assert_eq!(tiny().count_tokens("the ratio is higher.").unwrap(), 8);
    }

    #[test]
    fn exported_json_has_no_padding_and_truncates_at_256() {
        let json = tiny().to_json().unwrap();
        let reparsed = Tokenizer::from_bytes(json.as_bytes()).unwrap();
        assert!(reparsed.get_padding().is_none());
        assert_eq!(
            reparsed.get_truncation().map(|t| t.max_length),
            Some(MAX_TOKENS)
        );
    }

    #[test]
    fn rejects_a_broken_file() {
        assert!(matches!(
            WordPieceTokenizer::from_bytes(b"{not json"),
            Err(EmbedError::TokenizerConfig(_))
        ));
    }
}
