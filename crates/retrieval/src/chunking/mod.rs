//! Structure-aware chunking of markdown or plain text under a token budget.
//!
//! Headings start sections and chunks never cross one; every chunk carries its heading
//! path. Inside a section, blocks (paragraphs, lists, tables, code fences) are packed
//! whole while they fit. A block that does not fit is cut at the gentlest boundary that
//! works: table rows (header repeated) or code lines (fence repeated), list items,
//! sentences, words, and graphemes as a last resort. Consecutive chunks of one section
//! share a few trailing sentences of prose (the overlap). A leading front matter block is
//! metadata, not content, and is skipped.
//!
//! Token counting is the caller's ([`TokenCounter`]), so chunks match the embedding
//! model's own word pieces. Packing sums the counts of pieces (exact for tokenizers that
//! split on whitespace first, as WordPiece does) and then verifies each chunk's text with
//! one exact count, so a counter that is not additive still never yields an oversize
//! chunk, unless a single grapheme is over budget.

mod blocks;
mod split;

use std::collections::VecDeque;
use std::ops::Range;

use serde::Serialize;
use unicode_segmentation::UnicodeSegmentation;

use self::blocks::{BlockKind, parse_blocks};
use self::split::{Budget, Unit, UnitKind, framed_units, prose_units, sentence_spans, trim_span};

/// Counts the tokens of a text as the embedding model will see it. A count that includes
/// the special tokens (`[CLS]`, `[SEP]`) is fine: the budget then includes them too.
pub trait TokenCounter {
    fn count_tokens(&self, text: &str) -> usize;
}

impl<F: Fn(&str) -> usize + ?Sized> TokenCounter for F {
    fn count_tokens(&self, text: &str) -> usize {
        self(text)
    }
}

/// Counts Unicode word segments (words, numbers, punctuation marks; not whitespace).
/// It undercounts WordPiece (which splits rare words into pieces), so give the chunker
/// the model's tokenizer where one is at hand and use this one for estimates and tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct WordSegmentCounter;

impl TokenCounter for WordSegmentCounter {
    fn count_tokens(&self, text: &str) -> usize {
        text.split_word_bounds()
            .filter(|s| !s.trim().is_empty())
            .count()
    }
}

/// Limits for each chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ChunkConfig {
    /// Token budget of a chunk's text. all-MiniLM-L6-v2 truncates at 256 word pieces;
    /// 200 leaves room for the heading prefix and the special tokens.
    pub max_tokens: usize,
    /// Trailing sentences, up to this many tokens, repeated at the start of the next chunk
    /// of the same section, so a fact cut at a boundary is still found with its context.
    pub overlap_tokens: usize,
    /// Byte cap per chunk: a guard against degenerate text that tokenizes small (a
    /// megabyte-long "word" is one unknown token to WordPiece).
    pub max_bytes: usize,
}

impl Default for ChunkConfig {
    fn default() -> Self {
        ChunkConfig {
            max_tokens: 200,
            overlap_tokens: 32,
            max_bytes: 4096,
        }
    }
}

/// One chunk of a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Chunk {
    /// Position in the document, from 0.
    pub ordinal: usize,
    /// Titles of the enclosing headings, outermost first; empty before the first heading.
    pub heading_path: Vec<String>,
    /// The chunk's content. It equals `source[span]` except where a table header or a code
    /// fence was repeated, or where a non-text line (a rule) between two blocks was dropped.
    pub text: String,
    /// Byte range of the source this chunk was drawn from (including its overlap).
    pub span: Range<usize>,
    /// Tokens of `text`, by the caller's counter.
    pub token_count: usize,
}

impl Chunk {
    /// `Title > Heading > Subheading`: what to show for a citation and to prepend for
    /// embedding. The title is left out when the first heading repeats it.
    pub fn context_prefix(&self, document_title: Option<&str>) -> String {
        let title = document_title.map(str::trim).filter(|t| !t.is_empty());
        let mut parts: Vec<&str> = Vec::with_capacity(self.heading_path.len() + 1);
        if let Some(title) = title
            && self
                .heading_path
                .first()
                .is_none_or(|h| !h.eq_ignore_ascii_case(title))
        {
            parts.push(title);
        }
        parts.extend(self.heading_path.iter().map(String::as_str));
        parts.join(" > ")
    }

