use super::*;

fn words(s: &str) -> usize {
    s.split_whitespace().count()
}

fn config(max_tokens: usize, overlap_tokens: usize) -> ChunkConfig {
    ChunkConfig {
        max_tokens,
        overlap_tokens,
        ..ChunkConfig::default()
    }
}

fn texts(chunks: &[Chunk]) -> Vec<&str> {
    chunks.iter().map(|c| c.text.as_str()).collect()
}

/// `n` numbered sentences of `len` words each, e.g. "S0w0 S0w1 S0w2.". Capitalised:
/// UAX #29 does not break before a lowercase word ("e.g. this").
fn sentences(n: usize, len: usize) -> String {
    (0..n)
        .map(|s| {
            (0..len)
                .map(|w| format!("S{s}w{w}"))
                .collect::<Vec<_>>()
                .join(" ")
                + "."
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn empty_and_blank_documents_have_no_chunks() {
    for src in [
        "",
        "   ",
        "\n\n\r\n\t",
        "# Only a heading\n## And another",
        "---\ntitle: x\n---\n",
    ] {
        assert!(
            chunk_document(src, &ChunkConfig::default(), &words).is_empty(),
            "{src:?}"
        );
    }
}

#[test]
fn headings_start_sections_and_set_the_path() {
    let src = "Preamble.\n# Portfolio risk\nIntro.\n## Value at Risk\nVaR text.\n### Historical\nHist.\n## Beta\nBeta text.\n# Trading\nOrders.";
    let chunks = chunk_document(src, &ChunkConfig::default(), &words);
    let got: Vec<(&str, Vec<&str>)> = chunks
        .iter()
        .map(|c| {
            (
                c.text.as_str(),
                c.heading_path.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("Preamble.", vec![]),
            ("Intro.", vec!["Portfolio risk"]),
            ("VaR text.", vec!["Portfolio risk", "Value at Risk"]),
            (
                "Hist.",
                vec!["Portfolio risk", "Value at Risk", "Historical"]
            ),
            ("Beta text.", vec!["Portfolio risk", "Beta"]),
            ("Orders.", vec!["Trading"]),
        ]
    );
    assert_eq!(
        chunks.iter().map(|c| c.ordinal).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4, 5]
    );
}

#[test]
fn small_blocks_share_a_chunk_as_a_verbatim_slice() {
    let src = "# S\nFirst paragraph here.\n\nSecond one\nwrapped.\n\n- a list\n- of items\n";
    let chunks = chunk_document(src, &ChunkConfig::default(), &words);
    assert_eq!(chunks.len(), 1);
    let c = &chunks[0];
    assert_eq!(
        c.text,
        "First paragraph here.\n\nSecond one\nwrapped.\n\n- a list\n- of items"
    );
    assert_eq!(&src[c.span.clone()], c.text);
    assert_eq!(c.token_count, 12);
}

#[test]
fn blocks_that_do_not_fit_together_go_to_separate_chunks_whole() {
    let a = sentences(3, 5); // 15 words
    let b = sentences(2, 5); // 10 words
    let src = format!("{a}\n\n{b}");
    let chunks = chunk_document(&src, &config(20, 0), &words);
    assert_eq!(texts(&chunks), [a.as_str(), b.as_str()]);
}

#[test]
fn long_paragraph_splits_at_sentences_with_overlap() {
    let src = sentences(10, 6); // 60 words, 6 per sentence
    let chunks = chunk_document(&src, &config(20, 7), &words);
    assert!(chunks.len() > 2);
    for c in &chunks {
        assert!(c.token_count <= 20);
        assert!(
            c.text.ends_with('.'),
            "ends at a sentence boundary: {:?}",
            c.text
        );
        assert_eq!(&src[c.span.clone()], c.text);
    }
    for pair in chunks.windows(2) {
        let last_sentence = pair[0]
            .text
            .rsplit_once(". ")
            .map_or(pair[0].text.as_str(), |(_, s)| s);
        assert!(
            pair[1].text.starts_with(last_sentence),
            "{:?} then {:?}",
            pair[0].text,
            pair[1].text
        );
        assert!(pair[1].span.start < pair[0].span.end, "spans overlap");
        assert!(pair[1].span.end > pair[0].span.end, "progress");
    }
    assert!(chunks.last().unwrap().text.ends_with("S9w5."));
}

#[test]
fn overlap_never_exceeds_its_budget_and_zero_disables_it() {
    let src = sentences(12, 4);
    let with = chunk_document(&src, &config(16, 8), &words);
    for pair in with.windows(2) {
        assert!(pair[1].span.start < pair[0].span.end, "overlap present");
        let shared = &src[pair[1].span.start..pair[0].span.end];
        assert!(words(shared) <= 8, "{shared:?}");
        assert!(words(shared) > 0);
    }
    let without = chunk_document(&src, &config(16, 0), &words);
    for pair in without.windows(2) {
        assert!(pair[1].span.start >= pair[0].span.end);
    }
}

#[test]
fn overlap_stays_within_a_section() {
    let src = format!("# A\n{}\n# B\n{}", sentences(6, 5), sentences(1, 5));
    let chunks = chunk_document(&src, &config(12, 6), &words);
    let b: Vec<&Chunk> = chunks.iter().filter(|c| c.heading_path == ["B"]).collect();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].text, "S0w0 S0w1 S0w2 S0w3 S0w4.");
}

#[test]
fn an_overlong_sentence_is_split_by_words() {
    let src = (0..50)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    let chunks = chunk_document(&src, &config(8, 4), &words);
    assert_eq!(chunks.len(), 7);
    assert!(chunks.iter().all(|c| c.token_count <= 8));
    let all: Vec<&str> = chunks
        .iter()
        .flat_map(|c| c.text.split_whitespace())
        .collect();
    assert_eq!(
        all.len(),
        50,
        "word pieces carry no overlap: every word once"
    );
}

#[test]
fn a_table_that_fits_stays_whole() {
    let src = "## Ratios\n\n| Ratio | Formula |\n|---|---|\n| Sharpe | (R - Rf) / sd |\n| Sortino | (R - Rf) / downside sd |\n\nAfter.";
    let chunks = chunk_document(src, &ChunkConfig::default(), &words);
    assert_eq!(chunks.len(), 1);
    assert!(
        chunks[0]
            .text
            .starts_with("| Ratio | Formula |\n|---|---|\n| Sharpe")
    );
    assert!(chunks[0].text.ends_with("downside sd |\n\nAfter."));
}

#[test]
fn a_large_table_splits_by_rows_and_repeats_the_header() {
    let mut src = String::from("Intro.\n\n| Ticker | Beta |\n| --- | --- |\n");
    for i in 0..30 {
        src.push_str(&format!("| T{i} | 1.{i} |\n"));
    }
    let chunks = chunk_document(&src, &config(25, 8), &words);
    let table: Vec<&Chunk> = chunks.iter().filter(|c| c.text.contains("| T")).collect();
    assert!(table.len() >= 3);
    let mut seen = Vec::new();
    for c in &table {
        assert!(c.token_count <= 25);
        let at = c
            .text
            .find("| Ticker | Beta |\n| --- | --- |\n")
            .expect("header repeated");
        for line in c.text[at..].lines().skip(2) {
            seen.push(line.to_string());
        }
    }
    let expected: Vec<String> = (0..30).map(|i| format!("| T{i} | 1.{i} |")).collect();
    assert_eq!(seen, expected, "every row exactly once, in order");
    let later = table.iter().find(|c| !c.text.contains("| T0 |")).unwrap();
    assert!(
        later.span.start > src.find("| T0").unwrap(),
        "a later piece's span covers its rows only"
    );
}

#[test]
fn a_code_fence_stays_whole_or_splits_with_its_fences() {
    let small = "```python\nnpv = sum(cf / (1 + r) ** t)\n```";
    let chunks = chunk_document(small, &ChunkConfig::default(), &words);
    assert_eq!(texts(&chunks), [small]);

    let body: String = (0..20).map(|i| format!("x{i} = {i}\n")).collect();
    let big = format!("```python\n{body}```\n");
    let chunks = chunk_document(&big, &config(16, 4), &words);
    assert!(chunks.len() > 1);
    for c in &chunks {
        assert!(
            c.text.starts_with("```python\n") && c.text.ends_with("\n```"),
            "{:?}",
            c.text
        );
        assert!(c.token_count <= 16);
    }
    let lines: Vec<&str> = chunks
        .iter()
        .flat_map(|c| c.text.lines())
        .filter(|l| !l.starts_with("```"))
        .collect();
    assert_eq!(lines.len(), 20);
}

#[test]
fn a_long_list_splits_between_items() {
    let src: String = (0..12).map(|i| format!("- item {i} has four\n")).collect();
    let chunks = chunk_document(&src, &config(17, 0), &words);
    assert!(chunks.len() >= 3);
    for c in &chunks {
        assert!(c.text.starts_with("- item"), "{:?}", c.text);
        assert!(c.text.ends_with("four"));
    }
}

#[test]
fn crlf_gives_the_same_chunks_as_lf() {
    let lf = format!(
        "# Risk\n\n{}\n\n| a | b |\n|---|---|\n| 1 | 2 |\n",
        sentences(8, 5)
    );
    let crlf = lf.replace('\n', "\r\n");
    let a = chunk_document(&lf, &config(20, 6), &words);
    let b = chunk_document(&crlf, &config(20, 6), &words);
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.text, y.text.replace("\r\n", "\n"));
        assert_eq!(x.heading_path, y.heading_path);
    }
}

