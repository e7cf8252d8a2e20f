//! A title for a document posted without one: the front matter's `title`, else the first
//! markdown heading (outside code fences), else the first line with text, clipped to
//! [`MAX_TITLE_CHARS`](crate::ingest::MAX_TITLE_CHARS).

use crate::front_matter;
use crate::ingest::{DocumentFormat, MAX_TITLE_CHARS};

/// The derived title; `None` only when the content has no visible text.
pub fn derive_title(content: &str, format: DocumentFormat) -> Option<String> {
    let front = front_matter::parse(content).ok();
    if let Some(title) = front.as_ref().and_then(|f| f.text("title")).map(str::trim)
        && !title.is_empty()
    {
        return Some(clip(title));
    }
    let body_start = front_matter::locate(content).map_or(0, |b| b.body_start);
    let body = &content[body_start..];
    if format == DocumentFormat::Markdown
        && let Some(heading) = first_heading(body)
    {
        return Some(clip(&heading));
    }
    body.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(clip)
}

/// The text of the first ATX heading (`# Title`, `## Title ##`) outside fenced code.
fn first_heading(body: &str) -> Option<String> {
    let mut fence: Option<&str> = None;
    for line in body.lines() {
        let trimmed = line.trim_start();
        for marker in ["```", "~~~"] {
            if trimmed.starts_with(marker) {
                fence = match fence {
                    Some(open) if open == marker => None,
                    None => Some(marker),
                    other => other,
                };
            }
        }
        if fence.is_some() || line.len() - trimmed.len() > 3 {
            continue;
        }
        let hashes = trimmed.bytes().take_while(|&b| b == b'#').count();
        if !(1..=6).contains(&hashes) {
            continue;
        }
        let rest = &trimmed[hashes..];
        if !rest.is_empty() && !rest.starts_with([' ', '\t']) {
            continue; // `#hashtag`, not a heading
        }
        let text = rest.trim().trim_end_matches('#').trim();
        if !text.is_empty() {
            return Some(text.to_string());
        }
    }
    None
}

/// At most [`MAX_TITLE_CHARS`] characters, the last an ellipsis when cut.
fn clip(text: &str) -> String {
    match text.char_indices().nth(MAX_TITLE_CHARS - 1) {
        Some((cut, _)) if text.chars().count() > MAX_TITLE_CHARS => {
            format!("{}…", text[..cut].trim_end())
        }
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(content: &str) -> Option<String> {
        derive_title(content, DocumentFormat::Markdown)
    }

    #[test]
    fn front_matter_title_first() {
        assert_eq!(
            md("---\ntitle: Beta\n---\n# Other\n").as_deref(),
            Some("Beta")
        );
        // A front matter block without a title falls through to the body's heading.
        assert_eq!(
            md("---\nscope: global\n---\n\n## Gamma ##\nx").as_deref(),
            Some("Gamma")
        );
    }

    #[test]
    fn first_heading_then_first_line() {
        assert_eq!(
            md("Intro line\n\n# Sortino ratio\n\nBody").as_deref(),
            Some("Sortino ratio")
        );
        assert_eq!(
            md("```\n# not a heading\n```\n#tag\n\n  plain words  \n").as_deref(),
            Some("```")
        );
        assert_eq!(md("\n\n  Just text.\nMore.").as_deref(), Some("Just text."));
        assert_eq!(
            md("    # indented code\nLine").as_deref(),
            Some("# indented code")
        );
        // Plain text: a `#` line is text, and the first line wins.
        assert_eq!(
            derive_title("First\n# Second", DocumentFormat::Text).as_deref(),
            Some("First")
        );
        assert_eq!(md(" \n\t\n"), None);
    }

    #[test]
    fn heading_inside_a_fence_is_skipped() {
        assert_eq!(
            md("```sh\n# comment\n```\n\n# Real\n").as_deref(),
            Some("Real")
        );
    }

    #[test]
    fn long_lines_are_clipped() {
        let long = "word ".repeat(200);
        let title = md(&long).unwrap();
        assert_eq!(title.chars().count(), MAX_TITLE_CHARS);
        assert!(title.ends_with('…'));
        let exact = "é".repeat(MAX_TITLE_CHARS);
        assert_eq!(md(&exact).unwrap(), exact);
    }
}
