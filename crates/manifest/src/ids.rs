//! Name rules, copied from Spin so a manifest valid here is valid there and vice versa.
//!
//! - component ids and AI model names: `spin_serde::KebabId` (`Id<'-', false>`);
//! - key-value store labels: kebab-case or snake_case ids;
//! - variable names (application and component): `spin_expressions::Key`, which is
//!   stricter than the `LowerSnakeId` the schema uses, so checking it alone is exact.

/// Spin's `Id<DELIM, LOWER>`: words of ASCII alphanumerics separated by `delim`; the
/// first word starts with a letter, later words with a letter or digit; each word is all
/// lowercase or all UPPERCASE (all lowercase when `lower`). Spin also tolerates `:` inside
/// words, so we do too.
fn check_id(id: &str, delim: char, lower: bool) -> Result<(), String> {
    if id.is_empty() {
        return Err("must not be empty".into());
    }
    let wrong = if delim == '-' { '_' } else { '-' };
    if id.contains(wrong) {
        return Err(format!(
            "words must be separated with {delim:?}, not {wrong:?}"
        ));
    }
    for (i, word) in id.split(delim).enumerate() {
        let mut chars = word.chars();
        let Some(first) = chars.next() else {
            return Err(format!("{delim:?}-separated words must not be empty"));
        };
        if !(first.is_ascii_alphabetic() || (i > 0 && first.is_ascii_digit())) {
            return Err(format!(
                "{delim:?}-separated words must start with an ASCII letter or digit; got {first:?}"
            ));
        }
        let upper = first.is_ascii_uppercase();
        for ch in chars {
            if ch.is_ascii_digit() || ch == ':' {
                continue;
            }
            if !ch.is_ascii_alphanumeric() {
                return Err(format!(
                    "{delim:?}-separated words may only contain alphanumeric ASCII; got {ch:?}"
                ));
            }
            if ch.is_ascii_uppercase() != upper {
                return Err(format!(
                    "{delim:?}-separated words must be all lowercase or all UPPERCASE; got {word:?}"
                ));
            }
        }
        if lower && upper {
            return Err(format!("must be all lowercase; got {id:?}"));
        }
    }
    Ok(())
}

/// Component ids (`[component.<id>]`) and AI model names: kebab-case.
pub fn check_component_id(id: &str) -> Result<(), String> {
    check_id(id, '-', false)
}

/// Key-value store labels: kebab-case or snake_case (Spin's `kebab_or_snake_case`).
pub fn check_label(label: &str) -> Result<(), String> {
    if check_id(label, '-', false).is_ok() || check_id(label, '_', false).is_ok() {
        Ok(())
    } else {
        Err("expected kebab-case or snake_case".into())
    }
}

/// Variable names, exactly `spin_expressions::Key::validate`: lowercase letters, digits
/// and single underscores, starting with a letter and ending with a letter or digit. The
/// rule keeps `SPIN_VARIABLE_<NAME>` env names unambiguous.
pub fn check_variable_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        return Err(format!(
            "invalid character {c:?}. Variable names may contain only lower-case letters, numbers, and underscores."
        ));
    }
    if !name.as_bytes()[0].is_ascii_lowercase() {
        return Err("must start with a lowercase ASCII letter".into());
    }
    if !name.as_bytes()[name.len() - 1].is_ascii_alphanumeric() {
        return Err("must end with a lowercase ASCII letter or digit".into());
    }
    if name.contains("__") {
        return Err("must not contain multiple consecutive underscores".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_ids() {
        for ok in ["a", "hello", "kb-search", "a1", "a-1", "API-v2", "a:b"] {
            check_component_id(ok).expect(ok);
        }
        for (bad, why) in [
            ("", "empty"),
            ("a_b", "not '_'"),
            ("-a", "must not be empty"),
            ("a--b", "must not be empty"),
            ("a-", "must not be empty"),
            ("1a", "must start"),
            ("Ab", "all lowercase or all UPPERCASE"),
            ("a.b", "alphanumeric"),
            ("a b", "alphanumeric"),
        ] {
            let err = check_component_id(bad).expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn labels() {
        for ok in ["default", "snake_case", "kebab-case", "a1"] {
            check_label(ok).expect(ok);
        }
        for bad in ["b@dlabel", "camelCase", "a-b_c", ""] {
            assert_eq!(
                check_label(bad).unwrap_err(),
                "expected kebab-case or snake_case"
            );
        }
    }

    #[test]
    fn variable_names_match_spin_key_rules() {
        for ok in ["a", "abc", "a1b2c3", "a_1", "a_1_b_3", "database_url"] {
            check_variable_name(ok).expect(ok);
        }
        for (bad, why) in [
            ("", "empty"),
            ("aX", "invalid character 'X'"),
            ("1bc", "must start"),
            ("_x", "must start"),
            ("x.y", "invalid character '.'"),
            ("x_", "must end"),
            ("a__b", "consecutive"),
            ("x-y", "invalid character '-'"),
        ] {
            let err = check_variable_name(bad).expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
