//! Sentence splitting and term extraction for the extractive answerer.

/// Words that carry no topic: articles, auxiliaries, pronouns, question words.
const STOPWORDS: &[&str] = &[
    "a", "about", "after", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be",
    "been", "before", "being", "but", "by", "can", "could", "did", "do", "does", "doing", "done",
    "for", "from", "had", "has", "have", "having", "he", "her", "here", "hers", "him", "his",
    "how", "i", "if", "in", "into", "is", "it", "its", "just", "me", "more", "most", "my", "no",
    "not", "of", "on", "once", "only", "or", "other", "our", "out", "over", "please", "she",
    "should", "so", "some", "such", "tell", "than", "that", "the", "their", "them", "then",
    "there", "these", "they", "this", "those", "through", "to", "too", "under", "up", "us", "very",
    "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom", "why", "will",
    "with", "would", "you", "your",
];

/// Abbreviations whose period does not end a sentence (lower-case, without the period).
const ABBREVIATIONS: &[&str] = &[
    "approx", "co", "corp", "dr", "e.g", "eg", "etc", "fig", "i.e", "ie", "inc", "jr", "ltd", "mr",
    "mrs", "ms", "no", "prof", "sr", "st", "u.s", "vs",
];

/// Topic terms of `text`: lower-case alphanumeric words without stopwords, lightly stemmed
/// (plural endings), in order, with repeats.
pub fn terms(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .filter(|w| !STOPWORDS.contains(&w.as_str()))
        .filter(|w| w.chars().count() > 1 || w.chars().all(|c| c.is_ascii_digit()))
        .map(stem)
        .collect()
}

/// Folds plural forms so "margins" meets "margin" and "policies" meets "policy".
fn stem(w: String) -> String {
    let n = w.chars().count();
    if n > 4 && w.ends_with("ies") {
        format!("{}y", &w[..w.len() - 3])
    } else if n > 3
        && w.ends_with('s')
        && !w.ends_with("ss")
        && !w.ends_with("us")
        && !w.ends_with("is")
    {
        w[..w.len() - 1].to_owned()
    } else {
        w
    }
}

/// Sentences of a markdown or plain-text passage. Headings and table rulers are dropped,
/// list and quote markers stripped, table rows kept as "cell | cell", wrapped lines of a
/// paragraph joined before splitting.
pub fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut para = String::new();
    let flush = |para: &mut String, out: &mut Vec<String>| {
        if !para.is_empty() {
            split_paragraph(para, out);
            para.clear();
        }
    };
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with("```") {
            flush(&mut para, &mut out);
            continue;
        }
        if line.starts_with('|') {
            flush(&mut para, &mut out);
            let cells: Vec<&str> = line
                .trim_matches('|')
                .split('|')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect();
            let ruler = cells
                .iter()
                .all(|c| c.chars().all(|ch| matches!(ch, '-' | ':' | ' ')));
            if !ruler {
                out.push(cells.join(" | "));
            }
            continue;
        }
        let (item, body) = strip_marker(line);
        if item {
            // Each list item stands alone.
            flush(&mut para, &mut out);
            para.push_str(body);
            flush(&mut para, &mut out);
        } else {
            if !para.is_empty() {
                para.push(' ');
            }
            para.push_str(body);
        }
    }
    flush(&mut para, &mut out);
    out
}

/// Strips a list (`-`, `*`, `+`, `1.`, `1)`) or quote (`>`) marker; says whether it was a list item.
fn strip_marker(line: &str) -> (bool, &str) {
    if let Some(rest) = line.strip_prefix("> ") {
        return (false, rest.trim_start());
    }
    for m in ["- ", "* ", "+ "] {
        if let Some(rest) = line.strip_prefix(m) {
            return (true, rest.trim_start());
        }
    }
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    if (1..=3).contains(&digits) {
        let rest = &line[digits..];
        if let Some(r) = rest.strip_prefix(". ").or_else(|| rest.strip_prefix(") ")) {
            return (true, r.trim_start());
        }
    }
    (false, line)
}

fn split_paragraph(p: &str, out: &mut Vec<String>) {
    let chars: Vec<(usize, char)> = p.char_indices().collect();
    let mut start = 0;
    for (k, &(i, c)) in chars.iter().enumerate() {
        let end = i + c.len_utf8();
        let split = match c {
            '。' | '！' | '？' => true,
            '.' | '!' | '?' => {
                let next = chars.get(k + 1).map(|&(_, n)| n);
                let after = chars.get(k + 2).map(|&(_, n)| n);
                let boundary = match (next, after) {
                    (None, _) => true,
                    (Some(n), Some(a)) if n.is_whitespace() => {
                        a.is_uppercase()
                            || a.is_ascii_digit()
                            || matches!(a, '"' | '\'' | '(' | '[' | '“' | '‘')
                    }
                    _ => false,
                };
                boundary && !(c == '.' && ends_with_abbreviation(&p[start..i]))
            }
            _ => false,
        };
        if split {
            push_sentence(&p[start..end], out);
            start = end;
        }
    }
    push_sentence(&p[start..], out);
}

fn ends_with_abbreviation(before: &str) -> bool {
    let word = before
        .rsplit(|c: char| c.is_whitespace() || c == '(')
        .next()
        .unwrap_or("");
    let lower = word.to_lowercase();
    // A single letter is an initial ("J. Smith"), unless it is a digit ("step 3.").
    (word.chars().count() == 1 && word.chars().all(char::is_alphabetic))
        || ABBREVIATIONS.contains(&lower.as_str())
}

fn push_sentence(s: &str, out: &mut Vec<String>) {
    let s = s.trim();
    if !s.is_empty() {
        out.push(s.split_whitespace().collect::<Vec<_>>().join(" "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_drop_stopwords_and_fold_plurals() {
        assert_eq!(
            terms("What are the Gross Margins of ACME's policies in 2024?"),
            ["gross", "margin", "acme", "policy", "2024"]
        );
        assert_eq!(terms("is it a 3 x"), ["3"]);
        assert_eq!(
            terms("class status analysis"),
            ["class", "status", "analysis"]
        );
    }

    #[test]
    fn splits_sentences_but_not_decimals_abbreviations_or_initials() {
        let s = sentences(
            "Revenue rose 3.5 % to $4.2M. Costs fell, e.g. rent. J. Smith approved it! Why? Because.",
        );
        assert_eq!(
            s,
            [
                "Revenue rose 3.5 % to $4.2M.",
                "Costs fell, e.g. rent.",
                "J. Smith approved it!",
                "Why?",
                "Because."
            ]
        );
        assert_eq!(
            sentences("利益は増えた。費用は減った。"),
            ["利益は増えた。", "費用は減った。"]
        );
    }

    #[test]
    fn markdown_structure() {
        let md = "# Refunds\n\nRefunds are paid\nwithin 14 days.\n\n- Item one is here.\n2) Item two.\n> Quoted text.\n\n| Metric | Q3 |\n|---|---:|\n| Revenue | 4.2M |\n```\ncode\n```";
        assert_eq!(
            sentences(md),
            [
                "Refunds are paid within 14 days.",
                "Item one is here.",
                "Item two.",
                "Quoted text.",
                "Metric | Q3",
                "Revenue | 4.2M",
                "code"
            ]
        );
    }
}
