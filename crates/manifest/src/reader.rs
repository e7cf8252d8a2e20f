//! A path-tracking reader over `toml::Table`. We walk the manifest by hand instead of
//! deriving serde so that every error names the full field path
//! (`component.kb.allowed_outbound_hosts[1]`), and so unknown keys are reported with the
//! list of keys that are allowed at that spot (the keys the loader asked about).

use toml::{Table, Value};

use crate::error::ManifestError;

/// Joins a field path and a key, quoting keys that are not TOML bare keys.
pub fn join(path: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let key = if bare {
        key.to_string()
    } else {
        format!("{key:?}")
    };
    if path.is_empty() {
        key
    } else {
        format!("{path}.{key}")
    }
}

/// Error for a value of the wrong TOML type.
pub fn wrong_type(field: String, expected: &'static str, found: &Value) -> ManifestError {
    ManifestError::WrongType {
        field,
        expected,
        found: found.type_str(),
    }
}

/// Reads one table. Each accessor records its key as known; `finish` rejects the rest.
pub struct TableReader<'a> {
    path: String,
    table: &'a Table,
    known: Vec<&'static str>,
}

impl<'a> TableReader<'a> {
    pub fn new(path: impl Into<String>, table: &'a Table) -> Self {
        Self {
            path: path.into(),
            table,
            known: Vec::new(),
        }
    }

    /// Reads a value that must be a table.
    pub fn from_value(path: String, value: &'a Value) -> Result<Self, ManifestError> {
        match value {
            Value::Table(table) => Ok(Self::new(path, table)),
            other => Err(wrong_type(path, "a table", other)),
        }
    }

    /// The path of one of its keys (`component.kb.source`).
    pub fn field(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// The raw value of a key, marking the key as known.
    pub fn get(&mut self, key: &'static str) -> Option<&'a Value> {
        self.known.push(key);
        self.table.get(key)
    }

    /// Accepts a key Spin knows but Tessera ignores (`tool`, `targets`, ...).
    pub fn ignore(&mut self, key: &'static str) {
        self.known.push(key);
    }

    pub fn string(&mut self, key: &'static str) -> Result<Option<String>, ManifestError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(wrong_type(self.field(key), "a string", other)),
        }
    }

    pub fn required_string(&mut self, key: &'static str) -> Result<String, ManifestError> {
        self.string(key)?.ok_or_else(|| ManifestError::Missing {
            field: self.field(key),
        })
    }

    pub fn bool(&mut self, key: &'static str) -> Result<Option<bool>, ManifestError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Boolean(b)) => Ok(Some(*b)),
            Some(other) => Err(wrong_type(self.field(key), "a boolean", other)),
        }
    }

    /// An array of strings; absent means empty.
    pub fn string_list(&mut self, key: &'static str) -> Result<Vec<String>, ManifestError> {
        let field = self.field(key);
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(wrong_type(format!("{field}[{i}]"), "a string", other)),
                })
                .collect(),
            Some(other) => Err(wrong_type(field, "an array of strings", other)),
        }
    }

    /// A table of strings (`environment`, component `variables`), sorted by key.
    pub fn string_map(
        &mut self,
        key: &'static str,
    ) -> Result<Vec<(String, String, String)>, ManifestError> {
        let Some(sub) = self.table_of(key)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for (name, value) in sub.table {
            let field = sub.field(name);
            match value {
                Value::String(s) => out.push((name.clone(), s.clone(), field)),
                other => return Err(wrong_type(field, "a string", other)),
            }
        }
        out.sort();
        Ok(out)
    }

    /// A sub-table; absent is `None`.
    pub fn table_of(
        &mut self,
        key: &'static str,
    ) -> Result<Option<TableReader<'a>>, ManifestError> {
        let field = self.field(key);
        self.get(key)
            .map(|value| TableReader::from_value(field, value))
            .transpose()
    }

    /// The raw table, for iterating over user-chosen keys (`[component.<id>]`).
    pub fn entries(&self) -> impl Iterator<Item = (&'a String, &'a Value)> {
        self.table.iter()
    }

    /// Rejects keys nobody asked about, naming the first (sorted) one.
    pub fn finish(self) -> Result<(), ManifestError> {
        let mut unknown: Vec<&String> = self
            .table
            .keys()
            .filter(|k| !self.known.contains(&k.as_str()))
            .collect();
        unknown.sort();
        match unknown.first() {
            None => Ok(()),
            Some(key) => {
                let mut allowed: Vec<String> = self.known.iter().map(|k| k.to_string()).collect();
                allowed.sort();
                allowed.dedup();
                Err(ManifestError::UnknownField {
                    field: join(&self.path, key),
                    allowed,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(src: &str) -> Table {
        src.parse().unwrap()
    }

    #[test]
    fn join_quotes_non_bare_keys() {
        assert_eq!(join("", "a"), "a");
        assert_eq!(join("component", "kb-search"), "component.kb-search");
        assert_eq!(join("component", "a.b"), "component.\"a.b\"");
        assert_eq!(join("x", ""), "x.\"\"");
    }

    #[test]
    fn accessors_and_errors() {
        let t = table(
            r#"
            s = "x"
            b = true
            n = 3
            list = ["a", "b"]
            badlist = ["a", 1]
            map = { k = "v", a = "b" }
            badmap = { k = 1 }
            sub = { x = 1 }
            extra = 1
            "#,
        );
        let mut r = TableReader::new("top", &t);
        assert_eq!(r.string("s").unwrap().as_deref(), Some("x"));
        assert_eq!(r.string("absent").unwrap(), None);
        assert_eq!(
            r.required_string("missing").unwrap_err().to_string(),
            "top.missing: missing required field"
        );
        assert_eq!(
            r.string("n").unwrap_err().to_string(),
            "top.n: expected a string, found integer"
        );
        assert_eq!(r.bool("b").unwrap(), Some(true));
        assert_eq!(
            r.bool("s").unwrap_err().to_string(),
            "top.s: expected a boolean, found string"
        );
        assert_eq!(r.string_list("list").unwrap(), ["a", "b"]);
        assert_eq!(r.string_list("nolist").unwrap(), Vec::<String>::new());
        assert_eq!(
            r.string_list("badlist").unwrap_err().to_string(),
            "top.badlist[1]: expected a string, found integer"
        );
        assert_eq!(
            r.string_list("s").unwrap_err().to_string(),
            "top.s: expected an array of strings, found string"
        );
        let map = r.string_map("map").unwrap();
        assert_eq!(map[0], ("a".into(), "b".into(), "top.map.a".into()));
        assert_eq!(map[1].0, "k");
        assert_eq!(
            r.string_map("badmap").unwrap_err().to_string(),
            "top.badmap.k: expected a string, found integer"
        );
        assert_eq!(
            r.table_of("s").err().unwrap().to_string(),
            "top.s: expected a table, found string"
        );
        assert!(r.table_of("sub").unwrap().is_some());
        assert_eq!(
            r.finish().unwrap_err().to_string(),
            "top.extra: unknown field (expected one of: absent, b, badlist, badmap, list, map, missing, n, nolist, s, sub)"
        );
    }

    #[test]
    fn finish_accepts_known_and_ignored() {
        let t = table("a = 1\nb = 2");
        let mut r = TableReader::new("", &t);
        r.get("a");
        r.ignore("b");
        r.finish().unwrap();
    }
}