#[test]
fn front_matter_is_not_content_and_spans_stay_in_source_coordinates() {
    let src = "---\ntitle: WACC\nscope: global\n---\n# WACC\nBody text.";
    let chunks = chunk_document(src, &ChunkConfig::default(), &words);
    assert_eq!(texts(&chunks), ["Body text."]);
    assert_eq!(&src[chunks[0].span.clone()], "Body text.");
}

#[test]
fn a_counter_that_is_not_additive_still_never_overflows() {
    // Counts two special tokens per call, as a tokenizer that adds [CLS] and [SEP] would.
    let with_specials = |s: &str| words(s) + 2;
    let src = format!("{}\n\n{}", sentences(9, 3), sentences(9, 2));
    for max in [6, 9, 14, 30] {
        for c in chunk_document(&src, &config(max, 4), &with_specials) {
            assert!(c.token_count <= max, "max {max}: {c:?}");
            assert_eq!(c.token_count, with_specials(&c.text));
        }
    }
}

#[test]
fn byte_cap_bounds_text_that_counts_as_few_tokens() {
    let src = "a".repeat(10_000);
    let one = |_: &str| 1usize;
    let chunks = chunk_document(
        &src,
        &ChunkConfig {
            max_bytes: 1000,
            ..ChunkConfig::default()
        },
        &one,
    );
    assert_eq!(chunks.len(), 10);
    assert!(chunks.iter().all(|c| c.text.len() == 1000));
}