    /// The text to embed and index: the context prefix, a blank line, then the chunk.
    pub fn contextual_text(&self, document_title: Option<&str>) -> String {
        passage_text(&self.context_prefix(document_title), &self.text)
    }
}

/// The text embedded for a stored chunk: its heading prefix, a blank line, its content.
/// Every embedder of stored chunks (the kb component inline, the worker for queued ones)
/// calls this, so both produce the same vector for the same chunk.
pub fn passage_text(heading: &str, content: &str) -> String {
    if heading.is_empty() {
        content.to_string()
    } else {
        format!("{heading}\n\n{content}")
    }
}

/// Splits `source` into chunks. Deterministic, and total: any input gives a (possibly
/// empty) list, never a panic.
pub fn chunk_document(
    source: &str,
    config: &ChunkConfig,
    counter: &dyn TokenCounter,
) -> Vec<Chunk> {
    let budget = Budget {
        counter,
        max_tokens: config.max_tokens,
        max_bytes: config.max_bytes.max(1),
    };
    let body_start = crate::front_matter::locate(source).map_or(0, |block| block.body_start);
    let mut packer = Packer {
        src: source,
        budget,
        overlap_tokens: config.overlap_tokens,
        chunks: Vec::new(),
    };
    let mut path: Vec<(usize, String)> = Vec::new();
    let mut units: Vec<Unit> = Vec::new();
    for block in parse_blocks(source, body_start) {
        match block.kind {
            BlockKind::Heading { level, title } => {
                packer.pack_section(std::mem::take(&mut units), &path);
                path.retain(|(l, _)| *l < level);
                if !title.is_empty() {
                    path.push((level, title));
                }
            }
            BlockKind::Paragraph => prose_units(
                &packer.budget,
                source,
                block.span,
                UnitKind::Prose,
                &mut units,
            ),
            BlockKind::List { items } => {
                if !packer.push_whole(block.span.clone(), UnitKind::Prose, &mut units) {
                    for item in items {
                        prose_units(&packer.budget, source, item, UnitKind::Prose, &mut units);
                    }
                }
            }
            BlockKind::Table { header, rows } => {
                if !packer.push_whole(block.span.clone(), UnitKind::Verbatim, &mut units) {
                    let frame = (&source[header], "");
                    framed_units(
                        &packer.budget,
                        source,
                        frame,
                        &rows,
                        block.span.start,
                        &mut units,
                    );
                }
            }
            BlockKind::Code { open, body, close } => {
                if !packer.push_whole(block.span.clone(), UnitKind::Verbatim, &mut units) {
                    let close = close
                        .map(|c| format!("\n{}", &source[c]))
                        .unwrap_or_default();
                    let frame = (&source[open], close.as_str());
                    framed_units(
                        &packer.budget,
                        source,
                        frame,
                        &body,
                        block.span.start,
                        &mut units,
                    );
                }
            }
        }
    }
    packer.pack_section(units, &path);
    packer.chunks
}

struct Packer<'a> {
    src: &'a str,
    budget: Budget<'a>,
    overlap_tokens: usize,
    chunks: Vec<Chunk>,
}

