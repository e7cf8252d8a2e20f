//! Checks the demo knowledge base (`demo/kb`) and its evaluation set: that every document
//! is well formed and chunks cleanly, and that the labels are usable. Retrieval quality
//! itself is measured by the kb component against the real index.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::PathBuf;

use tessera_retrieval::{
    ChunkConfig, LabelledQuestion, QuestionKind, WordSegmentCounter, chunk_document, front_matter,
};

fn kb_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../demo/kb")
}

/// Every `*.md` in `demo/kb` except the README, by file stem.
fn documents() -> BTreeMap<String, String> {
    let mut docs = BTreeMap::new();
    for entry in fs::read_dir(kb_dir()).expect("demo/kb exists") {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if name.ends_with(".md") && name != "README.md" {
            docs.insert(
                name.trim_end_matches(".md").to_string(),
                fs::read_to_string(&path).unwrap(),
            );
        }
    }
    docs
}

fn questions() -> Vec<LabelledQuestion> {
    let text = fs::read_to_string(kb_dir().join("eval.json")).unwrap();
    serde_json::from_str(&text).expect("eval.json matches LabelledQuestion")
}

fn words(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

#[test]
fn documents_are_well_formed() {
    let docs = documents();
    assert!((36..=48).contains(&docs.len()), "{} documents", docs.len());
    let mut with_table = 0;
    let mut with_list = 0;
    for (stem, source) in &docs {
        assert!(
            stem.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{stem}: file stems are kebab-case ids"
        );
        let fm = front_matter::parse(source).unwrap_or_else(|e| panic!("{stem}: {e}"));
        assert!(
            fm.text("title").is_some_and(|t| !t.is_empty()),
            "{stem}: title"
        );
        assert_eq!(fm.text("scope"), Some("global"), "{stem}: scope");
        assert!(!fm.list("tags").is_empty(), "{stem}: tags");
        let body = &source[fm.body_start..];
        let word_count = body.split_whitespace().count();
        assert!(
            (150..=600).contains(&word_count),
            "{stem}: {word_count} words"
        );
        assert!(
            body.lines().any(|l| l.starts_with("## ")),
            "{stem}: has sections"
        );
        with_table += usize::from(body.contains("\n|---"));
        with_list += usize::from(body.contains("\n- ") || body.contains("\n1. "));
    }
    assert!(with_table >= 10, "{with_table} documents with tables");
    assert!(with_list >= 10, "{with_list} documents with lists");
}

#[test]
fn documents_chunk_within_budget_under_headings() {
    let config = ChunkConfig::default();
    let mut total = 0;
    for (stem, source) in documents() {
        let chunks = chunk_document(&source, &config, &WordSegmentCounter);
        assert!(!chunks.is_empty(), "{stem}");
        for chunk in &chunks {
            assert!(chunk.token_count <= config.max_tokens, "{stem}: {chunk:?}");
            assert!(
                !chunk.heading_path.is_empty(),
                "{stem}: every chunk sits under a heading"
            );
            assert!(
                !chunk.text.contains("title:"),
                "{stem}: front matter is not content"
            );
        }
        total += chunks.len();
    }
    assert!(total > 100, "{total} chunks");
}

#[test]
fn evaluation_set_is_labelled_consistently() {
    let docs = documents();
    let questions = questions();
    assert!(questions.len() >= 60, "{} questions", questions.len());

    let ids: BTreeSet<&str> = questions.iter().map(|q| q.id.as_str()).collect();
    assert_eq!(ids.len(), questions.len(), "ids are unique");
    let texts: BTreeSet<String> = questions
        .iter()
        .map(|q| q.question.to_lowercase())
        .collect();
    assert_eq!(texts.len(), questions.len(), "questions are unique");

    let mut per_kind: HashMap<QuestionKind, usize> = HashMap::new();
    let mut covered = BTreeSet::new();
    for q in &questions {
        let kind = q.kind.unwrap_or_else(|| panic!("{}: kind", q.id));
        *per_kind.entry(kind).or_default() += 1;
        assert!(
            (1..=3).contains(&q.relevant.len()),
            "{}: 1 to 3 relevant documents",
            q.id
        );
        for stem in &q.relevant {
            assert!(docs.contains_key(stem), "{}: no document {stem}", q.id);
            covered.insert(stem.clone());
        }
    }
    for kind in [
        QuestionKind::Lexical,
        QuestionKind::Paraphrase,
        QuestionKind::Mixed,
    ] {
        let n = per_kind.get(&kind).copied().unwrap_or(0);
        assert!(
            n * 4 >= questions.len(),
            "{kind:?}: {n} of {} questions, want about a third",
            questions.len()
        );
    }
    let uncovered: Vec<&String> = docs.keys().filter(|d| !covered.contains(*d)).collect();
    assert!(
        uncovered.is_empty(),
        "documents no question points to: {uncovered:?}"
    );
    assert!(
        questions.iter().filter(|q| q.relevant.len() > 1).count() >= 5,
        "some questions have two answers"
    );
}

/// Lexical questions must be answerable by exact terms: every word of three letters or
/// more (but a few function words) occurs in a relevant document, so even an all-terms
/// full-text query matches it.
#[test]
fn lexical_questions_use_terms_found_in_their_documents() {
    const FUNCTION_WORDS: [&str; 5] = ["and", "for", "the", "with", "under"];
    let docs = documents();
    for q in questions()
        .iter()
        .filter(|q| q.kind == Some(QuestionKind::Lexical))
    {
        for term in q.question.split_whitespace() {
            let term = term
                .trim_matches(|c: char| ",.?!:;()".contains(c))
                .to_lowercase();
            if term.chars().count() < 3 || FUNCTION_WORDS.contains(&term.as_str()) {
                continue;
            }
            assert!(
                q.relevant
                    .iter()
                    .any(|stem| docs[stem].to_lowercase().contains(&term)),
                "{}: `{term}` is in no relevant document",
                q.id
            );
        }
    }
}

/// Paraphrased questions must not lean on rare terms: no word of four letters or more
/// that occurs in at most three documents is shared with a relevant document.
#[test]
fn paraphrased_questions_share_no_rare_terms_with_their_documents() {
    let docs = documents();
    let doc_words: BTreeMap<&String, BTreeSet<String>> =
        docs.iter().map(|(k, v)| (k, words(v))).collect();
    let mut document_frequency: HashMap<&str, usize> = HashMap::new();
    for set in doc_words.values() {
        for w in set {
            *document_frequency.entry(w.as_str()).or_default() += 1;
        }
    }
    for q in questions()
        .iter()
        .filter(|q| q.kind == Some(QuestionKind::Paraphrase))
    {
        for w in words(&q.question) {
            let rare = w.chars().count() >= 4
                && document_frequency.get(w.as_str()).copied().unwrap_or(0) <= 3;
            let shared = q.relevant.iter().any(|stem| doc_words[stem].contains(&w));
            assert!(
                !(rare && shared),
                "{}: shares the rare term `{w}` with its answer",
                q.id
            );
        }
    }
}