#[test]
fn context_prefix_joins_title_and_headings_without_repeating() {
    let chunk = Chunk {
        ordinal: 0,
        heading_path: vec!["WACC".into(), "Cost of debt".into()],
        text: "After tax.".into(),
        span: 0..10,
        token_count: 2,
    };
    assert_eq!(chunk.context_prefix(Some("wacc")), "WACC > Cost of debt");
    assert_eq!(
        chunk.context_prefix(Some("Capital")),
        "Capital > WACC > Cost of debt"
    );
    assert_eq!(
        chunk.contextual_text(None),
        "WACC > Cost of debt\n\nAfter tax."
    );
    let bare = Chunk {
        heading_path: vec![],
        ..chunk
    };
    assert_eq!(bare.contextual_text(Some(" ")), "After tax.");
}

#[test]
fn word_segment_counter_counts_words_and_punctuation() {
    assert_eq!(
        WordSegmentCounter.count_tokens("Sharpe ratio, annualised: 1.2!"),
        7
    );
    assert_eq!(WordSegmentCounter.count_tokens("  \n"), 0);
}

/// xorshift64*: a tiny deterministic generator, so failures reproduce from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const MARKDOWN_PIECES: &[&str] = &[
    "# ",
    "## ",
    "###### ",
    "#",
    "\n",
    "\n\n",
    "\r\n",
    "\r",
    "|",
    " | ",
    "|---|---|\n",
    "---\n",
    "```",
    "~~~\n",
    "- ",
    "* ",
    "1. ",
    " ",
    "\t",
    "word",
    "VaR",
    "Kelly",
    "ünïcødé",
    "😀",
    "👩‍👩‍👧",
    "日本語",
    "e\u{301}",
    ".",
    "? ",
    "! ",
    ",",
    "'",
    "\u{feff}",
    "\u{2028}",
    "title: x\n",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
];