impl Packer<'_> {
    /// Adds the block as one unit if it fits; false if it must be split.
    fn push_whole(&self, span: Range<usize>, kind: UnitKind, units: &mut Vec<Unit>) -> bool {
        let span = trim_span(self.src, span);
        if span.is_empty() {
            return true;
        }
        match self.budget.fits(&self.src[span.clone()]) {
            Some(tokens) => {
                units.push(Unit {
                    span,
                    synthetic: None,
                    tokens,
                    kind,
                });
                true
            }
            None => false,
        }
    }

    /// What goes between two units: the source's own whitespace when that is all that
    /// separates them (so the chunk stays a verbatim slice), else a blank line.
    fn gap(&self, prev: &Unit, next: &Unit) -> &str {
        if prev.span.end <= next.span.start {
            let between = &self.src[prev.span.end..next.span.start];
            if between.trim().is_empty() {
                return between;
            }
        }
        "\n\n"
    }

    fn join(&self, units: &[Unit]) -> String {
        let mut text = String::new();
        for (i, unit) in units.iter().enumerate() {
            if i > 0 {
                text.push_str(self.gap(&units[i - 1], unit));
            }
            text.push_str(unit.text(self.src));
        }
        text
    }

    /// Whether `next` fits after `units`, by summed counts (verified exactly on emit).
    fn fits_after(&self, units: &[Unit], next: &Unit) -> bool {
        let tokens: usize = units.iter().map(|u| u.tokens).sum::<usize>() + next.tokens;
        let mut bytes: usize = units.iter().map(Unit::bytes).sum::<usize>() + next.bytes();
        for pair in units.windows(2) {
            bytes += self.gap(&pair[0], &pair[1]).len();
        }
        if let Some(last) = units.last() {
            bytes += self.gap(last, next).len();
        }
        tokens <= self.budget.max_tokens && bytes <= self.budget.max_bytes
    }

    fn pack_section(&mut self, units: Vec<Unit>, path: &[(usize, String)]) {
        let path: Vec<String> = path.iter().map(|(_, title)| title.clone()).collect();
        let mut pending: VecDeque<Unit> = units.into();
        let mut current: Vec<Unit> = Vec::new();
        // The first `carried` units of `current` are overlap from the previous chunk.
        let mut carried = 0;
        while let Some(unit) = pending.pop_front() {
            if current.len() > carried {
                if self.fits_after(&current, &unit) {
                    current.push(unit);
                } else {
                    pending.push_front(unit);
                    let fresh =
                        self.emit(std::mem::take(&mut current), carried, &mut pending, &path);
                    current = self.overlap(&fresh);
                    carried = current.len();
                }
                continue;
            }
            // Only overlap so far: shed its oldest sentences until the new unit fits.
            while carried > 0 && !self.fits_after(&current, &unit) {
                current.remove(0);
                carried -= 1;
            }
            current.push(unit);
        }
        if current.len() > carried {
            self.emit(current, carried, &mut pending, &path);
        }
    }

    /// Emits `units` as a chunk once its exact count fits, handing trailing units back to
    /// `pending` (or shedding overlap) while it does not. Returns the chunk's new units.
    fn emit(
        &mut self,
        mut units: Vec<Unit>,
        mut carried: usize,
        pending: &mut VecDeque<Unit>,
        path: &[String],
    ) -> Vec<Unit> {
        loop {
            let text = self.join(&units);
            let fits = self.budget.fits(&text);
            let fresh = units.len() - carried;
            if fits.is_none() && fresh > 1 {
                pending.push_front(units.pop().expect("fresh > 1"));
                continue;
            }
            if fits.is_none() && carried > 0 {
                units.remove(0);
                carried -= 1;
                continue;
            }
            // A single unit was checked alone when it was made; trust that count.
            let token_count = fits.unwrap_or_else(|| self.budget.count(&text));
            let span = units[0].span.start..units[units.len() - 1].span.end;
            self.chunks.push(Chunk {
                ordinal: self.chunks.len(),
                heading_path: path.to_vec(),
                text,
                span,
                token_count,
            });
            return units.split_off(carried);
        }
    }

    /// Trailing sentences of the chunk's new prose, within the overlap budget, never the
    /// whole of it.
    fn overlap(&self, fresh: &[Unit]) -> Vec<Unit> {
        let Some(first) = fresh.first() else {
            return Vec::new();
        };
        let mut picked = Vec::new();
        let mut tokens = 0;
        'units: for unit in fresh.iter().rev() {
            if unit.kind != UnitKind::Prose || unit.synthetic.is_some() {
                break;
            }
            for sentence in sentence_spans(self.src, unit.span.clone())
                .into_iter()
                .rev()
            {
                if sentence.start <= first.span.start {
                    break 'units;
                }
                let text = &self.src[sentence.clone()];
                let count = self.budget.count(text);
                if tokens + count > self.overlap_tokens || text.len() > self.budget.max_bytes {
                    break 'units;
                }
                tokens += count;
                picked.push(Unit {
                    span: sentence,
                    synthetic: None,
                    tokens: count,
                    kind: UnitKind::Prose,
                });
            }
        }
        picked.reverse();
        picked
    }
}

#[cfg(test)]
mod tests;
