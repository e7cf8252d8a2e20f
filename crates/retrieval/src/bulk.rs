//! `POST /v1/kb/documents/bulk`: NDJSON, one document per line (the body of a single
//! ingest). Each line is validated on its own, so one bad line is reported with its number
//! while the others are stored; blank lines are skipped.

use crate::ingest::NewDocument;
use crate::query::QueryError;

/// The most documents one request may carry.
pub const MAX_BULK_LINES: usize = 1000;
/// The largest bulk body, in bytes (a single document's content may be 5 MiB).
pub const MAX_BULK_BYTES: usize = 16 << 20;

/// One non-blank line: its 1-based number and the document, or why it was refused.
#[derive(Debug)]
pub struct BulkLine {
    pub line: usize,
    pub document: Result<NewDocument, QueryError>,
}

/// Why a whole bulk body is refused (413).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{count} documents in one request; at most {max} are accepted (split the file)")]
pub struct TooManyLines {
    pub count: usize,
    pub max: usize,
}

/// Splits an NDJSON body (`\n` or `\r\n` line ends) and validates each document.
pub fn parse_ndjson(body: &[u8]) -> Result<Vec<BulkLine>, TooManyLines> {
    let lines: Vec<(usize, &[u8])> = body
        .split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l.strip_suffix(b"\r").unwrap_or(l)))
        .filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace))
        .collect();
    if lines.len() > MAX_BULK_LINES {
        return Err(TooManyLines {
            count: lines.len(),
            max: MAX_BULK_LINES,
        });
    }
    Ok(lines
        .into_iter()
        .map(|(line, bytes)| BulkLine {
            line,
            document: NewDocument::from_json_bytes(bytes),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_line_is_validated_on_its_own() {
        let body = b"{\"title\":\"A\",\"content\":\"alpha\"}\r\n\n  \n{\"content\":\"# Beta\\n\\nb\"}\n{\"title\": 3, \"content\": \"c\"}\nnot json\n{\"content\":\"\\u0000\"}";
        let lines = parse_ndjson(body).unwrap();
        let numbers: Vec<usize> = lines.iter().map(|l| l.line).collect();
        assert_eq!(numbers, [1, 4, 5, 6, 7]);
        assert_eq!(lines[0].document.as_ref().unwrap().title, "A");
        assert_eq!(lines[1].document.as_ref().unwrap().title, "Beta");
        assert_eq!(
            lines[2].document.as_ref().unwrap_err().field(),
            Some("title")
        );
        assert_eq!(
            lines[3].document.as_ref().unwrap_err().code(),
            "invalid_json"
        );
        assert_eq!(
            lines[4].document.as_ref().unwrap_err().field(),
            Some("content")
        );
    }

    #[test]
    fn too_many_lines_is_refused_whole() {
        let one = "{\"content\":\"x\"}\n";
        assert_eq!(
            parse_ndjson(one.repeat(MAX_BULK_LINES).as_bytes())
                .unwrap()
                .len(),
            MAX_BULK_LINES
        );
        let err = parse_ndjson(one.repeat(MAX_BULK_LINES + 1).as_bytes()).unwrap_err();
        assert_eq!(
            err,
            TooManyLines {
                count: MAX_BULK_LINES + 1,
                max: MAX_BULK_LINES
            }
        );
        assert!(parse_ndjson(b"").unwrap().is_empty());
    }
}