const PROSE_PIECES: &[&str] = &[
    "alpha", "beta", "gamma", " ", " ", "  ", ". ", ", ", "! ", "ünï", "😀", "\n\n", "\n",
];

fn generate(rng: &mut Rng, pieces: &[&str], max_pieces: usize) -> String {
    let n = rng.below(max_pieces + 1);
    (0..n).map(|_| pieces[rng.below(pieces.len())]).collect()
}

fn check_invariants(src: &str, cfg: &ChunkConfig, counter: &dyn TokenCounter) -> Vec<Chunk> {
    let chunks = chunk_document(src, cfg, counter);
    assert_eq!(chunks, chunk_document(src, cfg, counter), "deterministic");
    for (i, c) in chunks.iter().enumerate() {
        assert_eq!(c.ordinal, i);
        assert!(!c.text.trim().is_empty(), "{src:?}: empty chunk");
        assert!(
            c.span.start < c.span.end && c.span.end <= src.len(),
            "{src:?}: span {:?}",
            c.span
        );
        assert!(src.is_char_boundary(c.span.start) && src.is_char_boundary(c.span.end));
        assert_eq!(c.token_count, counter.count_tokens(&c.text));
        assert!(
            c.text.len() <= cfg.max_bytes,
            "{src:?}: {} bytes",
            c.text.len()
        );
        // Only a lone grapheme above the budget may exceed it.
        assert!(
            c.token_count <= cfg.max_tokens || c.text.graphemes(true).count() == 1,
            "{src:?}: {c:?}"
        );
    }
    for pair in chunks.windows(2) {
        assert!(
            pair[1].span.start >= pair[0].span.start,
            "{src:?}: chunks in source order"
        );
    }
    chunks
}

#[test]
fn never_panics_and_keeps_invariants_on_generated_markdown() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let byte_len = |s: &str| s.len();
    let counters: [&dyn TokenCounter; 3] = [&words, &WordSegmentCounter, &byte_len];
    for round in 0..3000 {
        let src = generate(&mut rng, MARKDOWN_PIECES, 120);
        let cfg = ChunkConfig {
            max_tokens: 1 + rng.below(40),
            overlap_tokens: rng.below(12),
            max_bytes: 24 + rng.below(200),
        };
        check_invariants(&src, &cfg, counters[round % 3]);
    }
}

#[test]
fn generated_prose_is_covered_entirely_by_verbatim_chunks() {
    let mut rng = Rng(42);
    for _ in 0..2000 {
        let src = generate(&mut rng, PROSE_PIECES, 200);
        let cfg = ChunkConfig {
            max_tokens: 2 + rng.below(30),
            overlap_tokens: rng.below(10),
            max_bytes: 4096,
        };
        let chunks = check_invariants(&src, &cfg, &WordSegmentCounter);
        let mut covered = vec![false; src.len()];
        for c in &chunks {
            assert_eq!(
                &src[c.span.clone()],
                c.text,
                "prose chunks are slices of the source"
            );
            covered[c.span.clone()].iter_mut().for_each(|b| *b = true);
        }
        for (at, ch) in src.char_indices() {
            assert!(
                ch.is_whitespace() || covered[at],
                "{src:?}: byte {at} ({ch:?}) in no chunk"
            );
        }
    }
}

#[test]
fn huge_single_line_is_chunked_quickly_and_completely() {
    let src = "The spread widened. ".repeat(50_000); // 1 MB, no newline
    let chunks = chunk_document(&src, &ChunkConfig::default(), &WordSegmentCounter);
    assert!(chunks.len() > 1000);
    assert!(chunks.iter().all(|c| c.token_count <= 200));
    assert!(chunks.last().unwrap().text.ends_with("widened."));
}
